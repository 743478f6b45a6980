#include "r2bridge/r2bridge.h"
int main(void)
{
    return 0;
}
