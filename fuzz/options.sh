# Sourced by scripts/fuzz and fuzz/smoke.sh: the fuzz targets, the libFuzzer
# flags of each (input size cap, per-input timeout), and the sanitizer
# settings every run uses.
# shellcheck shell=bash
R2B_FUZZ_ALL_TARGETS=(media s3_xml config key sigv4)

# r2b_fuzz_flags TARGET: prints libFuzzer flags for TARGET
r2b_fuzz_flags() {
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  case $1 in
    media) echo "-max_len=262144 -timeout=30 -rss_limit_mb=3072" ;;
    s3_xml) echo "-max_len=65536 -timeout=10 -dict=$here/s3_xml.dict" ;;
    config) echo "-max_len=16384 -timeout=10" ;;
    key) echo "-max_len=2048 -timeout=10" ;;
    sigv4) echo "-max_len=8192 -timeout=10" ;;
    *) return 1 ;;
  esac
}

r2b_fuzz_env() {
  local here root sym
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  root=$(dirname "$here")
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
  export LSAN_OPTIONS="suppressions=$root/test/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  for sym in /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer || true)"; do
    if [ -n "$sym" ] && [ -x "$sym" ]; then
      export ASAN_SYMBOLIZER_PATH="$sym"
      break
    fi
  done
}
