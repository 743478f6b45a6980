#!/usr/bin/env bash
# load.sh BINARY: 16 `r2bridge upload` processes at once, in a loop, plus a
# loop of `r2bridge sign` processes, all sharing one SQLite manifest, for
# R2B_LOAD_SECONDS (default 20 in CI; the issue's full minute: 60), and one
# `sign --stdin` stream fed all along. Checks: no upload and no sign fails
# (so no "database is locked" reaches a caller),
# every successful upload has its two styles `stored` in the manifest, no
# record is left pending, and every stored record's object is on the server
# with the record's size and ETag (listed straight from it with boto3).
# git t/ style.
#   R2B_LOAD_SECONDS=60 test/load.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: load.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_PRIVATE_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "load.sh: $v is not set: run through scripts/test"; echo "not ok 1 - S3 environment"; echo "0 passed, 1 failed"; exit 1
  fi
done
if ! command -v convert >/dev/null || ! python3 -c 'import botocore' 2>/dev/null; then
  echo "load.sh: needs ImageMagick's convert and python3-boto3"; echo "not ok 1 - tools"; echo "0 passed, 1 failed"; exit 1
fi
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-load.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true R2B_MANIFEST="sqlite://$T/manifest.db"
export R2B_TMPDIR=$T/tmp
unset S3_ALIAS_HOST
mkdir -p "$T/tmp" "$T/log"
SECONDS_WANTED=${R2B_LOAD_SECONDS:-20}
WORKERS=16
P="load-$$-$RANDOM"
convert -size 480x360 plasma:fractal -seed 3 -quality 85 "$T/photo.jpg" 2>/dev/null
echo "# $WORKERS upload loops, a sign loop and a sign --stdin stream for $SECONDS_WANTED s on one SQLite manifest"

# a few private uploads first, for the sign loop to ask about (owner 100, audience 200)
for i in 1 2 3; do
  run upload "$T/photo.jpg" --visibility private --account 100 --audience 200 --key "$P/seed$i/original/p.jpg"
  check "seed upload $i" eval 'is $rc 0'
done

# upload loop W: one upload at a time until the deadline; one line per run:
# "<rc> <key>" (stdout/stderr kept per run for the checks)
upload_loop() {
  local w=$1 i=0 rc
  while [ "$SECONDS" -lt "$END" ]; do
    i=$((i + 1))
    "$BIN" upload "$T/photo.jpg" --visibility public --account $((w + 1)) \
      --key "$P/w$w/$i/original/p.jpg" --json >"$T/log/u$w-$i.out" 2>"$T/log/u$w-$i.err"
    rc=$?
    echo "$rc $P/w$w/$i/original/p.jpg" >>"$T/log/uploads-$w"
  done
}
# sign loop: owner (URL), stranger (denied), in turn; one line per run: "<rc> <want>"
sign_loop() {
  local i=0 rc
  while [ "$SECONDS" -lt "$END" ]; do
    i=$((i + 1))
    if [ $((i % 2)) = 0 ]; then
      "$BIN" sign "$P/seed$((i % 3 + 1))/original/p.jpg" --viewer 200 >"$T/log/s$i.out" 2>"$T/log/s$i.err"
      echo "$? 0" >>"$T/log/signs"
    else
      "$BIN" sign "$P/seed$((i % 3 + 1))/original/p.jpg" --viewer 999 >"$T/log/s$i.out" 2>"$T/log/s$i.err"
      echo "$? 5" >>"$T/log/signs"
    fi
  done
}

# and one long-lived `sign --stdin` (how the web tier asks), fed all along:
# owner, stranger, in turn, in batches of 100 lines
sign_stream() {
  local i
  while [ "$SECONDS" -lt "$END" ]; do
    for i in $(seq 1 50); do
      printf '%s 200\n%s 999\n' "$P/seed$((i % 3 + 1))/original/p.jpg" "$P/seed$((i % 3 + 1))/small/p.jpg"
    done
    sleep 0.05 # a steady stream, not a CPU hog next to the uploads
  done | "$BIN" sign --stdin >"$T/log/stream.out" 2>"$T/log/stream.err"
  echo $? >"$T/log/stream.rc"
}

END=$((SECONDS + SECONDS_WANTED))
START=$SECONDS
for w in $(seq 1 $WORKERS); do upload_loop "$w" & done
sign_loop &
sign_stream &
wait
ELAPSED=$((SECONDS - START))
cat "$T"/log/*.out "$T"/log/*.err >>"$ALL_OUT" 2>/dev/null

UPLOADS=$(cat "$T"/log/uploads-* | wc -l)
UP_OK=$(cat "$T"/log/uploads-* | awk '$1 == 0' | wc -l)
UP_BAD=$(cat "$T"/log/uploads-* | awk '$1 != 0 {print $1}' | sort | uniq -c | tr '\n' ' ')
SIGNS=$(wc -l <"$T/log/signs")
SIGN_BAD=$(awk '$1 != $2' "$T/log/signs" | wc -l)
LOCKED=$(grep -lE 'locked|busy' "$T"/log/*.err 2>/dev/null | wc -l)
echo "# $UPLOADS uploads ($UP_OK ok), $SIGNS sign processes, $(wc -l <"$T/log/stream.out") sign --stdin answers in $ELAPSED s: $(awk -v n="$UP_OK" -v s="$ELAPSED" 'BEGIN{printf "%.1f", s ? n/s : 0}') uploads/s"

check "every one of the $WORKERS loops uploaded (at least $WORKERS uploads: $UPLOADS)" eval '[ "$UPLOADS" -ge $WORKERS ]'
check "every upload succeeded ($UP_OK of $UPLOADS; failures by exit code: ${UP_BAD:-none})" eval 'is "$UP_OK" "$UPLOADS"'
check "no 'database is locked' (or busy) in any stderr ($LOCKED files)" eval 'is "$LOCKED" 0'
check "the sign loop ran ($SIGNS signs) and every answer was the expected one ($SIGN_BAD wrong)" \
  eval '[ "$SIGNS" -ge 2 ] && is "$SIGN_BAD" 0'
# stream answers in order: odd lines the owner (a URL), even lines a stranger (denied)
STREAM=$(python3 - "$T/log/stream.out" <<'PY'
import json, sys
n = bad = 0
for i, line in enumerate(open(sys.argv[1])):
    d = json.loads(line)
    want = (True, None) if i % 2 == 0 else (False, "not_in_audience")
    bad += (d.get("ok"), d.get("reason")) != want or (want[0] and "X-Amz-Signature" not in d["url"])
    n += 1
print(n, bad)
PY
)
check "sign --stdin answered every request right while the uploads ran (answers, wrong: $STREAM)" \
  eval 'is "$(cat "$T/log/stream.rc")" 0 && [ "${STREAM% *}" -ge 100 ] && is "${STREAM#* }" 0'

# the manifest against the uploads and the server, read with python (sqlite3, boto3)
python3 - "$T/manifest.db" "$P/" "$S3_BUCKET" "$T/log" >"$T/verdict.json" 2>"$T/verdict.err" <<'PY'
import glob, json, os, sqlite3, sys
from botocore.config import Config
try:
    import boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                      aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}))
except ImportError:
    import botocore.session
    s3 = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}))
db_path, prefix, bucket, logs = sys.argv[1:]
db = sqlite3.connect(db_path)
recs = {k: (b, st, size, etag) for k, b, st, size, etag in db.execute(
    "SELECT key, bucket, state, size, etag FROM r2b_objects WHERE key LIKE ? || '%'", (prefix,))}
ok_keys = []
for f in glob.glob(os.path.join(logs, "uploads-*")):
    for line in open(f):
        rc, key = line.split()
        if rc == "0":
            ok_keys.append(key)
listing = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        listing[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
lost = [k for k in ok_keys for k2 in (k, k.replace("/original/", "/small/"))
        if recs.get(k2, (None, None))[1] != "stored"]
pending = [k for k, r in recs.items() if r[1] != "stored"]
absent = [k for k, r in recs.items() if r[1] == "stored" and r[0] == bucket
          and listing.get(k) != (r[2], r[3])]
print(json.dumps({"ok_uploads": len(ok_keys), "records": len(recs),
                  "stored": sum(1 for r in recs.values() if r[1] == "stored"),
                  "public_records": sum(1 for r in recs.values() if r[0] == bucket),
                  "objects": len(listing), "lost": lost[:5], "n_lost": len(lost),
                  "pending": pending[:5], "n_pending": len(pending),
                  "absent": absent[:5], "n_absent": len(absent)}))
PY
V=$(cat "$T/verdict.json")
[ -n "$V" ] || V='{}'
vj() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d.get('$1'))" "$V"; }
echo "# manifest: $(vj records) records, $(vj stored) stored; $(vj objects) objects in the public bucket"
cat "$T/verdict.err" >&2
check "no lost record: both styles of every successful upload are 'stored' ($(vj n_lost) missing)" \
  eval 'is "$(vj n_lost)" 0 && [ "$(vj ok_uploads)" -ge 1 ]'
check "no record left pending ($(vj n_pending))" eval 'is "$(vj n_pending)" 0'
check "2 records per successful upload ($(vj records) = 2 x $UP_OK + 6 seed)" \
  eval 'is "$(vj records)" $((2 * UP_OK + 6))'
check "every stored public record's object is on the server, same size and ETag ($(vj n_absent) not)" \
  eval 'is "$(vj n_absent)" 0 && is "$(vj objects)" "$(vj public_records)"'
finish
