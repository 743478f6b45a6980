#!/usr/bin/env bash
# r2bridge verify against the local S3 server and a fresh SQLite manifest:
# a leaked private object, an orphan, a missing object and a changed one are
# each found (the alarm first), --fix repairs what it may, and a second run
# is clean. git t/ style.
#   test/verify.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: verify.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_PRIVATE_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "verify.sh: $v is not set: run through scripts/test"; echo "0 passed, 1 failed"; exit 1
  fi
done
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-verify.XXXXXX")
trap 'rm -rf "$T"' EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true R2B_MANIFEST="sqlite://$T/manifest.db"

# verify --fix deletes every object no manifest knows: never run it on buckets
# other tests use. scripts/test creates these two for it alone.
export S3_BUCKET=${R2B_VERIFY_PUBLIC:-r2b-verify-public}
export R2B_PRIVATE_BUCKET=${R2B_VERIFY_PRIVATE:-r2b-verify-private}
for b in "$S3_BUCKET" "$R2B_PRIVATE_BUCKET"; do
  if ! "$BIN" ls --bucket "$b" >/dev/null 2>&1; then
    echo "verify.sh: bucket '$b' is missing (scripts/test creates it)"; echo "0 passed, 1 failed"; exit 1
  fi
done
P="verify-$RANDOM$RANDOM"
mkdir -p "$T/tree/$P/a/original" "$T/tree/$P/b/original"
head -c 3000 /dev/urandom >"$T/tree/$P/a/original/pub.jpg"
head -c 4000 /dev/urandom >"$T/tree/$P/b/original/priv.jpg"
head -c 5000 /dev/urandom >"$T/tree/$P/a/original/gone.jpg"
head -c 6000 /dev/urandom >"$T/tree/$P/a/original/changed.jpg"
echo "$P/b/,direct,5,6" >"$T/map.csv"
run migrate --from-dir "$T/tree" --visibility-map "$T/map.csv" --prefix "$P/"
check "migrate a small tree" eval 'is $rc 0'

# Damage: a leaked copy of the direct object in the public bucket, an orphan,
# an object deleted and one replaced behind the manifest's back.
run put "$T/tree/$P/b/original/priv.jpg" "$P/b/original/priv.jpg" --bucket "$S3_BUCKET"
run put "$T/tree/$P/a/original/pub.jpg" "$P/a/original/orphan.jpg"
run rm "$P/a/original/gone.jpg"
head -c 100 /dev/urandom >"$T/other"
run put "$T/other" "$P/a/original/changed.jpg"
run verify --json
alarm_first=$(json "$out" '[f["finding"] for f in d["findings"] if f["key"].startswith("'"$P"'/")][0]')
mine() { json "$out" "sorted(set(f['finding'] for f in d['findings'] if f['key'].startswith('$P/')))"; }
check "verify exits 1 when something is wrong" eval 'is $rc 1'
check "the privacy alarm is reported first" eval 'is "$alarm_first" privacy_alarm'
check "alarm, missing, differs and orphan all found" \
  eval 'is "$(mine)" "[\"differs\", \"missing\", \"orphan\", \"privacy_alarm\"]" || is "$(mine)" "['"'"'differs'"'"', '"'"'missing'"'"', '"'"'orphan'"'"', '"'"'privacy_alarm'"'"']"'
run verify --fix --json
check "--fix keeps what is newer than the grace period (default a day)" \
  eval 'is "$(json "$out" "[f[\"fixed\"] for f in d[\"findings\"] if f[\"key\"] == \"$P/a/original/orphan.jpg\"][0]")" False'
check "--fix moved the leaked object out of the public bucket at once" \
  eval '"$BIN" head "$P/b/original/priv.jpg" --bucket "$S3_BUCKET" >/dev/null 2>&1; [ $? -eq 6 ]'
sleep 2
run verify --fix --grace 1
run manifest show "$P/a/original/gone.jpg" --json
check "the missing object's record is now pending" eval 'is "$(json "$out" "d[\"state\"]")" pending'
run head "$P/a/original/orphan.jpg"
check "the old orphan was deleted" eval 'is $rc 6'
run head "$P/b/original/priv.jpg" --bucket "$R2B_PRIVATE_BUCKET"
check "the private copy is untouched" eval 'is $rc 0'
run migrate --from-dir "$T/tree" --visibility-map "$T/map.csv" --prefix "$P/"
check "the next migrate uploads the missing and the changed object again" \
  eval 'is $rc 0 && "$BIN" get "$P/a/original/changed.jpg" "$T/back" 2>/dev/null && cmp -s "$T/back" "$T/tree/$P/a/original/changed.jpg"'
run verify --json
check "verify finds nothing of this run left" \
  eval 'is "$(json "$out" "len([f for f in d[\"findings\"] if f[\"key\"].startswith(\"$P/\")])")" 0'
run verify --help
check "verify --help" eval 'is $rc 0 && has "$out" "privacy_alarm"'
finish
