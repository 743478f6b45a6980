#!/usr/bin/env bash
# The fuzz smoke run (ctest `fuzz_smoke`, so part of scripts/test): for each
# fuzz target, replays every input in fuzz/regressions/<target>/ (each one
# crashed r2bridge once), then fuzzes for a few seconds from the seeds.
# A missing fuzz build is a FAILURE, never a skip (scripts/test builds it).
#   fuzz/smoke.sh FUZZ_BUILD_DIR [SECONDS_PER_TARGET]   (default 4)
set -uo pipefail

B=${1:?usage: smoke.sh FUZZ_BUILD_DIR [SECONDS]}
S=${2:-${R2B_FUZZ_SMOKE_SECONDS:-4}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=fuzz/options.sh
. "$HERE/options.sh"
r2b_fuzz_env
T=$(mktemp -d "${R2B_TEST_TMP:-${TMPDIR:-/tmp}}/r2b-fuzz-smoke.XXXXXX")
trap 'rm -rf "$T"' EXIT
export TMPDIR="$T" # the targets' own temp files, removed with it
passed=0 failed=0 n=0

ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
not_ok() { # not_ok DESCRIPTION LOGFILE-OR-TEXT
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  if [ -f "$2" ]; then grep -E "ERROR|invariant|SUMMARY|runtime error|#[0-9]+ +in " "$2" | head -30 | sed 's/^/#   /'
  else echo "#   $2"; fi
}

for t in "${R2B_FUZZ_ALL_TARGETS[@]}"; do
  bin="$B/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    not_ok "fuzz_$t is built" "missing $bin: build it with scripts/fuzz --build-only (scripts/test does)"
    continue
  fi
  read -r -a flags <<<"$(r2b_fuzz_flags "$t")"
  mkdir -p "$T/$t/corpus" "$T/$t/seeds"
  # 1. every regression input, once
  regs=()
  for f in "$HERE/regressions/$t"/*; do [ -f "$f" ] && regs+=("$f"); done
  if [ ${#regs[@]} -gt 0 ]; then
    if "$bin" "${flags[@]}" "${regs[@]}" >"$T/$t/replay.log" 2>&1; then
      ok "fuzz_$t: ${#regs[@]} regression input(s) replayed cleanly"
    else
      not_ok "fuzz_$t: regression input(s) replayed cleanly" "$T/$t/replay.log"
    fi
  fi
  # 2. a short run from the seeds (media: small images made now)
  seeds=("$HERE/seeds/$t")
  if [ "$t" = media ]; then
    if bash "$HERE/media-seeds.sh" "$T/$t/seeds" >"$T/$t/seeds.log" 2>&1; then
      seeds=("$T/$t/seeds")
    else
      not_ok "fuzz_media: seed images generated" "$T/$t/seeds.log"
      continue
    fi
  fi
  [ -d "$HERE/regressions/$t" ] && seeds+=("$HERE/regressions/$t")
  if "$bin" "${flags[@]}" -max_total_time="$S" -print_final_stats=1 -artifact_prefix="$T/$t/" \
    "$T/$t/corpus" "${seeds[@]}" >"$T/$t/run.log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/$t/run.log")
    ok "fuzz_$t: ${S}s from the seeds, ${execs:-?} inputs, no crash, leak or UB"
  else
    not_ok "fuzz_$t: ${S}s from the seeds without a crash, leak or UB" "$T/$t/run.log"
    for a in "$T/$t/"crash-* "$T/$t/"leak-* "$T/$t/"timeout-* "$T/$t/"oom-*; do
      [ -f "$a" ] && echo "#   input (base64): $(head -c 3000 "$a" | base64 -w0)"
    done
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
