#!/usr/bin/env bash
# CLI tests in git's t/ style: the r2bridge tool against the local S3 server.
# Checks exit codes, stdout (text and JSON) and stderr, and that the secret
# never appears in anything the tool prints.
#   test/cli.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: cli.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY R2B_TEST_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "cli.sh: $v is not set: run through scripts/test, which starts the local S3 server" >&2
    exit 1
  fi
done

T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
export S3_BUCKET=$R2B_TEST_BUCKET S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true
P="cli-$RANDOM$RANDOM"   # key prefix unique to this run
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"

head -c 150000 /dev/urandom >"$T/photo.jpg"
head -c $((6 * 1024 * 1024 + 100)) /dev/urandom >"$T/video.mp4"

# --- help and usage ----------------------------------------------------------------
run --help
check "--help exits 0 and lists commands and exit codes" \
  eval 'is $rc 0 && has "$out" "presign" && has "$out" "75 temporary failure"'
for c in put get head rm ls presign config; do
  run "$c" --help
  check "$c --help exits 0 with usage" eval 'is $rc 0 && has "$out" "usage: r2bridge $c"'
done
run frobnicate
check "unknown command exits 2 with one line" eval 'is $rc 2 && lines "$err" 1 && has "$err" "not a command"'
run put only-one-arg
check "put with one argument exits 2" eval 'is $rc 2 && has "$err" "expected FILE and KEY"'
run put "$T/photo.jpg" k --bogus
check "unknown option exits 2" eval 'is $rc 2 && has "$err" "unknown option"'
run presign k --expires 0
check "presign --expires 0 is refused, not clamped" eval 'is $rc 2 && has "$err" "1 to 604800"'
run presign k --expires 604801
check "presign --expires 604801 is refused" eval 'is $rc 2'
run presign k --expires 1e3
check "presign --expires must be a number" eval 'is $rc 2'
run --version
check "--version" eval 'is $rc 0 && has "$out" "r2bridge "'

# --- configuration -----------------------------------------------------------------
rc=0; out=$(env -u S3_ENDPOINT "$BIN" head x 2>&1); rc=$?; echo "$out" >>"$ALL_OUT"
check "missing S3_ENDPOINT exits 3 naming it" eval 'is $rc 3 && has "$out" "S3_ENDPOINT is not set"'
rc=0; out=$(env -u S3_BUCKET "$BIN" head x 2>&1); rc=$?
check "missing bucket exits 3" eval 'is $rc 3 && has "$out" "S3_BUCKET"'
rc=0; out=$(env -u S3_ENDPOINT "$BIN" head x --json 2>/dev/null); rc=$?
check "--json: a configuration error is a JSON object too (exit 3)" \
  eval 'is $rc 3 && is "$(json "$out" "d[\"ok\"], d[\"exit_code\"]")" "False 3"'
rc=0; out=$(env -u S3_BUCKET "$BIN" ls --json 2>/dev/null); rc=$?
check "--json: no bucket is a JSON object too (exit 3)" \
  eval 'is $rc 3 && has "$(json "$out" "d[\"message\"]")" "S3_BUCKET"'
printf 'R2B_TMPDIR=%s/no-such-dir\n' "$T" >"$T/tmp.env"
chmod 600 "$T/tmp.env"
convert -size 8x8 xc:red "$T/red.png"
run inspect "$T/red.png" --env-file "$T/tmp.env"
check "inspect reads R2B_TMPDIR from --env-file; a missing temp dir is exit 3 naming it" \
  eval 'is $rc 3 && lines "$err" 1 && has "$err" "no-such-dir" && has "$err" "R2B_TMPDIR"'
run get some/key - --json
check "get to stdout with --json is refused (the bytes and the JSON would mix): exit 2" \
  eval 'is $rc 2 && has "$err" "--json cannot be used"'
R2B_FROM_PATH_STYLE=sometimes run migrate --from-s3 s3://src-bucket
check "a bad R2B_FROM_PATH_STYLE is a configuration error (exit 3), not 'false'" \
  eval 'is $rc 3 && has "$err" "R2B_FROM_PATH_STYLE"'
for c in upload sign migrate verify config inspect; do
  run "$c" --bucket b
  check "$c refuses --bucket (it picks its buckets itself): exit 2" \
    eval 'is $rc 2 && has "$err" "unknown option '"'"'--bucket'"'"'"'
done
rc=0; out=$(S3_RETRY_LIMIT=lots "$BIN" head x 2>&1); rc=$?
check "bad S3_RETRY_LIMIT exits 3 naming it" eval 'is $rc 3 && has "$out" "S3_RETRY_LIMIT"'
run config
check "config redacts the secret" \
  eval 'is $rc 0 && has "$out" "AWS_SECRET_ACCESS_KEY=<redacted>" && ! has "$out" "$SECRET"'
run config --json
check "config --json is JSON with the secret redacted" \
  eval 'is $rc 0 && is "$(json "$out" "d[\"AWS_SECRET_ACCESS_KEY\"]")" "<redacted>"'
cat >"$T/env.production" <<EOF
# a Mastodon .env.production
LOCAL_DOMAIN=example.social
export S3_ENDPOINT=$S3_ENDPOINT
S3_BUCKET="$R2B_TEST_BUCKET"
AWS_ACCESS_KEY_ID='$AWS_ACCESS_KEY_ID'
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
EOF
chmod 644 "$T/env.production"
rc=0
env -u S3_ENDPOINT -u S3_BUCKET -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  "$BIN" put "$T/photo.jpg" "$P/from-env-file.jpg" --env-file "$T/env.production" >"$T/out" 2>"$T/err"
rc=$?; out=$(cat "$T/out"); err=$(cat "$T/err"); cat "$T/out" "$T/err" >>"$ALL_OUT"
check "--env-file works and warns that a world-readable file holds a secret" \
  eval 'is $rc 0 && has "$err" "readable by other users" && ! has "$err$out" "$SECRET"'
chmod 600 "$T/env.production"
run head "$P/from-env-file.jpg" --env-file "$T/env.production"
check "a 0600 env file gives no warning" eval 'is $rc 0 && ! has "$err" "readable"'

# --- put, head, get, ls, rm ----------------------------------------------------------
KEY="$P/media_attachments/files/110/000/001/original/a b+c=d&é.jpg"
run put "$T/photo.jpg" "$KEY" --content-type image/jpeg \
  --cache-control "public, max-age=315576000, immutable" --json
check "put --json reports ok, size and the MD5 etag" \
  eval 'is $rc 0 && is "$(json "$out" "d[\"size\"]")" 150000 &&
        is "$(json "$out" "d[\"etag\"]")" "$(md5sum <"$T/photo.jpg" | cut -d" " -f1)"'
run head "$KEY" --json
check "head --json shows type and cache-control" \
  eval 'is $rc 0 && is "$(json "$out" "d[\"content_type\"]")" image/jpeg &&
        is "$(json "$out" "d[\"cache_control\"]")" "public, max-age=315576000, immutable"'
run get "$KEY" "$T/back.jpg"
check "get writes the same bytes" eval 'is $rc 0 && cmp -s "$T/photo.jpg" "$T/back.jpg"'
run get "$KEY" -
check "get to stdout" eval 'is $rc 0 && cmp -s "$T/photo.jpg" "$T/out"'
R2B_PART_SIZE=5242880 run put "$T/video.mp4" "$P/video.mp4" --multipart --json
check "put --multipart with 5 MiB parts gives a 2-part etag" eval 'is $rc 0 && has "$out" "-2\""'
R2B_PART_SIZE=5242880 run put "$T/video.mp4" "$P/video2.mp4"
run get "$P/video.mp4" "$T/video.back"
check "multipart object reads back identical" eval 'is $rc 0 && cmp -s "$T/video.mp4" "$T/video.back"'
run ls "$P/"
check "ls lists the keys" eval 'is $rc 0 && has "$out" "a b+c=d&é.jpg" && has "$out" "video.mp4"'
run ls "$P/" --json
check "ls --json prints one object per line" \
  eval 'is $rc 0 && lines "$out" 4 && is "$(json "$(echo "$out" | head -1)" "d[\"bucket\"]")" "$R2B_TEST_BUCKET"'
run ls "$P/nothing-here/"
check "ls of an empty prefix prints nothing and exits 0" eval 'is $rc 0 && is "$out" ""'
run head "$P/missing.jpg"
check "head of a missing key exits 6" eval 'is $rc 6 && has "$err" "404 NoSuchKey" && lines "$err" 1'
run get "$P/missing.jpg" "$T/missing.jpg"
check "get of a missing key exits 6 and leaves no file" \
  eval 'is $rc 6 && [ ! -e "$T/missing.jpg" ] && [ -z "$(ls "$T" | grep r2b-partial)" ]'
run put "$T/nope.jpg" "$P/nope.jpg"
check "put of a missing file exits 6" eval 'is $rc 6 && has "$err" "cannot open"'
run put "$T" "$P/dir"
check "put of a directory exits 2" eval 'is $rc 2 && has "$err" "not a regular file"'
run rm "$P/video2.mp4" "$P/never-existed"
check "rm deletes and is idempotent" eval 'is $rc 0 && lines "$out" 2'
run head "$P/video2.mp4"
check "deleted key is gone" eval 'is $rc 6'

# --- presigned URLs, fetched with plain curl -------------------------------------------
run presign "$KEY" --expires 60
URL=$out
check "presign prints one URL" eval 'is $rc 0 && lines "$out" 1 && has "$out" "X-Amz-Signature="'
code=$(curl -s -o "$T/pre.jpg" -w '%{http_code}' "$URL")
check "presigned URL fetched with curl: 200, same bytes" eval 'is $code 200 && cmp -s "$T/photo.jpg" "$T/pre.jpg"'
BAD=$(printf '%s' "$URL" | sed -E 's/(X-Amz-Signature=.{5})./\1x/')
code=$(curl -s -o /dev/null -w '%{http_code}' "$BAD")
check "tampered signature gets 403" eval 'is $code 403'
WIDE=$(printf '%s' "$URL" | sed -E 's/X-Amz-Expires=60/X-Amz-Expires=600/')
code=$(curl -s -o /dev/null -w '%{http_code}' "$WIDE")
check "longer expiry on the same signature gets 403" eval 'is $code 403'
run presign "$KEY" --expires 1 --json
EXP=$(json "$out" 'd["url"]')
sleep 3
code=$(curl -s -o /dev/null -w '%{http_code}' "$EXP")
check "expired URL gets 403" eval 'is $code 403'
run presign "$P/upload-me.bin" --method PUT --expires 60
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/photo.jpg" "$out")
run get "$P/upload-me.bin" "$T/upload-me.bin"
check "presigned PUT uploads" eval 'is $code 200 && cmp -s "$T/photo.jpg" "$T/upload-me.bin"'

# --- credentials refused --------------------------------------------------------------
AWS_SECRET_ACCESS_KEY=wrong-secret-value run put "$T/photo.jpg" "$P/denied.jpg"
check "a wrong secret exits 3 with SignatureDoesNotMatch, one line" \
  eval 'is $rc 3 && has "$err" "SignatureDoesNotMatch" && lines "$err" 1 && ! has "$err" "wrong-secret-value"'
AWS_SECRET_ACCESS_KEY=wrong-secret-value run put "$T/photo.jpg" "$P/denied.jpg" --json
check "--json failure is a JSON object with exit_code 3" \
  eval 'is $rc 3 && is "$(json "$out" "d[\"exit_code\"]")" 3 && is "$(json "$out" "d[\"s3_code\"]")" SignatureDoesNotMatch'

# --- unreachable server: temporary failure ----------------------------------------------
S3_ENDPOINT=http://127.0.0.1:9 S3_RETRY_LIMIT=1 run head "$KEY"
check "unreachable endpoint exits 75 after retrying" eval 'is $rc 75 && has "$err" "after 1 retries" && lines "$err" 1'

finish
