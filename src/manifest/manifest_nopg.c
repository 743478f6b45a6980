/* Stands in for manifest_pg.c in builds without libpq (cmake -DR2B_POSTGRES=OFF),
 * so that a postgresql:// manifest fails with a clear configuration error. */
#include "manifest_int.h"

struct r2b_manifest *r2b_manifest__open_pg(const char *conninfo, struct r2b_error *err)
{
    (void)conninfo;
    r2b_error_set(err, R2B_ERR_CONFIG,
                  "this r2bridge was built without PostgreSQL support (cmake -DR2B_POSTGRES=ON)");
    return NULL;
}
