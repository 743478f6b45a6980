#!/usr/bin/env bash
# disk.sh BINARY: r2bridge upload and migrate when the local disk misbehaves
# (git t/ style): a manifest that cannot be written (read-only directory,
# read-only file), a full temp directory, a file size limit (RLIMIT_FSIZE),
# a full disk under the manifest. Each must give a one-line error and the
# exit code that tells the caller what to do (3: fix the setting, 75: retry
# later), leave no temp file, and claim nothing: no `stored` record, and no
# object on the server for a run that failed before its first record.
#
# Full disks are small tmpfs mounts when this process may mount them (root);
# otherwise the temp-directory cases use RLIMIT_FSIZE instead (said in the
# case's name) and the manifest-disk cases cannot run (said, not counted).
# As root, read-only permissions are enforced by running r2bridge without
# CAP_DAC_OVERRIDE (setpriv).
#   test/disk.sh path/to/r2bridge
set -uo pipefail

BIN_REAL=${1:?usage: disk.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "disk.sh: $v is not set: run through scripts/test"; echo "not ok 1 - S3 environment"; echo "0 passed, 1 failed"; exit 1
  fi
done
for tool in convert ffmpeg python3 setpriv timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "disk.sh: '$tool' is not installed"; echo "not ok 1 - tools"; echo "0 passed, 1 failed"; exit 1
  fi
done
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-disk.XXXXXX")
MOUNTS=()
cleanup() {
  for m in ${MOUNTS[@]+"${MOUNTS[@]}"}; do umount "$m" 2>/dev/null; done
  chmod -R u+w "$T" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
BIN=$T/r2bridge # lib.sh's run() calls $BIN: wrappers below pick how
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true S3_RETRY_LIMIT=1
unset S3_ALIAS_HOST
P="disk-$$-$RANDOM"
convert -size 900x700 plasma:fractal -seed 9 -quality 90 "$T/photo.jpg" 2>/dev/null
convert -size 800x600 xc: +noise Random -quality 90 "$T/noise.webp" 2>/dev/null # WebP: written in one piece
# MPEG-4 Part 2: re-encoded to H.264 (the video module writes through FFmpeg's own I/O)
ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=30" -t 3 \
  -c:v mpeg4 -q:v 3 "$T/clip.mp4"

# wrappers: plain, without the root override of file permissions, size-limited
mkwrap() { printf '#!/bin/bash\n%s\nexec timeout -k 5 60 %s "%s" "$@"\n' "$2" "$3" "$BIN_REAL" >"$T/$1"; chmod +x "$T/$1"; }
LIMITED=""
[ "$(id -u)" = 0 ] && LIMITED="setpriv --bounding-set -dac_override,-dac_read_search"
mkwrap r2bridge "" ""
mkwrap r2bridge-limited "" "$LIMITED"
mkwrap r2bridge-fsize "ulimit -f 64 # KiB: a transcoded style is bigger" ""
with() { local keep=$BIN; BIN=$T/$1; shift; run "$@"; BIN=$keep; }

one_line() { [ -n "$err" ] && lines "$err" 1; }
no_crash() { ! printf '%s' "$err" | grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:|File size limit'; }
empty_dir() { [ -z "$(ls -A "$1")" ]; }
# nothing under KEYPREFIX on the server (read straight from it)
absent() { [ -z "$("$T/r2bridge" ls "$1" 2>/dev/null)" ]; }
# count of records in the SQLite manifest FILE with STATE (or "any"), read with
# python's sqlite3 from a copy: opening the file itself would create its WAL
# files, and a read-only directory would not stay the case it was
records() {
  python3 - "$1" "$2" <<'PY'
import os, shutil, sqlite3, sys, tempfile
if not os.path.exists(sys.argv[1]):
    print(0); sys.exit()
with tempfile.TemporaryDirectory() as d:
    for ext in ("", "-wal"):
        if os.path.exists(sys.argv[1] + ext):
            shutil.copyfile(sys.argv[1] + ext, os.path.join(d, "m.db" + ext))
    db = sqlite3.connect(os.path.join(d, "m.db"))
    print(db.execute("SELECT count(*) FROM r2b_objects WHERE state = ? OR ? = 'any'",
                     (sys.argv[2], sys.argv[2])).fetchone()[0])
    db.close()
PY
}
# stored records of the manifest FILE whose object the server lacks or has at another size
false_claims() {
  python3 - "$1" "$T/r2bridge" <<'PY'
import json, sqlite3, subprocess, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
bad = 0
for key, size in db.execute("SELECT key, size FROM r2b_objects WHERE state = 'stored'"):
    r = subprocess.run([sys.argv[2], "head", key, "--json"], capture_output=True, text=True)
    bad += r.returncode != 0 or json.loads(r.stdout)["size"] != size
print(bad)
PY
}
try_mount() { mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null && MOUNTS+=("$1"); }
fill() { dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null; :; }

mkdir -p "$T/tmp"
export R2B_TMPDIR=$T/tmp
up() { # up WRAPPER ID [ARGS...]: upload the photo under $P/ID/original/pic.jpg
  local w=$1 id=$2
  shift 2
  with "$w" upload "$T/photo.jpg" --visibility public --account 5 --key "$P/$id/original/pic.jpg" "$@"
}

# --- 1. the manifest cannot be written ----------------------------------------------------

mkdir -p "$T/ro-new" && chmod 555 "$T/ro-new"
R2B_MANIFEST="sqlite://$T/ro-new/m.db" up r2bridge-limited ro-new
check "new manifest in a read-only directory: exit 3, one line naming it" \
  eval 'is $rc 3 && one_line && has "$err" "$T/ro-new/m.db" && has "$err" "writable"'
check "  nothing uploaded, no temp file, no manifest file" \
  eval 'absent "$P/ro-new/" && empty_dir "$T/tmp" && empty_dir "$T/ro-new"'

mkdir -p "$T/ro-dir"
R2B_MANIFEST="sqlite://$T/ro-dir/m.db" up r2bridge ro-dir-before
check "(a manifest made while its directory was writable: upload ok)" eval 'is $rc 0'
chmod 555 "$T/ro-dir"
R2B_MANIFEST="sqlite://$T/ro-dir/m.db" up r2bridge-limited ro-dir
check "existing manifest, directory made read-only: upload exits 3, one line" \
  eval 'is $rc 3 && one_line && has "$err" "readonly" && no_crash'
check "  nothing uploaded, no temp file, the manifest unchanged (2 stored records)" \
  eval 'absent "$P/ro-dir/" && empty_dir "$T/tmp" && is "$(records "$T/ro-dir/m.db" any)" 2'
mkdir -p "$T/tree/$P/mg-ro/a"
head -c 3000 /dev/urandom >"$T/tree/$P/mg-ro/a/one.bin"
R2B_MANIFEST="sqlite://$T/ro-dir/m.db" with r2bridge-limited migrate --from-dir "$T/tree" --prefix "$P/mg-ro/"
check "  and migrate exits 3 before any upload" eval 'is $rc 3 && one_line && absent "$P/mg-ro/"'

mkdir -p "$T/ro-file"
R2B_MANIFEST="sqlite://$T/ro-file/m.db" with r2bridge manifest ls
chmod 444 "$T/ro-file/m.db"
R2B_MANIFEST="sqlite://$T/ro-file/m.db" up r2bridge-limited ro-file
check "read-only manifest file in a writable directory: exit 3, one line" \
  eval 'is $rc 3 && one_line && has "$err" "readonly" && no_crash'
check "  nothing uploaded, no temp file, no record" \
  eval 'absent "$P/ro-file/" && empty_dir "$T/tmp" && is "$(records "$T/ro-file/m.db" any)" 0'

# --- 2. the temp directory is full --------------------------------------------------------

export R2B_MANIFEST="sqlite://$T/m.db"
if try_mount "$T/small" 128k; then
  HOW="a full 128 KiB tmpfs" TMPW=r2bridge TMPD=$T/small
else
  echo "# cannot mount a tmpfs here: the temp-directory cases use RLIMIT_FSIZE"
  HOW="RLIMIT_FSIZE 64 KiB (no tmpfs here)" TMPW=r2bridge-fsize TMPD=$T/tmp
fi
R2B_TMPDIR=$TMPD up $TMPW tmp-full
check "upload, temp directory on $HOW: exit 75 (retry later), one line saying so" \
  eval 'is $rc 75 && one_line && no_crash && (has "$err" "No space left" || has "$err" "File too large")'
check "  no temp file left, no record, nothing uploaded" \
  eval 'empty_dir "$TMPD" && is "$(records "$T/m.db" any)" 0 && absent "$P/tmp-full/"'
R2B_TMPDIR=$TMPD up $TMPW tmp-full-json --json
check "  --json: retryable, exit_code 75" \
  eval 'is $rc 75 && is "$(json "$out" "d[\"retryable\"], d[\"exit_code\"]")" "True 75"'

up r2bridge-fsize fsize
check "upload under RLIMIT_FSIZE: exit 75, not killed by SIGXFSZ, one line" \
  eval 'is $rc 75 && one_line && no_crash && has "$err" "File too large"'
check "  no temp file left, no record, nothing uploaded" \
  eval 'empty_dir "$T/tmp" && is "$(records "$T/m.db" any)" 0 && absent "$P/fsize/"'

# a video: the transcode's output (FFmpeg's writer) or its poster frame hits the wall
R2B_TMPDIR=$TMPD with $TMPW upload "$T/clip.mp4" --visibility public --account 5 --id 42 --json
check "video upload, temp directory on $HOW: exit 75, retryable, one line" \
  eval 'is $rc 75 && no_crash && is "$(json "$out" "d[\"retryable\"], d[\"exit_code\"]")" "True 75" && (has "$out" "No space left" || has "$out" "File too large")'
check "  no temp file left, no record" eval 'empty_dir "$TMPD" && is "$(records "$T/m.db" any)" 0'
with r2bridge-fsize inspect "$T/noise.webp"
check "WebP inspect under RLIMIT_FSIZE: exit 75 (a short write is not an I/O error), no temp file" \
  eval 'is $rc 75 && one_line && no_crash && has "$err" "File too large" && empty_dir "$T/tmp"'
with r2bridge-fsize inspect "$T/clip.mp4"
check "video inspect under RLIMIT_FSIZE: exit 75, not killed by SIGXFSZ, one line, no temp file" \
  eval 'is $rc 75 && one_line && no_crash && has "$err" "File too large" && empty_dir "$T/tmp"'

up r2bridge tmp-ok --json
check "with room again, the same upload succeeds: 2 styles stored and on the server" \
  eval 'is $rc 0 && is "$(records "$T/m.db" stored)" 2 && ! absent "$P/tmp-ok/" && empty_dir "$T/tmp"'

# --- 3. the manifest's disk is full --------------------------------------------------------

if try_mount "$T/mfull" 256k; then
  export R2B_MANIFEST="sqlite://$T/mfull/m.db"
  with r2bridge manifest ls
  fill "$T/mfull"
  up r2bridge mfull-open
  check "manifest on a full disk: exit 75, one line naming the manifest" \
    eval 'is $rc 75 && one_line && has "$err" "$T/mfull/m.db" && no_crash'
  check "  nothing uploaded, no temp file" eval 'absent "$P/mfull-open/" && empty_dir "$T/tmp"'
  # a reader keeps the WAL files open (as a `sign --stdin` process would): the
  # open succeeds and the first write meets the full disk
  rm -f "$T/mfull/fill"
  python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM r2b_objects").fetchall()
print("open", flush=True); time.sleep(30)' "$T/mfull/m.db" >"$T/holder.out" &
HOLDER=$!
  for _ in $(seq 50); do [ -s "$T/holder.out" ] && break; sleep 0.1; done
  fill "$T/mfull"
  up r2bridge mfull-write
  check "manifest disk full at the first write: exit 75, one line, 'disk is full'" \
    eval 'is $rc 75 && one_line && has "$err" "full" && no_crash'
  check "  nothing uploaded (the pending record comes first), no temp file" \
    eval 'absent "$P/mfull-write/" && empty_dir "$T/tmp"'
  mkdir -p "$T/tree/$P/mg-full/a"
  head -c 3000 /dev/urandom >"$T/tree/$P/mg-full/a/one.bin"
  head -c 4000 /dev/urandom >"$T/tree/$P/mg-full/a/two.bin"
  with r2bridge migrate --from-dir "$T/tree" --prefix "$P/mg-full/" --json
  check "migrate with the manifest disk full: exit 75, nothing uploaded" \
    eval 'is $rc 75 && absent "$P/mg-full/" && no_crash'
  kill "$HOLDER" 2>/dev/null
  wait "$HOLDER" 2>/dev/null
  rm -f "$T/mfull/fill"
  with r2bridge migrate --from-dir "$T/tree" --prefix "$P/mg-full/" --json
  check "  with room again, the rerun moves both files" \
    eval 'is $rc 0 && is "$(json "$out" "d[\"files_moved\"]")" 2 && is "$(records "$T/mfull/m.db" stored)" 2'
  check "no stored record names an object the server lacks (r2bridge head, straight to it)" \
    eval 'is "$(false_claims "$T/mfull/m.db")" 0'
else
  echo "# cannot mount a tmpfs here: the manifest-disk-full cases did not run (not counted)"
fi
finish
