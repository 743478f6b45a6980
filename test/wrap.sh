# Sourced by the shell tests: r2b_wrapped BINARY DIR prints the command to
# run instead of BINARY. With R2B_TEST_WRAPPER unset (the usual case) that
# is BINARY itself; with R2B_TEST_WRAPPER="valgrind ..." (scripts/test
# --valgrind) it is a small script in DIR that runs BINARY under it.
# R2B_TEST_TIME_FACTOR (default 1) scales the tests' own time limits on hung runs.
# shellcheck shell=bash
r2b_wrapped() {
  local bin=$1 dir=$2 w
  if [ -z "${R2B_TEST_WRAPPER:-}" ]; then
    printf '%s\n' "$bin"
    return
  fi
  w="$dir/$(basename "$bin")-wrapped"
  printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$R2B_TEST_WRAPPER" "$bin" >"$w"
  chmod +x "$w"
  printf '%s\n' "$w"
}
