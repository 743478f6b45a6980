#!/usr/bin/env bash
# migrate --from-s3: a migrated bucket copied to a second bucket (the exit
# door to another provider), verified byte for byte, resumable, with its
# own manifest. git t/ style.
#   test/migrate_s3.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: migrate_s3.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_TEST_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "migrate_s3.sh: $v is not set: run through scripts/test"; echo "0 passed, 1 failed"; exit 1
  fi
done
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-b2b.XXXXXX")
trap 'rm -rf "$T"' EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true S3_MULTIPART_THRESHOLD=6291456 R2B_PART_SIZE=5242880
P="b2b-$RANDOM$RANDOM"
python3 - "$T/tree/$P" <<'PY'
import os, random, sys
random.seed(3)
root = sys.argv[1]
for i in range(60):
    d = os.path.join(root, "media_attachments/files/%03d/original" % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%02d %s.jpg" % (i, "é+=" if i % 9 == 0 else "")), "wb") as f:
        f.write(os.urandom(random.choice([700, 9000, 120000])))
with open(os.path.join(root, "media_attachments/files/000/original/big.mp4"), "wb") as f:
    f.write(os.urandom(9 * 1024 * 1024))  # multipart on both sides
PY

# 1. the source: the tree migrated into the public bucket
R2B_MANIFEST="sqlite://$T/src.db" run migrate --from-dir "$T/tree" --prefix "$P/"
check "source bucket filled from a tree" eval 'is $rc 0'

# 2. bucket to bucket, with a manifest of its own (another provider's side)
export R2B_MANIFEST="sqlite://$T/dst.db"
S3_BUCKET_DST=$R2B_TEST_BUCKET
S3_BUCKET=$S3_BUCKET_DST run migrate --from-s3 "s3://${S3_BUCKET}" --prefix "$P/" --jobs 4 --json
check "bucket to bucket: 61 objects moved" eval 'is $rc 0 && is "$(json "$out" "d[\"files_moved\"]")" 61'
ok_all=1
while IFS= read -r f; do
  key=${f#"$T/tree/"}
  if ! "$BIN" get "$key" "$T/back" --bucket "$S3_BUCKET_DST" >/dev/null 2>&1 || ! cmp -s "$T/back" "$f"; then
    ok_all=0
    echo "# differs or missing: $key"
  fi
done < <(find "$T/tree" -type f)
check "every object in the second bucket is byte-identical to the tree" eval 'is $ok_all 1'
S3_BUCKET=$S3_BUCKET_DST run head "$P/media_attachments/files/000/original/big.mp4" --json
check "content types kept (video/mp4), multipart on the destination" \
  eval 'is "$(json "$out" "d[\"content_type\"]")" video/mp4 && has "$(json "$out" "d[\"etag\"]")" "-"'
S3_BUCKET=$S3_BUCKET_DST run manifest ls "$P/" --state stored --json
check "the destination's manifest records all 61, with their source" \
  eval 'lines "$out" 61 && has "$out" "s3://$S3_BUCKET/$P/"'
S3_BUCKET=$S3_BUCKET_DST run migrate --from-s3 "s3://${S3_BUCKET}" --prefix "$P/" --json
check "a rerun skips everything, downloads nothing" \
  eval 'is $rc 0 && is "$(json "$out" "d[\"files_skipped\"], d[\"files_moved\"]")" "61 0"'
S3_BUCKET=$S3_BUCKET_DST run migrate --from-s3 "s3://no-such-bucket-r2b" --json
check "a missing source bucket: exit 6" eval 'is $rc 6'
run migrate --from-s3 "https://x" --prefix "$P/"
check "--from-s3 needs s3://BUCKET: exit 2" eval 'is $rc 2'

# 3. credentials: the destination's session token never goes to a source that
# has keys of its own. The source is a recorder that answers every request
# with an empty listing and writes down each X-Amz-Security-Token it saw.
python3 - "$T/rec" <<'PY' &
import http.server, sys
log = open(sys.argv[1] + ".log", "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write("%s\n" % self.headers.get("X-Amz-Security-Token", "-")); log.flush()
        body = (b'<?xml version="1.0"?><ListBucketResult><Name>src</Name><KeyCount>0</KeyCount>'
                b'<IsTruncated>false</IsTruncated></ListBucketResult>')
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/xml"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".port", "w").write(str(srv.server_port))
srv.serve_forever()
PY
rec_pid=$!
for _ in $(seq 50); do [ -s "$T/rec.port" ] && break; sleep 0.1; done
REC="http://127.0.0.1:$(cat "$T/rec.port" 2>/dev/null)"
tokens() { sort -u "$T/rec.log" 2>/dev/null | tr '\n' ' '; }
: >"$T/rec.log"
AWS_SESSION_TOKEN=dest-token R2B_FROM_ENDPOINT=$REC R2B_FROM_ACCESS_KEY_ID=src-key \
  R2B_FROM_SECRET_ACCESS_KEY=src-secret run migrate --from-s3 s3://src --prefix "$P/" --json
check "source with keys of its own: the destination's AWS_SESSION_TOKEN is not sent to it" \
  eval 'is $rc 0 && is "$(tokens)" "- "'
: >"$T/rec.log"
AWS_SESSION_TOKEN=dest-token R2B_FROM_ENDPOINT=$REC R2B_FROM_ACCESS_KEY_ID=src-key \
  R2B_FROM_SECRET_ACCESS_KEY=src-secret R2B_FROM_SESSION_TOKEN=src-token \
  run migrate --from-s3 s3://src --prefix "$P/" --json
check "  R2B_FROM_SESSION_TOKEN is sent instead" eval 'is $rc 0 && is "$(tokens)" "src-token "'
: >"$T/rec.log"
AWS_SESSION_TOKEN=dest-token R2B_FROM_ENDPOINT=$REC run migrate --from-s3 s3://src --prefix "$P/" --json
check "  same keys on both sides: their session token goes with them" \
  eval 'is $rc 0 && is "$(tokens)" "dest-token "'
kill "$rec_pid" 2>/dev/null
finish
