#!/bin/sh
# ctest runs the C test programs through this: with R2B_TEST_WRAPPER set
# (scripts/test --valgrind: "valgrind --error-exitcode=99 ...") the program
# runs under it, otherwise as is.
exec ${R2B_TEST_WRAPPER:-} "$@"
