#!/usr/bin/env bash
# secret_scan.sh: the last test of the suite (a ctest fixture cleanup, so it
# runs after every test that captures output). Greps everything the shell
# tests captured from r2bridge (lib.sh's run() copies it to $R2B_TEST_OUTPUTS;
# fault.sh and faults_matrix.py too) for the S3 secret of the run.
# scripts/test makes that secret random (R2B_S3_LOCAL_SECRET), so no output
# holds it by chance, and greps ctest's log of every test's own output for it
# once ctest is done (that log is written at the end).
set -uo pipefail

fail() { echo "not ok 1 - $1"; echo "0 passed, 1 failed"; exit 1; }
[ -n "${AWS_SECRET_ACCESS_KEY:-}" ] || fail "AWS_SECRET_ACCESS_KEY is not set: run through scripts/test"
[ -n "${R2B_TEST_OUTPUTS:-}" ] || fail "R2B_TEST_OUTPUTS is not set: run through scripts/test"
[ ${#AWS_SECRET_ACCESS_KEY} -ge 12 ] ||
  fail "the secret is too short to grep for meaningfully (scripts/test sets a random R2B_S3_LOCAL_SECRET)"
FILES=()
while IFS= read -r -d '' f; do FILES+=("$f"); done < <(find "$R2B_TEST_OUTPUTS" -type f -print0 2>/dev/null)
[ ${#FILES[@]} -gt 0 ] || fail "no captured output in $R2B_TEST_OUTPUTS: the scan would prove nothing"
BYTES=$(cat "${FILES[@]}" | wc -c)
echo "# ${#FILES[@]} files, $BYTES bytes:"
for f in "${FILES[@]}"; do echo "#   $(basename "$f") $(wc -c <"$f")"; done
LEAKS=$(grep -lF -- "$AWS_SECRET_ACCESS_KEY" "${FILES[@]}")
if [ -n "$LEAKS" ]; then
  echo "not ok 1 - the secret appears in: $(echo "$LEAKS" | xargs -n1 basename | tr '\n' ' ')"
  echo "0 passed, 1 failed"
  exit 1
fi
echo "ok 1 - the secret appears in none of the ${#FILES[@]} captured outputs ($BYTES bytes)"
echo "1 passed, 0 failed"
