#!/usr/bin/env bash
# The Sidekiq worker (scripts/sidekiq/) for real: Debian's redis-server on a
# free loopback port, Debian's Sidekiq running R2BridgeUploadWorker, the
# r2bridge binary, the local S3 server behind test/fault_proxy.py (so that
# "the S3 server is down" can be a closed port), a fresh SQLite manifest.
#
#  1. a good image (public) and a direct one with an audience: the objects
#     read back by an independent client (boto3), the manifest rows, the
#     result the worker returns (styles, meta, blurhash)
#  2. a rejected file: not retried, in the Dead set with the reason, logged
#  3. the S3 server down: the job lands in the Retry set (TemporaryFailure),
#     nothing stored is claimed; the server back and the retry run: stored
#  4. a configuration error (no R2B_PRIVATE_BUCKET, a second Sidekiq):
#     logged at ERROR with the cause, R2Bridge::ConfigurationError in the
#     Retry set, nothing uploaded
# Redis, Sidekiq and the proxy are stopped on every exit path.
#   test/sidekiq.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: sidekiq.sh path/to/r2bridge}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WAIT_S=60 # a condition not reached in this long is a failure (never a timing assertion)

bail() { echo "sidekiq.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_PRIVATE_BUCKET; do
  [ -n "${!v:-}" ] || bail "$v is not set: run through scripts/test, which starts the local S3 server"
done
for c in ruby sidekiq redis-server redis-cli convert; do
  command -v "$c" >/dev/null || bail "$c is missing (scripts/deps installs it)"
done
python3 -c 'import boto3' 2>/dev/null || bail "python3 cannot import boto3 (scripts/deps installs python3-boto3)"

T=$(mktemp -d "${R2B_TEST_TMP:-${TMPDIR:-/tmp}}/r2b-sidekiq.XXXXXX") || bail "cannot create a temporary directory"
SECRET=$AWS_SECRET_ACCESS_KEY
. "$HERE/lib.sh"
REAL=$S3_ENDPOINT PUBLIC=$S3_BUCKET PRIVATE=$R2B_PRIVATE_BUCKET
REDIS_PID="" SIDEKIQ_PID="" PROXY_PID="" KEYS_FILE=$T/keys
OUT=$T/out.d
mkdir -p "$OUT"
: >"$KEYS_FILE"

# stop PID: TERM, then KILL if it is still there after a while
stop() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  stop "$SIDEKIQ_PID"
  stop "$PROXY_PID"
  if [ -n "$REDIS_PID" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
    stop "$REDIS_PID"
  fi
  # the objects this run stored (the bucket outlives the test when run by hand)
  if [ -s "$KEYS_FILE" ]; then
    while read -r bucket key; do
      S3_ENDPOINT=$REAL timeout 20 "$BIN" rm "$key" --bucket "$bucket" >/dev/null 2>&1
    done <"$KEYS_FILE"
  fi
  if [ -n "${R2B_SIDEKIQ_KEEP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for COMMAND...: true once COMMAND succeeds, false after WAIT_S seconds
wait_for() {
  local deadline=$((SECONDS + WAIT_S))
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

T_START=$SECONDS
# --- Redis --------------------------------------------------------------------------
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$T" --logfile "$T/redis.log" --daemonize no &
REDIS_PID=$!
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
redis_up() { [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
wait_for redis_up || bail "redis-server did not start: $(tail -n 5 "$T/redis.log")"

# --- the proxy: "the S3 server is down" = the proxy stopped -----------------------------
start_proxy() { # start_proxy PORT (0: a free one); sets PROXY_PID, PROXY_PORT
  : >"$T/proxy.port"
  python3 "$HERE/fault_proxy.py" --upstream "$REAL" --port "$1" >"$T/proxy.port" 2>>"$T/proxy.err" &
  PROXY_PID=$!
  proxy_ready() { [ -s "$T/proxy.port" ] || ! kill -0 "$PROXY_PID" 2>/dev/null; }
  wait_for proxy_ready
  PROXY_PORT=$(head -n 1 "$T/proxy.port")
  [ -n "$PROXY_PORT" ]
}
start_proxy 0 || bail "the fault proxy did not start: $(tail -n 5 "$T/proxy.err")"

# --- Sidekiq --------------------------------------------------------------------------
ctl() { ruby "$HERE/sidekiq/ctl.rb" "$@"; }
sets() { ctl sets; }
# start_sidekiq LOG [env options, e.g. -u VAR]: sets SIDEKIQ_PID, waits until it heartbeats
start_sidekiq() {
  local log=$1
  shift
  env "$@" R2BRIDGE_BIN="$BIN" R2B_SIDEKIQ_OUT="$OUT" S3_ENDPOINT="http://127.0.0.1:$PROXY_PORT" \
    S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true S3_ALIAS_HOST=files.example.social \
    R2B_MANIFEST="sqlite://$T/manifest.db" S3_RETRY_LIMIT=1 S3_OPEN_TIMEOUT=2 S3_READ_TIMEOUT=5 \
    sidekiq -r "$HERE/sidekiq/boot.rb" -q default -c 2 -t 5 -e test >"$log" 2>&1 &
  SIDEKIQ_PID=$!
  sidekiq_up() { kill -0 "$SIDEKIQ_PID" 2>/dev/null && [ "$(json "$(sets)" 'd["processes"]')" -ge 1 ]; }
  wait_for sidekiq_up
}
start_sidekiq "$T/sidekiq.log" || bail "sidekiq did not start: $(tail -n 20 "$T/sidekiq.log")"
echo "# redis 127.0.0.1:$REDIS_PORT, sidekiq $(sidekiq --version 2>/dev/null | head -n 1 || true), proxy 127.0.0.1:$PROXY_PORT"

# --- helpers on the outcomes ----------------------------------------------------------
# s3_count BUCKET PREFIX: objects under PREFIX, through the real endpoint with boto3
s3_count() {
  python3 - "$@" <<'PY'
import os, sys, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                 aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
print(c.list_objects_v2(Bucket=sys.argv[1], Prefix=sys.argv[2]).get("KeyCount", 0))
PY
}
# stored_ok RESULT_FILE: every style of the result is in its bucket with the
# size and sha256 the worker returned (one boto3 process for all styles)
stored_ok() {
  python3 - "$1" <<'PY'
import hashlib, json, os, sys, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                 aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
styles = json.load(open(sys.argv[1]))["styles"]
assert sorted(styles) == ["original", "small"], sorted(styles)
for s in styles.values():
    body = c.get_object(Bucket=s["bucket"], Key=s["key"])["Body"].read()
    assert (len(body), hashlib.sha256(body).hexdigest()) == (s["size"], s["sha256"]), s["key"]
PY
}
remember_keys() { # the keys of a result, removed at the end
  python3 -c 'import json,sys; [print(s["bucket"], s["key"]) for s in json.load(open(sys.argv[1]))["styles"].values()]' "$1" >>"$KEYS_FILE" 2>/dev/null
}
manifest() { R2B_MANIFEST="sqlite://$T/manifest.db" "$BIN" manifest "$@" 2>>"$T/manifest.err"; }
partition() { printf '%018d' "$1" | sed 's/.../&\//g;s/\/$//'; }
# snap: SETS = Sidekiq's Retry and Dead sets and queue, as ctl.rb sees them now
snap() { SETS=$(sets); }
jid_in() { # jid_in SET JID FIELD: that field of the job in SETS, e.g. jid_in retry J error_class
  json "$SETS" "next((e[\"$3\"] for e in d[\"$1\"] if e[\"jid\"] == \"$2\"), \"\")"
}
in_set() { [ -n "$(jid_in "$1" "$2" jid)" ]; }
# lands_in SET JID: a fresh snapshot shows JID in SET
lands_in() { snap && in_set "$1" "$2"; }
rc=0 # check() prints it on failure

# Media: a photo and a file r2bridge refuses.
convert -size 640x480 plasma:fractal -seed 11 -quality 90 "$T/photo.jpg" 2>/dev/null || bail "convert failed"
printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' >"$T/evil.svg"
# a name a shell would act on: the worker passes it as one argv element
cp "$T/photo.jpg" "$T/photo \$(touch pwned); x.jpg"
BASE_ID=$(( 109000000000000000 + ($(date +%s) % 100000) * 10000 + RANDOM % 1000 ))

# --- 1. good images -------------------------------------------------------------------
id=$BASE_ID
jid=$(ctl enqueue "$T/photo \$(touch pwned); x.jpg" "{\"id\":$id,\"visibility\":\"public\",\"account_id\":100,\"status_id\":7}")
echo "# $((SECONDS - T_START)) s: enqueue"
check "public image: the job is enqueued" eval '[ -n "$jid" ]'
wait_for test -s "$OUT/$id.uploaded.json"
check "public image: the worker returns styles, meta and blurhash" \
  eval 'is "$(json "$(cat "$OUT/$id.uploaded.json")" "\" \".join(sorted(d[\"styles\"])) + \" \" + d[\"meta\"][\"original\"][\"size\"] + \" \" + str(len(d[\"blurhash\"]) > 20)")" "original small 640x480 True"'
remember_keys "$OUT/$id.uploaded.json"
key=$(json "$(cat "$OUT/$id.uploaded.json")" 'd["styles"]["original"]["key"]')
check "public image: Paperclip key under the id partition, public URL on the alias host" \
  eval 'has "$key" "media_attachments/files/$(partition $id)/original/" && is "$(json "$(cat "$OUT/$id.uploaded.json")" "d[\"styles\"][\"original\"][\"url\"]")" "https://files.example.social/$key"'
check "public image: both styles in the public bucket, bytes as returned (boto3)" stored_ok "$OUT/$id.uploaded.json"
out=$(manifest show "$key" --json)
check "public image: manifest row stored, public, owner 100, status 7" \
  eval 'is "$(json "$out" "\"%s %s %s %s %s\" % (d[\"state\"], d[\"visibility\"], d[\"owner_id\"], d[\"status_id\"], d[\"bucket\"])")" "stored public 100 7 $PUBLIC"'
check "no shell ran the file name" eval '[ ! -e pwned ] && [ ! -e "$T/pwned" ] && [ ! -e "$HERE/pwned" ]'

id2=$((BASE_ID + 1))
ctl enqueue "$T/photo.jpg" "{\"id\":$id2,\"visibility\":\"direct\",\"account_id\":100,\"audience\":[200,201]}" >/dev/null
wait_for test -s "$OUT/$id2.uploaded.json"
remember_keys "$OUT/$id2.uploaded.json"
pkey=$(json "$(cat "$OUT/$id2.uploaded.json" 2>/dev/null || echo '{}')" 'd["styles"]["original"]["key"]' 2>/dev/null)
check "direct image: stored in the private bucket, no public URL (boto3)" \
  eval 'stored_ok "$OUT/$id2.uploaded.json" && is "$(json "$(cat "$OUT/$id2.uploaded.json")" "\"%s %s\" % (d[\"styles\"][\"original\"][\"bucket\"], d[\"styles\"][\"original\"][\"url\"])")" "$PRIVATE None"'
out=$(manifest show "$pkey" --json)
check "direct image: manifest row direct with the audience the job gave" \
  eval 'is "$(json "$out" "\"%s %s %s\" % (d[\"state\"], d[\"visibility\"], sorted(d[\"audience\"]))")" "stored direct [100, 200, 201]"'

echo "# $((SECONDS - T_START)) s"
# --- 2. rejected --------------------------------------------------------------------------
id3=$((BASE_ID + 2))
jid=$(ctl enqueue "$T/evil.svg" "{\"id\":$id3,\"visibility\":\"public\",\"account_id\":100}")
wait_for lands_in dead "$jid"
check "rejected file: the job is in the Dead set as R2Bridge::RejectedMedia" \
  eval 'is "$(jid_in dead "$jid" error_class)" R2Bridge::RejectedMedia'
check "rejected file: the reason is recorded (unsupported_type) and reported to the hook" \
  eval 'is "$(jid_in dead "$jid" r2bridge_reject)" unsupported_type && has "$(jid_in dead "$jid" error_message)" "media rejected (unsupported_type)" && is "$(json "$(cat "$OUT/$id3.rejected.json")" "d[\"reason\"]")" unsupported_type'
check "rejected file: logged with the reason, not retried (Retry set empty)" \
  eval 'grep -q "WARN.*media rejected (unsupported_type).*attachment $id3; not retried" "$T/sidekiq.log" && is "$(json "$SETS" "len(d[\"retry\"])")" 0'
check "rejected file: nothing in the manifest, nothing in the bucket" \
  eval '[ -z "$(manifest ls "media_attachments/files/$(partition $id3)/")" ] && is "$(s3_count "$PUBLIC" "media_attachments/files/$(partition $id3)/")" 0'

echo "# $((SECONDS - T_START)) s"
# --- 3. the S3 server down, then back ------------------------------------------------------
stop "$PROXY_PID"
PROXY_PID=""
id4=$((BASE_ID + 3))
jid=$(ctl enqueue "$T/photo.jpg" "{\"id\":$id4,\"visibility\":\"public\",\"account_id\":100}")
wait_for lands_in retry "$jid"
check "S3 down: the job is in the Retry set as R2Bridge::TemporaryFailure (exit 75)" \
  eval 'is "$(jid_in retry "$jid" error_class)" R2Bridge::TemporaryFailure && has "$(jid_in retry "$jid" error_message)" "(exit 75)"'
check "S3 down: nothing claimed stored, nothing in the bucket, not in the Dead set" \
  eval '[ -z "$(manifest ls "media_attachments/files/$(partition $id4)/" --state stored)" ] && is "$(s3_count "$PUBLIC" "media_attachments/files/$(partition $id4)/")" 0 && ! in_set dead "$jid"'
start_proxy "$PROXY_PORT" || bail "the fault proxy did not restart on port $PROXY_PORT: $(tail -n 5 "$T/proxy.err")"
ctl retry-now # the backoff, fast-forwarded: what Sidekiq's scheduler does when it expires
wait_for test -s "$OUT/$id4.uploaded.json"
remember_keys "$OUT/$id4.uploaded.json"
check "S3 back: the retried job succeeds, objects in the bucket (boto3)" stored_ok "$OUT/$id4.uploaded.json"
key4=$(json "$(cat "$OUT/$id4.uploaded.json" 2>/dev/null || echo '{}')" 'd["styles"]["small"]["key"]' 2>/dev/null)
check "S3 back: manifest rows stored; Retry and Dead sets hold no trace of it" \
  eval 'snap && is "$(json "$(manifest show "$key4" --json)" "d[\"state\"]")" stored && ! in_set retry "$jid" && ! in_set dead "$jid"'

echo "# $((SECONDS - T_START)) s"
# --- 4. a configuration error: fails loudly -----------------------------------------------
stop "$SIDEKIQ_PID"
SIDEKIQ_PID=""
start_sidekiq "$T/sidekiq2.log" -u R2B_PRIVATE_BUCKET || bail "the second sidekiq did not start: $(tail -n 20 "$T/sidekiq2.log")"
id5=$((BASE_ID + 4))
jid=$(ctl enqueue "$T/photo.jpg" "{\"id\":$id5,\"visibility\":\"private\",\"account_id\":100}")
wait_for lands_in retry "$jid"
check "config error: R2Bridge::ConfigurationError in the Retry set, with the cause" \
  eval 'is "$(jid_in retry "$jid" error_class)" R2Bridge::ConfigurationError && has "$(jid_in retry "$jid" error_message)" "configuration error (exit 3): private media needs R2B_PRIVATE_BUCKET"'
check "config error: logged at ERROR" \
  eval 'grep -q "ERROR.*configuration error (exit 3): private media needs R2B_PRIVATE_BUCKET.*attachment $id5" "$T/sidekiq2.log"'
check "config error: nothing recorded, nothing uploaded to either bucket" \
  eval '[ -z "$(manifest ls "media_attachments/files/$(partition $id5)/")" ] && is "$(s3_count "$PUBLIC" "media_attachments/files/$(partition $id5)/")$(s3_count "$PRIVATE" "media_attachments/files/$(partition $id5)/")" 00'

echo "# cases ran in $((SECONDS - T_START)) s"
# everything Sidekiq logged and kept in Redis, for finish's secret check
cat "$T/sidekiq.log" "$T/sidekiq2.log" "$OUT"/* >>"$ALL_OUT" 2>/dev/null
snap
echo "$SETS" >>"$ALL_OUT"
finish
