#!/usr/bin/env bash
# migrate.sh BINARY: `r2bridge migrate` moving generated Mastodon trees into
# the local S3 server (git t/ style). Every outcome is read back by an
# independent client (boto3, path-style): each object's MD5 against its
# file's, the bucket listing against the tree, the manifest against both.
#
#  1. a ~620-file tree (id partitions, cache/, odd names, two multipart files)
#     with a fresh SQLite manifest: store == tree byte for byte, manifest == tree
#  2. the rerun, through test/fault_proxy.py: skips everything, sends nothing
#  3. SIGKILL at random moments (>= 10 times), restarted with the same command:
#     exact end state, never a `stored` record without its object, bytes sent
#     over all runs < 1.2x the subtree (from the proxy's request log)
#  4. 5xx/SlowDown, connections reset mid-body, stalled answers (the proxy):
#     completes, nothing lost or corrupted
#  5. --dry-run writes nothing; symlinks (file and directory) pointing outside
#     the tree, an empty file, a non-UTF-8 name and a control character are
#     reported, never uploaded (exit 1); --prefix; a visibility map routes a
#     prefix to the private bucket with owner and audience
#  6. with R2B_TEST_PG_URL: case 1 and 2 again on the PostgreSQL manifest
#
# Needs the environment of scripts/s3-local (scripts/test exports it) and
# python3 with boto3 (or just botocore, which boto3 wraps); fails, never
# skips, without them. The keys of a run live under one unique top-level
# prefix, left in place (the test server is thrown away; R2B_MIGRATE_CLEAN=1
# removes them, ~10 s). R2B_MIGRATE_SEED replays a run's trees and pauses;
# R2B_MIGRATE_KEEP=1 keeps the work directory.
#   test/migrate.sh path/to/r2bridge
set -uo pipefail

BIN_REAL=${1:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
RUN_LIMIT=150 # seconds before a hung r2bridge run is killed (a failure)

bail() {
  echo "migrate.sh: $1" >&2
  echo "not ok 1 - $1"
  echo "0 passed, 1 failed"
  exit 1
}
[ -n "$BIN_REAL" ] && [ -x "$BIN_REAL" ] || bail "usage: migrate.sh path/to/r2bridge (got '$BIN_REAL')"
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_PRIVATE_BUCKET; do
  [ -n "${!v:-}" ] || bail "$v is not set: run through scripts/test, or export the local S3 server's environment: eval \"\$(scripts/s3-local start)\""
done
for tool in "$PY" curl timeout; do
  command -v "$tool" >/dev/null 2>&1 || bail "'$tool' is not installed"
done
"$PY" -c 'import sys; assert sys.version_info >= (3, 9); import botocore' 2>/dev/null ||
  bail "$PY (3.9 or later) cannot import boto3 or botocore (apt-get install python3-boto3)"

T=$(mktemp -d "${R2B_TEST_TMP:-${TMPDIR:-/tmp}}/r2b-migrate.XXXXXX") || bail "cannot create a temporary directory"
SECRET=$AWS_SECRET_ACCESS_KEY
# lib.sh's run() calls $BIN: a wrapper that bounds every run in time
. "$HERE/wrap.sh"
BIN=$T/r2bridge
printf '#!/bin/sh\nexec timeout -k 5 %s "%s" "$@"\n' "$((RUN_LIMIT * ${R2B_TEST_TIME_FACTOR:-1}))" \
  "$(r2b_wrapped "$BIN_REAL" "$T")" >"$BIN"
chmod +x "$BIN"
R2B_BIN_WRAPPED=1
. "$HERE/lib.sh"

SEED=${R2B_MIGRATE_SEED:-$(( $(date +%s) % 30000 + $$ % 1000 ))}
RANDOM=$SEED
RUN=r2b-migrate-$(date +%s)-$$-$SEED # every key of this run starts with "$RUN/"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true
export S3_MULTIPART_THRESHOLD=6291456 R2B_PART_SIZE=5242880 # 7-12 MiB files go multipart
unset R2B_MANIFEST S3_ALIAS_HOST
REAL=$S3_ENDPOINT PUB=$S3_BUCKET PRIV=$R2B_PRIVATE_BUCKET
START=$SECONDS
echo "# reader: $("$PY" -c 'import botocore; print("botocore", botocore.__version__)') $("$PY" -c 'import boto3; print("boto3", boto3.__version__)' 2>/dev/null || echo "(no boto3: botocore's client)")"
echo "# seed $SEED (R2B_MIGRATE_SEED replays it), keys under '$RUN/'"

# --- the helper: trees, boto3 readback, the proxy's log ------------------------------------

cat >"$T/h.py" <<'PYEOF'
"""migrate.sh's helper: builds trees; reads the store back with boto3 (never r2bridge)."""
import argparse
import hashlib
import json
import os
import random
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

# odd but legal names: each must arrive under exactly this key
ODD = ["with space.jpg", "a+b=c.png", "ünïcödé_日本語.jpg", "emoji 😀.gif", "comma,name.jpg",
       "per%41cent.jpg", "tilde~x.webp", "paren (1).jpg", "amp&x.png", "hash#q?.jpg",
       "quote'x.jpg", "équipe+été=été.mp4", ".hidden"]


def client():
    """boto3's S3 client; botocore's own (the same client underneath) when only
    python3-botocore is installed."""
    from botocore.config import Config

    args = dict(endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                              max_pool_connections=16))
    try:
        import boto3
    except ImportError:
        import botocore.session

        return botocore.session.get_session().create_client("s3", **args)
    return boto3.client("s3", **args)


def partition(i):
    """Paperclip's id partition (9 digits, or a multiple of 3 for snowflakes)."""
    s = str(i)
    s = s.zfill(9 if len(s) <= 9 else (len(s) + 2) // 3 * 3)
    return "/".join(s[j:j + 3] for j in range(0, len(s), 3))


def cmd_gen(a):
    """A Mastodon public/system tree: about n files of mixed sizes, the odd names, and one
    file per --big size (multipart)."""
    rnd = random.Random(a.seed)
    made = []

    def add(rel, size):
        p = os.path.join(a.dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(rnd.randbytes(size))
        made.append(size)

    def size():
        r = rnd.random()
        if r < 0.6:
            return rnd.randint(1, 30 * 1024)
        if r < 0.93:
            return rnd.randint(30 * 1024, 300 * 1024)
        return rnd.randint(300 * 1024, 1536 * 1024)

    snow = 109876543210987654 + rnd.randint(0, 10 ** 6)
    i = 0
    while len(made) < a.n:
        h = "%016x" % rnd.getrandbits(64)
        kind = i % 10
        if kind < 5:  # attachments with snowflake ids: original + small
            p = partition(snow + i * 7919)
            add("media_attachments/files/%s/original/%s.jpg" % (p, h), size())
            add("media_attachments/files/%s/small/%s.jpg" % (p, h), rnd.randint(1, 60000))
        elif kind == 5:  # pre-snowflake ids
            add("media_attachments/files/%s/original/%s.png" % (partition(1 + i), h), size())
        elif kind == 6:  # remote media cache
            p = partition(snow + i)
            add("cache/media_attachments/files/%s/original/%s.webp" % (p, h), size())
            add("cache/media_attachments/files/%s/small/%s.webp" % (p, h), rnd.randint(1, 40000))
        elif kind == 7:
            p = partition(1000 + i)
            add("accounts/avatars/%s/original/%s.png" % (p, h), rnd.randint(1, 200000))
            add("cache/accounts/headers/%s/original/%s.jpeg" % (p, h), rnd.randint(1, 400000))
        elif kind == 8:
            add("cache/preview_cards/images/%s/original/%s.jpg" % (partition(50000 + i), h),
                rnd.randint(1, 150000))
        else:
            add("custom_emojis/images/%s/static/%s.png" % (partition(300 + i), h),
                rnd.randint(1, 20000))
        i += 1
    if a.odd:
        for j, name in enumerate(ODD):
            add("media_attachments/files/%s/original/%s" % (partition(7000 + j), name),
                rnd.randint(1, 50000))
    for j, big in enumerate(a.big):
        add("media_attachments/files/%s/original/big%d.mp4" % (partition(9000 + j), j), big)
    print(json.dumps({"files": len(made), "bytes": sum(made)}))


def tree(root, top):
    """What migrate must upload: regular non-empty files with printable UTF-8 names."""
    out = {}
    base = os.fsencode(root)
    for d, _, names in os.walk(os.path.join(base, os.fsencode(top))):
        for name in names:
            p = os.path.join(d, name)
            if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) == 0:
                continue
            try:
                key = os.path.relpath(p, base).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
                continue
            out[key] = p
    return out


def md5_file(p):
    h = hashlib.md5()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def listing(s3, bucket, prefix):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
    return out


def manifest(path):
    recs = {}
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                recs[r["key"]] = r
    return recs


def cmd_check(a):
    """The store (both buckets) and the manifest hold exactly the tree, byte for byte."""
    s3 = client()
    want = tree(a.root, a.top)
    bucket_of = {k: a.private_bucket if any(k.startswith(p) for p in a.private) else a.public
                 for k in want}
    store, man = [], []
    got = {b: listing(s3, b, a.top + "/") for b in (a.public, a.private_bucket)}
    for b in got:
        exp = {k for k in want if bucket_of[k] == b}
        missing, extra = sorted(exp - set(got[b])), sorted(set(got[b]) - exp)
        store += ["missing from %s: %s" % (b, k) for k in missing[:5]]
        store += ["unexpected in %s: %s" % (b, k) for k in extra[:5]]
        if len(missing) + len(extra) > 10:
            store.append("(%d missing, %d unexpected in %s)" % (len(missing), len(extra), b))

    def readback(k):
        if k not in got[bucket_of[k]]:
            return None
        body = s3.get_object(Bucket=bucket_of[k], Key=k)["Body"].read()
        return hashlib.md5(body).hexdigest(), len(body)

    with ThreadPoolExecutor(8) as ex:
        back = dict(zip(want, ex.map(readback, want)))
    differ = 0
    for k, p in want.items():
        if back[k] is not None and back[k] != (md5_file(p), os.path.getsize(p)):
            differ += 1
            if differ <= 5:
                store.append("body differs: %s (%d bytes read, file has %d)"
                             % (k, back[k][1], os.path.getsize(p)))
    md5s = {r[0] for r in back.values() if r}
    if a.forbid_md5 and a.forbid_md5 in md5s:
        store.append("an object holds the forbidden content (md5 %s)" % a.forbid_md5)
    recs = {k: r for k, r in manifest(a.manifest).items() if k.startswith(a.top + "/")}
    stored = {k: r for k, r in recs.items() if r["state"] == "stored"}
    man += ["no stored record: %s (%s)" % (k, recs[k]["state"] if k in recs else "none")
            for k in sorted(set(want) - set(stored))[:5]]
    man += ["stored record for no file of the tree: %s" % k
            for k in sorted(set(stored) - set(want))[:5]]
    man += ["record for no file of the tree: %s (%s)" % (k, recs[k]["state"])
            for k in sorted(set(recs) - set(want))[:5]]
    bad = [k for k in set(want) & set(stored)
           if stored[k]["size"] != os.path.getsize(want[k]) or stored[k]["bucket"] != bucket_of[k]]
    man += ["record %s: size %s, bucket %s" % (k, stored[k]["size"], stored[k]["bucket"])
            for k in sorted(bad)[:5]]
    print(json.dumps({
        "ok": not store and not man, "files": len(want),
        "bytes": sum(os.path.getsize(p) for p in want.values()),
        "objects": sum(len(g) for g in got.values()), "readback": sum(1 for r in back.values() if r),
        "differ": differ, "stored": len(stored), "records": len(recs),
        "multipart": sum(1 for g in got.values() for _, e in g.values() if "-" in e),
        "store_problems": store, "manifest_problems": man}))


def cmd_stored_exist(a):
    """In each manifest snapshot, every `stored` record under top names an object of its
    size and ETag in its bucket now."""
    s3 = client()
    lists, out = {}, []
    for snap in a.manifests:
        recs = [r for r in manifest(snap).values()
                if r["state"] == "stored" and r["key"].startswith(a.top + "/")]
        absent = []
        for r in recs:
            if r["bucket"] not in lists:
                lists[r["bucket"]] = listing(s3, r["bucket"], a.top + "/")
            if lists[r["bucket"]].get(r["key"]) != (r["size"], r["etag"]):
                absent.append(r["key"])
        out.append({"stored": len(recs), "absent": len(absent), "examples": absent[:3]})
    print(json.dumps(out))


def cmd_put_bytes(a):
    """Request-body bytes of the PUTs in the proxy's log, from the files' sizes: whole
    objects for PutObject, the part's share for UploadPart. An upper bound: a PUT cut by
    SIGKILL counts whole."""
    with open(a.stats) as f:
        stats = json.load(f)
    total = puts = parts = part_bytes = creates = 0
    per_key, uploads = {}, set()
    for e in stats["requests"]:
        path, _, query = e["target"].partition("?")
        if e["method"] == "POST" and "uploads" in query.split("&"):
            creates += 1
        if e["method"] != "PUT":
            continue
        key = urllib.parse.unquote(path)[len(a.bucket) + 2:]
        size = os.path.getsize(os.path.join(os.fsencode(a.root), key.encode("utf-8")))
        q = dict(urllib.parse.parse_qsl(query))
        if "partNumber" in q:
            size = max(0, min(a.part, size - (int(q["partNumber"]) - 1) * a.part))
            parts += 1
            part_bytes += size
            uploads.add(q.get("uploadId"))
        else:
            per_key[key] = per_key.get(key, 0) + 1
        puts += 1
        total += size
    print(json.dumps({"bytes": total, "puts": puts, "parts": parts, "part_bytes": part_bytes,
                      "multipart_uploads": len(uploads), "multipart_creates": creates,
                      "keys_put_again": sum(1 for n in per_key.values() if n > 1),
                      "log_full": len(stats["requests"]) < stats["total"]}))


def cmd_uploads(a):
    """Incomplete multipart uploads under the prefix."""
    n = 0
    for page in client().get_paginator("list_multipart_uploads").paginate(Bucket=a.bucket,
                                                                           Prefix=a.prefix):
        n += len(page.get("Uploads", []))
    print(n)


def cmd_clean(a):
    """Removes every object and multipart upload under the prefix in the buckets."""
    s3 = client()
    for b in a.buckets:
        keys = list(listing(s3, b, a.prefix))
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                "Quiet": True})
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=b, Prefix=a.prefix):
            for u in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=b, Key=u["Key"], UploadId=u["UploadId"])


def cmd_listing(a):
    print(len(listing(client(), a.bucket, a.prefix)))


def cmd_odd_file(a):
    """A file whose name is raw bytes (a shell cannot always say it)."""
    name = a.name.encode("utf-8").decode("unicode_escape").encode("latin-1")
    fd = os.open(os.path.join(os.fsencode(a.dir), name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"content that must never be uploaded\n")
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("gen")
    p.add_argument("dir")
    p.add_argument("n", type=int)
    p.add_argument("seed", type=int)
    p.add_argument("--big", type=int, action="append", default=[])
    p.add_argument("--odd", action="store_true")
    p.set_defaults(f=cmd_gen)
    p = sub.add_parser("check")
    for name in ("root", "top", "manifest", "public", "private_bucket"):
        p.add_argument(name)
    p.add_argument("--private", action="append", default=[], help="key prefix of private media")
    p.add_argument("--forbid-md5")
    p.set_defaults(f=cmd_check)
    p = sub.add_parser("stored-exist")
    p.add_argument("top")
    p.add_argument("manifests", nargs="+")
    p.set_defaults(f=cmd_stored_exist)
    p = sub.add_parser("put-bytes")
    p.add_argument("stats")
    p.add_argument("root")
    p.add_argument("part", type=int)
    p.add_argument("bucket")
    p.set_defaults(f=cmd_put_bytes)
    p = sub.add_parser("uploads")
    p.add_argument("bucket")
    p.add_argument("prefix")
    p.set_defaults(f=cmd_uploads)
    p = sub.add_parser("clean")
    p.add_argument("prefix")
    p.add_argument("buckets", nargs="+")
    p.set_defaults(f=cmd_clean)
    p = sub.add_parser("listing")
    p.add_argument("bucket")
    p.add_argument("prefix")
    p.set_defaults(f=cmd_listing)
    p = sub.add_parser("odd-file")
    p.add_argument("dir")
    p.add_argument("name", help="with \\xNN escapes")
    p.set_defaults(f=cmd_odd_file)
    a = ap.parse_args()
    a.f(a)


main()
PYEOF
h() { "$PY" "$T/h.py" "$@"; }
# abort WHY: the rest cannot run; counted as a failure
abort() {
  check "$1" false
  finish
  exit 1
}

# --- the proxy (no faults unless a case sets them) -----------------------------------------

PROXY_PID=""
"$PY" "$HERE/fault_proxy.py" --upstream "$REAL" --port 0 --stall 10 >"$T/proxy.port" 2>"$T/proxy.err" &
PROXY_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(head -n 1 "$T/proxy.port" 2>/dev/null)
  [ -n "$PORT" ] && break
  kill -0 "$PROXY_PID" 2>/dev/null || break
  sleep 0.1
done
PROXY=http://127.0.0.1:$PORT

cleanup() {
  if [ -n "$PROXY_PID" ]; then
    kill -TERM "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
  fi
  if [ -n "${R2B_MIGRATE_CLEAN:-}" ]; then # ~10 s on s3-local: off by default
    S3_ENDPOINT=$REAL timeout 60 "$PY" "$T/h.py" clean "$RUN/" "$PUB" "$PRIV" >/dev/null 2>&1
  fi
  if [ -n "${R2B_MIGRATE_KEEP:-}" ]; then
    echo "# kept $T"
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -n "$PORT" ] || abort "the fault proxy did not start: $(head -c 300 "$T/proxy.err")"

ctl() { curl -sS --max-time 10 "$PROXY/__fault/$1"; }
seen() { ctl "count?$1"; } # requests the proxy saw matching "method=PUT&..."
# jf FILE EXPR: EXPR over the JSON document in FILE (d), printed
jf() { "$PY" -c "import json,sys; sys.stdout.reconfigure(errors='surrogateescape'); d=json.load(open(sys.argv[1], errors='surrogateescape')); print($2)" "$1"; }
# migrate output of the last run(), as a file
save() { cp "$T/out" "$T/$1"; }
# rand_sleep: a random pause of 0.1 to 1.5 s
rand_sleep() { local ms=$((100 + RANDOM % 1401)); sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; }
case_start() { CASE_T=$SECONDS; echo "# --- $1"; }
case_end() { echo "# ($((SECONDS - CASE_T)) s)"; }
note() { echo "# note: $*"; }

# moved_all FILE FILES BYTES: a migrate summary saying everything moved, nothing failed
moved_all() {
  [ "$(jf "$1" '"%s %s %s %s %s" % (d["ok"], d["files_seen"], d["files_moved"], d["files_failed"], d["bytes_moved"])')" = "True $2 $2 0 $3" ]
}
# checked FILE: the boto3 check found nothing wrong
checked() { [ "$(jf "$1" 'd["ok"]')" = True ]; }
problems() { jf "$1" '"; ".join(d["store_problems"] + d["manifest_problems"])[:600]'; }

# --- 1. a tree, migrated and read back -------------------------------------------------------

case_start "1. a Mastodon tree with a fresh SQLite manifest"
SRC1=$T/src1 TOP1=$RUN/main
h gen "$SRC1/$TOP1" 600 "$SEED" --odd --big 7340032 --big 11534336 >"$T/gen1.json" || abort "cannot generate the tree"
N1=$(jf "$T/gen1.json" 'd["files"]') B1=$(jf "$T/gen1.json" 'd["bytes"]')
export R2B_MANIFEST=sqlite://$T/main.db
run migrate --from-dir "$SRC1" --json
save mig1.json
check "migrate: exit 0, all $N1 files ($((B1 / 1048576)) MiB) moved, none failed" \
  eval 'is $rc 0 && moved_all "$T/mig1.json" "$N1" "$B1"'
run manifest ls --json --state stored
save main.jsonl
S3_ENDPOINT=$REAL h check "$SRC1" "$TOP1" "$T/main.jsonl" "$PUB" "$PRIV" >"$T/check1.json" 2>"$T/err"
check "boto3 reads every object back byte-identical (MD5), the bucket holds nothing else" \
  eval 'is "$(jf "$T/check1.json" "\"%s %s %s %s\" % (d[\"files\"], d[\"objects\"], d[\"readback\"], len(d[\"store_problems\"]))")" "$N1 $N1 $N1 0"'
check "the manifest's stored records are exactly the tree (keys, sizes, bucket)" \
  eval 'is "$(jf "$T/check1.json" "\"%s %s %s\" % (d[\"stored\"], d[\"records\"], len(d[\"manifest_problems\"]))")" "$N1 $N1 0"'
checked "$T/check1.json" || note "$(problems "$T/check1.json")"
check "the two big files went up as multipart uploads (ETag '-N')" \
  eval 'is "$(jf "$T/check1.json" "d[\"multipart\"]")" 2'
case_end

# --- 2. the rerun: nothing to do, nothing sent ---------------------------------------------

case_start "2. rerun through the proxy"
ctl reset >/dev/null
S3_ENDPOINT=$PROXY run migrate --from-dir "$SRC1" --json
save mig2.json
check "rerun: exit 0, 0 moved, all $N1 skipped" \
  eval 'is $rc 0 && is "$(jf "$T/mig2.json" "\"%s %s %s\" % (d[\"files_moved\"], d[\"files_skipped\"], d[\"files_failed\"])")" "0 $N1 0"'
check "rerun: no PUT or POST reached the server" \
  eval 'is "$(seen method=PUT)" 0 && is "$(seen method=POST)" 0'
TOTAL2=$(seen "")
check "rerun: no per-file request at all ($TOTAL2 requests for $N1 files)" eval '[ "$TOTAL2" -le 2 ]'
case_end

# --- 3. killed at random moments, restarted, finished ----------------------------------------

case_start "3. SIGKILL at random moments"
SRC3=$T/src3 TOP3=$RUN/crash
h gen "$SRC3/$TOP3/b0" 700 $((SEED + 3)) --big 6815744 >"$T/gen3.json" || abort "cannot generate the crash tree"
export R2B_MANIFEST=sqlite://$T/crash.db
ctl reset >/dev/null
kills=0 attempts=0 batches=1 other_rc=""
while [ "$kills" -lt 10 ] && [ "$attempts" -lt 40 ]; do
  attempts=$((attempts + 1))
  S3_ENDPOINT=$PROXY "$BIN_REAL" migrate --from-dir "$SRC3" --json >"$T/crash.$attempts.out" 2>"$T/crash.$attempts.err" &
  pid=$!
  rand_sleep
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$? # 137: the kill landed; anything else: the run ended first
  if [ "$rc" -eq 137 ]; then
    kills=$((kills + 1))
    # the manifest as the crash left it; checked against the store below (a record
    # `stored` at a crash is skipped by every later run, so its object, present or
    # absent then, is the same at the end)
    "$BIN_REAL" manifest ls --json >"$T/crash.man.$(printf %02d "$kills")" 2>>"$T/crash.$attempts.err"
  else
    if [ "$rc" -eq 0 ]; then
      # finished before its kill: the instance keeps writing files; so do we, and go on
      h gen "$SRC3/$TOP3/b$batches" 150 $((SEED + 3 + batches)) >/dev/null
      batches=$((batches + 1))
    else
      other_rc="$other_rc $rc"
    fi
  fi
  cat "$T/crash.$attempts.out" "$T/crash.$attempts.err" >>"$ALL_OUT"
done
S3_ENDPOINT=$PROXY run migrate --from-dir "$SRC3" --json
save mig3.json
RC3=$rc
ctl stats >"$T/crash-stats.json"
run manifest ls --json
save crash.jsonl
S3_ENDPOINT=$REAL h check "$SRC3" "$TOP3" "$T/crash.jsonl" "$PUB" "$PRIV" >"$T/check3.json" 2>"$T/err"
N3=$(jf "$T/check3.json" 'd["files"]') B3=$(jf "$T/check3.json" 'd["bytes"]')
S3_ENDPOINT=$REAL h stored-exist "$TOP3" "$T"/crash.man.* >"$T/stored3.json" 2>"$T/err"
ABSENT3=$(jf "$T/stored3.json" 'sum(x["absent"] for x in d)')
STORED3=$(jf "$T/stored3.json" '",".join(str(x["stored"]) for x in d)')
note "$kills kills landed in $attempts runs ($((batches - 1)) runs finished first and the tree grew); tree: $N3 files, $B3 bytes"
check "at least 10 kills landed mid-run" eval '[ "$kills" -ge 10 ]'
check "no run that was not killed failed (exit codes:${other_rc:- none})" eval 'is "$other_rc" ""'
note "stored records right after each kill: $STORED3"
check "after each kill, no record said 'stored' for an object absent (or of another size or ETag)" \
  eval 'is "$ABSENT3" 0 && is "$(jf "$T/stored3.json" "len(d)")" "$kills"'
[ "$ABSENT3" = 0 ] || note "$(head -c 600 "$T/stored3.json")"
check "the final run completes: exit 0, nothing failed or left to a dead process's claim" \
  eval 'is $RC3 0 && is "$(jf "$T/mig3.json" "\"%s %s %s\" % (d[\"files_failed\"], d.get(\"files_claimed_elsewhere\", 0), d[\"files_seen\"])")" "0 0 $N3"'
check "end state exact: every object byte-identical (boto3), manifest == tree, no stray record" \
  checked "$T/check3.json"
checked "$T/check3.json" || note "$(problems "$T/check3.json")"
S3_ENDPOINT=$REAL h put-bytes "$T/crash-stats.json" "$SRC3" 5242880 "$PUB" >"$T/bytes3.json"
SENT3=$(jf "$T/bytes3.json" 'd["bytes"]')
RATIO3=$("$PY" -c "print('%.3f' % ($SENT3 / $B3))")
note "PUT bodies over all runs: $SENT3 bytes = ${RATIO3}x the tree (an upper bound: a PUT cut by a kill counts whole); $(jf "$T/bytes3.json" '"%d PUTs; %d files sent more than once by PutObject; %d UploadPart (%d bytes) in %d multipart uploads (%d created)" % (d["puts"], d["keys_put_again"], d["parts"], d["part_bytes"], d["multipart_uploads"], d["multipart_creates"])') for $(find "$SRC3" -type f -size +6M | wc -l) multipart file(s)"
check "bytes uploaded over all runs < 1.2x the tree (${RATIO3}x)" \
  eval '[ "$(jf "$T/bytes3.json" "d[\"log_full\"]")" = False ] && "$PY" -c "import sys; sys.exit(not $SENT3 < 1.2 * $B3)"'
LEFT3=$(S3_ENDPOINT=$REAL h uploads "$PUB" "$TOP3/")
note "incomplete multipart uploads left under the crash subtree: $LEFT3 (runs killed between CreateMultipartUpload and CompleteMultipartUpload; nothing aborts them)"
case_end

# --- 4. a faulty network and server ----------------------------------------------------------

case_start "4. 5xx, SlowDown, resets and stalls (S3_READ_TIMEOUT=2, S3_RETRY_LIMIT=5)"
SRC4=$T/src4 TOP4=$RUN/fault
h gen "$SRC4/$TOP4" 150 $((SEED + 4)) --big 6815744 >"$T/gen4.json" || abort "cannot generate the fault tree"
N4=$(jf "$T/gen4.json" 'd["files"]')
export R2B_MANIFEST=sqlite://$T/fault.db
ctl reset >/dev/null
rules_ok=1
for r in \
  "fault=reset-mid-body&method=PUT&param=partNumber=1&count=1" \
  "fault=503&method=POST&param=uploads&count=1" \
  "fault=500&method=POST&param=uploadId&count=1" \
  "fault=503&method=PUT&skip=4&count=1" "fault=500&method=PUT&skip=6&count=1" \
  "fault=reset-mid-body&method=PUT&skip=5&count=1" "fault=slowdown&method=PUT&skip=8&count=2" \
  "fault=stall&method=PUT&skip=6&count=1" "fault=reset-before-body&method=PUT&skip=7&count=1" \
  "fault=503&method=PUT&skip=9&count=1" "fault=reset-mid-body&method=PUT&skip=6&count=1" \
  "fault=reset-after-body&method=PUT&skip=8&count=1" "fault=stall&method=PUT&skip=10&count=1" \
  "fault=500&method=PUT&skip=7&count=2" "fault=reset-mid-response&method=PUT&skip=6&count=1" \
  "fault=slowdown&method=PUT&skip=9&count=1" "fault=reset-mid-body&method=PUT&skip=8&count=1"; do
  case $(ctl "set?$r") in *'"ok": true'*) ;; *) rules_ok=0 ;; esac
done
check "fault rules accepted by the proxy" eval 'is $rules_ok 1'
F4="S3_ENDPOINT=$PROXY S3_READ_TIMEOUT=2 S3_OPEN_TIMEOUT=2 S3_RETRY_LIMIT=5"
env $F4 "$BIN" migrate --from-dir "$SRC4" --json >"$T/out" 2>"$T/err"
rc=$?
cat "$T/out" "$T/err" >>"$ALL_OUT"
save mig4.json
runs4=1
if [ "$rc" -ne 0 ]; then
  note "first run under faults: exit $rc: $(head -c 400 "$T/err" | tr '\n' ' ')"
  env $F4 "$BIN" migrate --from-dir "$SRC4" --json >"$T/out" 2>"$T/err"
  rc=$?
  cat "$T/out" "$T/err" >>"$ALL_OUT"
  runs4=2
fi
ctl stats >"$T/fault-stats.json"
FAULTS4=$(jf "$T/fault-stats.json" 'sum(v for k, v in d["by_fault"].items() if k != "forward")')
note "$FAULTS4 faults injected in $(jf "$T/fault-stats.json" 'd["total"]') requests: $(jf "$T/fault-stats.json" '", ".join("%s %d" % kv for kv in sorted(d["by_fault"].items()))')"
note "completed in $runs4 run(s)"
check "migration under faults completes: exit 0 (run $runs4 of at most 2)" eval 'is $rc 0'
check "at least 15 faults were actually injected ($FAULTS4)" eval '[ "$FAULTS4" -ge 15 ]'
# (part 1 may be cut more than once: the method=PUT rules with skip= can land on it too)
check "the multipart file met its own: a part cut mid-body, a 503 on create, a 500 on complete" \
  eval '[ "$(seen "param=partNumber=1&fault=reset-mid-body")" -ge 1 ] && is "$(seen "method=POST&param=uploads&fault=503")" 1 && is "$(seen "method=POST&fault=500")" 1'
"$BIN" manifest ls --json >"$T/fault.jsonl" 2>"$T/err"
S3_ENDPOINT=$REAL h check "$SRC4" "$TOP4" "$T/fault.jsonl" "$PUB" "$PRIV" >"$T/check4.json" 2>"$T/err"
check "nothing lost or corrupted: all $N4 objects byte-identical (boto3), manifest == tree" \
  eval 'checked "$T/check4.json" && is "$(jf "$T/check4.json" "d[\"readback\"]")" "$N4"'
checked "$T/check4.json" || note "$(problems "$T/check4.json")"
LEFT4=$(S3_ENDPOINT=$REAL h uploads "$PUB" "$TOP4/")
check "no multipart upload left behind under faults ($LEFT4)" eval 'is "$LEFT4" 0'
case_end

# --- 5. dry run, what is refused, the visibility map -----------------------------------------

case_start "5. dry run, symlinks, empty and bad names, visibility map"
SRC5=$T/src5 TOP5=$RUN/misc
M5=$SRC5/$TOP5/media_attachments/files
h gen "$SRC5/$TOP5" 40 $((SEED + 5)) --odd >"$T/gen5.json" || abort "cannot generate the misc tree"
mkdir -p "$M5/111/000/001/original" "$M5/111/222/333/original" "$M5/000/000/002/original" \
  "$M5/000/000/003/original" "$M5/000/000/004/original" "$M5/000/000/005/original" "$T/outside"
head -c 3000 /dev/urandom >"$M5/111/000/001/original/p1.jpg"
head -c 4000 /dev/urandom >"$M5/111/000/001/original/p2.png"
head -c 5000 /dev/urandom >"$M5/111/222/333/original/exact.jpg"
head -c 6000 /dev/urandom >"$T/outside/secret.jpg" # must never reach a bucket
SECRET_MD5=$(md5sum <"$T/outside/secret.jpg" | cut -d' ' -f1)
ln -s "$T/outside/secret.jpg" "$M5/000/000/002/original/link.jpg"
ln -s "$T/outside" "$SRC5/$TOP5/cache/escape"
: >"$M5/000/000/003/original/empty.jpg"
h odd-file "$M5/000/000/004/original" 'bad\xffname.jpg'
h odd-file "$M5/000/000/005/original" 'new\nline.jpg'
# a followers-only post of a big account: one map line of 20,001 audience ids (~140 KB)
mkdir -p "$M5/222/000/001/original"
head -c 3000 /dev/urandom >"$M5/222/000/001/original/crowd.jpg"
CROWD=$TOP5/media_attachments/files/222/000/001/original/crowd.jpg
NGOOD5=$(($(jf "$T/gen5.json" 'd["files"]') + 4))
BGOOD5=$(($(jf "$T/gen5.json" 'd["bytes"]') + 15000))
P111=$TOP5/media_attachments/files/111/
EXACT=$TOP5/media_attachments/files/111/222/333/original/exact.jpg
printf '# visibility map\n\n%s,private,42,7,8,9\n%s,direct,43,5\n%s,private,44,%s\n' "$P111" "$EXACT" \
  "$CROWD" "$(seq 100000 120000 | paste -sd, -)" >"$T/map.csv"
export R2B_MANIFEST=sqlite://$T/misc.db

ctl reset >/dev/null
S3_ENDPOINT=$PROXY run migrate --from-dir "$SRC5" --visibility-map "$T/map.csv" --dry-run --json
save mig5dry.json
check "dry run: counts what would move ($NGOOD5 files, $BGOOD5 bytes) and the 5 it would refuse: exit 1" \
  eval 'is $rc 1 && is "$(jf "$T/mig5dry.json" "\"%s %s %s %s\" % (d[\"dry_run\"], d[\"files_moved\"], d[\"bytes_moved\"], d[\"files_failed\"])")" "True $NGOOD5 $BGOOD5 5"'
check "dry run: no request reached the server ($(seen "") sent)" eval 'is "$(seen "")" 0'
run manifest ls --json
check "dry run: the manifest is absent or empty" eval 'is $rc 0 && is "$out" ""'
check "dry run: nothing under the prefix in either bucket" \
  eval 'is "$(S3_ENDPOINT=$REAL h listing "$PUB" "$TOP5/")" 0 && is "$(S3_ENDPOINT=$REAL h listing "$PRIV" "$TOP5/")" 0'

S3_ENDPOINT=$PROXY run migrate --from-dir "$SRC5" --prefix "$P111" --dry-run --json
save mig5prefix.json
check "--prefix: only the 3 files under it, and nothing outside it is reported" \
  eval 'is $rc 0 && is "$(jf "$T/mig5prefix.json" "\"%s %s %s\" % (d[\"files_seen\"], d[\"files_moved\"], d[\"files_failed\"])")" "3 3 0"'

run migrate --from-dir "$SRC5" --visibility-map "$T/map.csv" --json
save mig5.json
check "real run: exit 1, $NGOOD5 moved, 5 failed" \
  eval 'is $rc 1 && is "$(jf "$T/mig5.json" "\"%s %s %s\" % (d[\"ok\"], d[\"files_moved\"], d[\"files_failed\"])")" "False $NGOOD5 5"'
jf "$T/mig5.json" '"\n".join("%s: %s" % (f["key"], f["reason"]) for f in d["failures"])' >"$T/fails5"
fails() { LC_ALL=C grep -q -- "$1" "$T/fails5"; } # fails RE: a line "key: reason" matches
check "the symlink to a file outside the tree is reported, not followed" \
  eval 'fails "^$TOP5/media_attachments/files/000/000/002/original/link.jpg: .*symlink" && has "$err" "failed: '\''$TOP5/media_attachments/files/000/000/002/original/link.jpg'\''"'
check "the symlink to a directory outside the tree is reported, not followed" \
  eval 'fails "^$TOP5/cache/escape: .*symlink"'
check "the empty file is reported" eval 'fails "000/003/original/empty.jpg: .*empty"'
check "the non-UTF-8 name is reported" eval 'fails "000/004/original/bad.*name.jpg: .*UTF-8"'
check "the name with a control character is reported" eval 'fails "control character"'
check "--json output is valid UTF-8 even with a non-UTF-8 name in it" \
  "$PY" -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$T/mig5.json" 2>"$T/err"
"$BIN" manifest ls --json >"$T/misc.jsonl" 2>"$T/err"
S3_ENDPOINT=$REAL h check "$SRC5" "$TOP5" "$T/misc.jsonl" "$PUB" "$PRIV" --private "$P111" --private "$CROWD" \
  --forbid-md5 "$SECRET_MD5" >"$T/check5.json" 2>"$T/err"
check "store == tree: the refused files are in no bucket, the outside file's content nowhere" \
  eval 'is "$(jf "$T/check5.json" "\"%s %s\" % (d[\"objects\"], len(d[\"store_problems\"]))")" "$NGOOD5 0"'
check "manifest == tree: no record of any kind for the refused files" \
  eval 'is "$(jf "$T/check5.json" "\"%s %s\" % (d[\"records\"], len(d[\"manifest_problems\"]))")" "$NGOOD5 0"'
checked "$T/check5.json" || note "$(problems "$T/check5.json")"
run manifest show "$P111"000/001/original/p1.jpg --json
check "mapped prefix: private bucket, visibility private, owner 42, audience [7, 8, 9]" \
  eval 'is $rc 0 && is "$(json "$out" "\"%s %s %s %s %s\" % (d[\"bucket\"], d[\"visibility\"], d[\"state\"], d[\"owner_id\"], d[\"audience\"])")" "$PRIV private stored 42 [7, 8, 9]"'
run manifest show "$EXACT" --json
check "an exact key beats its prefix: direct, owner 43, audience [5], private bucket" \
  eval 'is $rc 0 && is "$(json "$out" "\"%s %s %s %s\" % (d[\"bucket\"], d[\"visibility\"], d[\"owner_id\"], d[\"audience\"])")" "$PRIV direct 43 [5]"'
run manifest show "$CROWD" --json
save crowd.json # (140 KB: too long for one argv string)
check "a map line of 140 KB (20,001 audience ids): private, owner 44, every id kept" \
  eval 'is $rc 0 && is "$(jf "$T/crowd.json" "\"%s %s %s %s %s\" % (d[\"bucket\"], d[\"visibility\"], d[\"owner_id\"], len(d[\"audience\"]), d[\"audience\"][-1])")" "$PRIV private 44 20001 120000"'
run manifest show "$TOP5/media_attachments/files/000/007/000/original/with space.jpg" --json
check "an unmapped file: public bucket, public, owner 0" \
  eval 'is $rc 0 && is "$(json "$out" "\"%s %s %s\" % (d[\"bucket\"], d[\"visibility\"], d[\"owner_id\"])")" "$PUB public 0"'
case_end

# --- 6. the PostgreSQL manifest ----------------------------------------------------------------

if [ -n "${R2B_TEST_PG_URL:-}" ]; then
  case_start "6. PostgreSQL manifest"
  SRC6=$T/src6 TOP6=$RUN/pg
  h gen "$SRC6/$TOP6" 120 $((SEED + 6)) --odd --big 7340032 >"$T/gen6.json" || abort "cannot generate the pg tree"
  N6=$(jf "$T/gen6.json" 'd["files"]') B6=$(jf "$T/gen6.json" 'd["bytes"]')
  export R2B_MANIFEST=$R2B_TEST_PG_URL
  run migrate --from-dir "$SRC6" --json
  save mig6.json
  check "[postgresql] migrate: exit 0, all $N6 files moved" \
    eval 'is $rc 0 && moved_all "$T/mig6.json" "$N6" "$B6"'
  run manifest ls "$TOP6/" --json --state stored
  save pg.jsonl
  S3_ENDPOINT=$REAL h check "$SRC6" "$TOP6" "$T/pg.jsonl" "$PUB" "$PRIV" >"$T/check6.json" 2>"$T/err"
  check "[postgresql] every object byte-identical (boto3), manifest == tree" \
    eval 'checked "$T/check6.json" && is "$(jf "$T/check6.json" "\"%s %s\" % (d[\"readback\"], d[\"stored\"])")" "$N6 $N6"'
  checked "$T/check6.json" || note "$(problems "$T/check6.json")"
  ctl reset >/dev/null
  S3_ENDPOINT=$PROXY run migrate --from-dir "$SRC6" --json
  save mig6b.json
  check "[postgresql] rerun: exit 0, all skipped, no PUT or POST" \
    eval 'is $rc 0 && is "$(jf "$T/mig6b.json" "\"%s %s\" % (d[\"files_moved\"], d[\"files_skipped\"])")" "0 $N6" && is "$(seen method=PUT)" 0 && is "$(seen method=POST)" 0'
  case_end
else
  echo "# 6. R2B_TEST_PG_URL is not set: the PostgreSQL manifest is not exercised"
fi

check "no sanitizer report or crash in any output" \
  eval '! grep -Eq "AddressSanitizer|LeakSanitizer|runtime error:|Segmentation fault|core dumped" "$ALL_OUT"'
echo "# $((SECONDS - START)) seconds"
finish
