#include "r2bridge/r2bridge.h" /* placeholder */
