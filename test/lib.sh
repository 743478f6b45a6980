# Shared helpers for the t-style shell tests (git's t/ is the model).
# The sourcing script sets BIN (the tool) and T (a temp dir) first.
passed=0 failed=0 n=0
. "$(dirname "${BASH_SOURCE[0]}")/wrap.sh"
# under R2B_TEST_WRAPPER (valgrind), unless the script wrapped BIN itself
if [ "${R2B_BIN_WRAPPED:-0}" != 1 ]; then
  BIN=$(r2b_wrapped "$BIN" "$T")
  R2B_BIN_WRAPPED=1
fi
ALL_OUT="$T/all-output" # everything the tool printed, checked for the secret at the end
: >>"$ALL_OUT"

# run ARGS...: runs the tool, sets $rc, $out, $err
run() {
  "$BIN" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  out=$(tr -d "\\0" <"$T/out")
  err=$(cat "$T/err")
  cat "$T/out" "$T/err" >>"$ALL_OUT"
}

# check DESCRIPTION COMMAND...: one numbered result line
check() {
  local desc=$1
  shift
  n=$((n + 1))
  if "$@"; then
    passed=$((passed + 1))
    echo "ok $n - $desc"
  else
    failed=$((failed + 1))
    echo "not ok $n - $desc"
    echo "#   rc=$rc"
    echo "#   stdout: $(head -c 600 "$T/out" | tr -d '\0')"
    echo "#   stderr: $(head -c 600 "$T/err")"
  fi
}
is() { [ "$1" = "$2" ]; }
has() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }
lines() { [ "$(printf '%s\n' "$1" | wc -l)" -eq "$2" ]; }
json() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1"; }

# finish: the secret check, the closing line CI reads, the exit code
finish() {
  n=$((n + 1))
  if [ -n "${SECRET:-}" ] && grep -qF -- "$SECRET" "$ALL_OUT"; then
    failed=$((failed + 1))
    echo "not ok $n - the secret appears in the tool's output"
  else
    passed=$((passed + 1))
    echo "ok $n - the secret never appears in any output ($(wc -c <"$ALL_OUT") bytes checked)"
  fi
  # and for the suite's final scan (test/secret_scan.sh) across every test
  if [ -n "${R2B_TEST_OUTPUTS:-}" ] && mkdir -p "$R2B_TEST_OUTPUTS"; then
    cp "$ALL_OUT" "$R2B_TEST_OUTPUTS/$(basename "$0" .sh)-$$.log"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
