#!/usr/bin/env bash
# Several migrate processes on one job, sharing a PostgreSQL manifest (as on
# several hosts sharing an NFS-mounted tree): every file is uploaded exactly
# once; a killed process's files are taken over. git t/ style.
#   test/migrate_multi.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: migrate_multi.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_TEST_PG_URL; do
  if [ -z "${!v:-}" ]; then
    echo "migrate_multi.sh: $v is not set: run through scripts/test"; echo "0 passed, 1 failed"; exit 1
  fi
done
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-multi.XXXXXX")
trap 'rm -rf "$T"' EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true R2B_MANIFEST=$R2B_TEST_PG_URL
P="multi-$RANDOM$RANDOM"
python3 - "$T/tree/$P" <<'PY'
import os, random, sys
random.seed(11)
root = sys.argv[1]
for i in range(400):
    d = os.path.join(root, "%03d" % (i % 40), "original")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "%04d.jpg" % i), "wb") as f:
        f.write(os.urandom(random.choice([1500, 15000, 80000])))
PY

for i in 1 2 3; do
  "$BIN" migrate --from-dir "$T/tree" --jobs 3 --json >"$T/run$i.json" 2>"$T/run$i.err" &
done
wait
moved=$(python3 -c "import json; print(sum(json.load(open('$T/run%d.json' % i))['files_moved'] for i in (1,2,3)))")
taken=$(python3 -c "import json; print(sum(json.load(open('$T/run%d.json' % i))['files_claimed_elsewhere'] for i in (1,2,3)))")
cat "$T"/run*.json "$T"/run*.err >>"$ALL_OUT"
check "three processes at once: every file uploaded exactly once (400 = $moved)" eval 'is "$moved" 400'
check "and they did split the work ($taken files left to another process)" eval '[ "$taken" -gt 0 ]'
run manifest ls "$P/" --state stored
check "all 400 recorded as stored" eval 'lines "$out" 400'
run ls "$P/"
check "all 400 objects in the bucket" eval 'lines "$out" 400'

# A process killed mid-run: the next one (another pid, same host) takes over at once.
Q="takeover-$RANDOM$RANDOM"
mkdir -p "$T/tree2/$Q"
for i in $(seq 1 30); do head -c 2500000 /dev/urandom >"$T/tree2/$Q/$i.mp4"; done
"$BIN" migrate --from-dir "$T/tree2" --jobs 3 --claim-ttl 3600 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  [ "$("$BIN" manifest ls "$Q/" --state stored 2>/dev/null | wc -l)" -ge 3 ] && break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
run migrate --from-dir "$T/tree2" --jobs 3 --json
check "after a kill -9, a restart finishes the job at once (claims of the dead pid released)" \
  eval 'is $rc 0 && is "$(json "$out" "d[\"files_claimed_elsewhere\"]")" 0'
run manifest ls "$Q/" --state stored
check "all 30 stored" eval 'lines "$out" 30'
for i in 1 5 30; do
  "$BIN" get "$Q/$i.mp4" "$T/back" >/dev/null 2>&1
  check "object $i.mp4 reads back identical" cmp -s "$T/back" "$T/tree2/$Q/$i.mp4"
done
finish
