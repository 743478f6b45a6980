/* Private to the pipeline: a rule pipeline.c and migrate.c share. */
#ifndef R2B_PIPELINE_INT_H
#define R2B_PIPELINE_INT_H

#include "r2bridge/r2bridge.h"

/*
 * 1 when `err` is a local write that failed for lack of room: ENOSPC, EDQUOT,
 * or EFBIG past RLIMIT_FSIZE. That passes once space is freed, so it is a
 * temporary failure (exit 75), never a rejection. Read from the message
 * because libvips keeps only the text of errno.
 */
int r2b_pipeline__disk_full(const struct r2b_error *err);

#endif
