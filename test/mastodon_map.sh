#!/usr/bin/env bash
# scripts/mastodon/visibility-map.sql (the export docs/mastodon.md tells
# admins to run) against the local PostgreSQL server: Mastodon's tables
# reduced to the columns the query reads (names and types as in Mastodon's
# db/schema.rb), a few statuses of every visibility, then `r2bridge migrate
# --visibility-map` of a public/system tree laid out as Paperclip does. Checks
# the exported lines, then where each file landed and what the manifest
# records (visibility, owner, audience), read back with boto3. Buckets of its
# own, created and removed here.
#   test/mastodon_map.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: mastodon_map.sh path/to/r2bridge}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SQL=$HERE/../scripts/mastodon/visibility-map.sql

bail() { echo "mastodon_map.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY R2B_TEST_PG_URL; do
  [ -n "${!v:-}" ] || bail "$v is not set: run through scripts/test, which starts the local S3 and PostgreSQL servers"
done
command -v psql >/dev/null || bail "psql is missing (scripts/deps installs postgresql)"
python3 -c 'import boto3' 2>/dev/null || bail "python3 cannot import boto3 (scripts/deps installs python3-boto3)"

T=$(mktemp -d "${R2B_TEST_TMP:-${TMPDIR:-/tmp}}/r2b-mmap.XXXXXX") || bail "cannot create a temporary directory"
SECRET=$AWS_SECRET_ACCESS_KEY
. "$HERE/lib.sh"
TAG=$(printf '%s%04d' "$(date +%s)" $((RANDOM % 10000)))
SCHEMA=r2b_mmap_$TAG
export S3_BUCKET=r2b-mmap-$TAG-pub R2B_PRIVATE_BUCKET=r2b-mmap-$TAG-priv
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true R2B_MANIFEST=sqlite://$T/manifest.db

s3() { # s3 mkbuckets | rmbuckets | keys BUCKET
  python3 - "$@" <<'PY'
import os, sys, time, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                 aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                 config=Config(s3={"addressing_style": "path"}))
buckets = [os.environ["S3_BUCKET"], os.environ["R2B_PRIVATE_BUCKET"]]
def keys(b):
    out, tok = [], {}
    while True:
        r = c.list_objects_v2(Bucket=b, **tok)
        out += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return out
        tok = {"ContinuationToken": r["NextContinuationToken"]}
if sys.argv[1] == "mkbuckets":
    for b in buckets:
        for _ in range(50): # a fresh Swift may answer 503 for a moment
            try:
                c.create_bucket(Bucket=b); break
            except Exception:
                time.sleep(0.2)
        c.head_bucket(Bucket=b)
elif sys.argv[1] == "rmbuckets":
    for b in buckets:
        try:
            for k in keys(b):
                c.delete_object(Bucket=b, Key=k)
            c.delete_bucket(Bucket=b)
        except Exception:
            pass
elif sys.argv[1] == "keys":
    print("\n".join(sorted(keys(sys.argv[2]))))
PY
}
cleanup() {
  psql -q "$R2B_TEST_PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1
  s3 rmbuckets >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
s3 mkbuckets || bail "cannot create the test's buckets"
rc=0

# --- Mastodon's tables, reduced -------------------------------------------------------
# ids: 18-digit snowflakes as today, a 4-digit one from an old instance, and a
# 10-digit one, where Paperclip drops the last incomplete group of 3 digits
M1=109000000000000101 M2=109000000000000102 M3=109000000000000103 M4=1234 M5=1234567890 M6=109000000000000106
psql -q -v ON_ERROR_STOP=1 "$R2B_TEST_PG_URL" >"$T/psql.out" 2>&1 <<SQL || bail "cannot create the tables: $(cat "$T/psql.out")"
CREATE SCHEMA $SCHEMA;
SET search_path TO $SCHEMA;
CREATE TABLE statuses (id bigint PRIMARY KEY, account_id bigint NOT NULL, visibility integer DEFAULT 0 NOT NULL);
CREATE TABLE media_attachments (id bigint PRIMARY KEY, status_id bigint, account_id bigint,
  remote_url character varying DEFAULT '' NOT NULL, file_storage_schema_version integer,
  thumbnail_file_name character varying);
CREATE TABLE mentions (id bigserial PRIMARY KEY, status_id bigint, account_id bigint, silent boolean DEFAULT false NOT NULL);
CREATE TABLE follows (id bigserial PRIMARY KEY, account_id bigint NOT NULL, target_account_id bigint NOT NULL);
-- account 10 is local, 11 remote; 20 and 21 follow 10, 22 follows 11
INSERT INTO follows (account_id, target_account_id) VALUES (20, 10), (21, 10), (22, 11);
INSERT INTO statuses VALUES (1, 10, 0), (2, 10, 2), (3, 11, 3), (4, 10, 4), (5, 11, 2), (6, 10, 1);
INSERT INTO mentions (status_id, account_id, silent) VALUES (2, 30, false), (3, 40, false), (3, 41, false),
  (4, 50, true), (6, 60, false);
INSERT INTO media_attachments VALUES
  ($M1, 1, 10, '', 1, NULL),
  ($M2, 2, 10, '', 1, 'b.png'),
  ($M3, 3, 11, 'https://remote.example/c.jpg', 1, NULL),
  ($M4, 4, 10, '', NULL, NULL),
  ($M5, 5, 11, '', NULL, NULL),
  ($M6, NULL, 10, '', 1, NULL);
SQL

PGOPTIONS="-c search_path=$SCHEMA" psql -At -F, -v ON_ERROR_STOP=1 -f "$SQL" "$R2B_TEST_PG_URL" >"$T/map.csv" 2>"$T/err"
rc=$?
check "the export runs (psql -At -F, -f visibility-map.sql)" eval 'is $rc 0 && [ -s "$T/map.csv" ]'
part() { python3 -c 'import re,sys; print("/".join(re.findall(r"\d{3}", "%09d" % int(sys.argv[1]))))' "$1"; }
P2=$(part $M2) P3=$(part $M3)
check "Paperclip's id partitions: 18 digits in 6 groups, 1234 padded, 1234567890 cut to 123/456/789" \
  eval 'is "$P2" 109/000/000/000/000/102 && is "$(part $M4)" 000/001/234 && is "$(part $M5)" 123/456/789'
map=$(cat "$T/map.csv")
check "four directories per restricted attachment, nothing for public, unlisted or unattached media" \
  eval 'lines "$map" 16 && ! has "$map" "$(part $M1)" && ! has "$map" "$(part $M6)"'
check "followers-only: private, owner, followers and mentioned accounts" \
  eval 'grep -qxF "media_attachments/files/$P2/,private,10,20,21,30" "$T/map.csv" && grep -qxF "media_attachments/thumbnails/$P2/,private,10,20,21,30" "$T/map.csv"'
check "direct (a remote status, cached media): direct, the mentioned accounts" \
  eval 'grep -qxF "cache/media_attachments/files/$P3/,direct,11,40,41" "$T/map.csv"'
check "limited: direct, silent mentions included; an old short id and a 10-digit id mapped" \
  eval 'grep -qxF "media_attachments/files/000/001/234/,direct,10,50" "$T/map.csv" && grep -qxF "media_attachments/files/123/456/789/,private,11,22" "$T/map.csv"'

# --- a public/system tree as Paperclip lays it out ----------------------------------------
SRC=$T/system
mk() { mkdir -p "$SRC/$(dirname "$1")" && head -c $((1000 + RANDOM)) /dev/urandom >"$SRC/$1"; }
mk "media_attachments/files/$(part $M1)/original/a1b2c3d4e5f60718.jpg"
mk "media_attachments/files/$(part $M1)/small/a1b2c3d4e5f60718.jpg"
mk "media_attachments/files/$P2/original/b1b2c3d4e5f60718.jpg"
mk "media_attachments/files/$P2/small/b1b2c3d4e5f60718.jpg"
mk "media_attachments/thumbnails/$P2/original/b1b2c3d4e5f60718.png"
mk "cache/media_attachments/files/$P3/original/c1b2c3d4e5f60718.jpg"
mk "media_attachments/files/000/001/234/original/d1b2c3d4e5f60718.jpg"
mk "media_attachments/files/123/456/789/original/e1b2c3d4e5f60718.jpg"
mk "media_attachments/files/$(part $M6)/original/f1b2c3d4e5f60718.jpg"
mk "accounts/avatars/000/000/010/original/a0b2c3d4e5f60718.png"
run migrate --from-dir "$SRC" --visibility-map "$T/map.csv" --jobs 2 --json
check "migrate with the exported map: exit 0" eval 'is $rc 0'

private_keys=$(s3 keys "$R2B_PRIVATE_BUCKET")
public_keys=$(s3 keys "$S3_BUCKET")
check "the private bucket holds exactly the followers-only, direct and limited files (boto3)" \
  eval 'is "$private_keys" "$(cd "$SRC" && find . -type f | sed "s|^\./||" | grep -E "/($P2|$P3|000/001/234|123/456/789)/" | sort)"'
check "the public bucket holds exactly the others (boto3)" \
  eval 'is "$public_keys" "$(cd "$SRC" && find . -type f | sed "s|^\./||" | grep -vE "/($P2|$P3|000/001/234|123/456/789)/" | sort)"'
show() { run manifest show "$1" --json; json "$out" '"%s %s %s %s" % (d["visibility"], d["bucket"] == __import__("os").environ["R2B_PRIVATE_BUCKET"], d["owner_id"], sorted(d["audience"] or []))'; }
check "manifest: followers-only thumbnail private, owner 10, audience 20 21 30 (the owner is always allowed)" \
  eval 'is "$(show "media_attachments/thumbnails/$P2/original/b1b2c3d4e5f60718.png")" "private True 10 [20, 21, 30]"'
check "manifest: cached remote direct media, owner 11, audience 40 41" \
  eval 'is "$(show "cache/media_attachments/files/$P3/original/c1b2c3d4e5f60718.jpg")" "direct True 11 [40, 41]"'
check "manifest: the 10-digit id's file private, owner 11, audience 22" \
  eval 'is "$(show "media_attachments/files/123/456/789/original/e1b2c3d4e5f60718.jpg")" "private True 11 [22]"'
check "manifest: unattached media public" \
  eval 'has "$(show "media_attachments/files/$(part $M6)/original/f1b2c3d4e5f60718.jpg")" "public False"'

finish
