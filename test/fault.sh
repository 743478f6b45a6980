#!/usr/bin/env bash
# fault.sh BINARY: r2bridge against injected faults (git t/ style).
#
# Puts test/fault_proxy.py between the r2bridge binary and the local S3
# server, makes the proxy answer 5xx/429/4xx, reset connections, stall, or
# lie, and checks what the tool does about it: the exit code, the number of
# attempts the proxy saw, and the object on the server, read back directly
# from the server (never through the proxy). Every case prints "ok N - ..."
# or "not ok N - ..." with the reasons; the last line is "N passed, M failed".
#
# Needs the S3 environment of scripts/s3-local exported (scripts/test does
# it): S3_ENDPOINT, S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
# Fails, never skips, when it is missing. Needs python3, curl and awscli.
# R2B_FAULT_KEEP=1 keeps the work directory (captured output) for a look.
set -u
set -o pipefail

PROG=fault.sh
BIN=${1:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}
RETRY=3             # S3_RETRY_LIMIT unless a case says otherwise
READ_TIMEOUT=2      # seconds; the proxy's stalls last up to STALL
STALL=10
RUN_LIMIT=30        # seconds before a hung r2bridge is killed (a failure)

N=0
PASSED=0
FAILED=0

bail() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    printf 'not ok 1 - %s\n' "$2"
    printf '0 passed, 1 failed\n'
    exit 1
}

if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    bail "usage: fault.sh BINARY (the r2bridge executable; got '${BIN}')" "r2bridge binary given"
fi
if [ -z "${S3_ENDPOINT:-}" ]; then
    bail "S3_ENDPOINT is not set: export the local S3 server's environment first, e.g. eval \"\$(scripts/s3-local start)\"" \
        "S3 environment exported"
fi
for v in S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
    [ -n "${!v:-}" ] || bail "$v is not set: export the local S3 server's environment first" \
        "S3 environment exported"
done
for tool in "$PY" curl aws cmp timeout; do
    command -v "$tool" >/dev/null 2>&1 || bail "'$tool' is not installed" "tools present"
done

REAL=$S3_ENDPOINT
BUCKET=$S3_BUCKET
SECRET=$AWS_SECRET_ACCESS_KEY
PREFIX="fault-$$-$(date +%s)"
W=$(mktemp -d "${TMPDIR:-/tmp}/r2b-fault.XXXXXX") || bail "cannot create a temporary directory" "setup"
# under R2B_TEST_WRAPPER (scripts/test --valgrind) the binary runs wrapped, more slowly
. "$HERE/wrap.sh"
BIN=$(r2b_wrapped "$BIN" "$W")
RUN_LIMIT=$((RUN_LIMIT * ${R2B_TEST_TIME_FACTOR:-1}))
OUT=$W/out          # every captured stdout/stderr goes here (the secret check reads it)
mkdir -p "$OUT"
PROXY_PID=""
START=$SECONDS

stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    kill -TERM "$PROXY_PID" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=""
}

cleanup() {
    local keys
    stop_proxy
    # objects of this run, removed directly on the server
    keys=$(S3_ENDPOINT=$REAL timeout 20 "$BIN" ls "$PREFIX/" 2>/dev/null | awk '{print $3}')
    if [ -n "$keys" ]; then
        # shellcheck disable=SC2086
        S3_ENDPOINT=$REAL timeout 20 "$BIN" rm $keys >/dev/null 2>&1
    fi
    if [ -n "${R2B_TEST_OUTPUTS:-}" ] && mkdir -p "$R2B_TEST_OUTPUTS"; then
        cat "$OUT"/* >"$R2B_TEST_OUTPUTS/fault-$$.log" 2>/dev/null # the final secret scan
    fi
    if [ -n "${R2B_FAULT_KEEP:-}" ]; then
        printf '# kept %s\n' "$W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the proxy --------------------------------------------------------------------

"$PY" "$HERE/fault_proxy.py" --upstream "$REAL" --port 0 --stall "$STALL" \
    >"$W/proxy.port" 2>"$OUT/proxy.err" &
PROXY_PID=$!
PORT=""
for _ in $(seq 100); do
    PORT=$(head -n 1 "$W/proxy.port" 2>/dev/null)
    [ -n "$PORT" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$PORT" ] || bail "the fault proxy did not start: $(head -c 500 "$OUT/proxy.err")" "fault proxy started"
PROXY=http://127.0.0.1:$PORT

# ctl PATH?QUERY: the proxy's control endpoint
ctl() { curl -sS --max-time 10 "$PROXY/__fault/$1"; }

# --- cases ------------------------------------------------------------------------

# begin DESCRIPTION: a new case with a clean proxy (no rules, counters at zero)
begin() {
    DESC=$1
    WHY=()
    NOTES=()
    ERRF=""
    ctl reset >/dev/null || WHY+=("cannot reset the fault proxy")
}

finish() {
    N=$((N + 1))
    if [ ${#WHY[@]} -eq 0 ]; then
        printf 'ok %d - %s\n' "$N" "$DESC"
        PASSED=$((PASSED + 1))
    else
        printf 'not ok %d - %s\n' "$N" "$DESC"
        printf '#   %s\n' "${WHY[@]}"
        if [ -n "$ERRF" ] && [ -s "$ERRF" ]; then
            head -n 15 "$ERRF" | sed 's/^/#   stderr: /'
        fi
        FAILED=$((FAILED + 1))
    fi
    [ ${#NOTES[@]} -eq 0 ] || printf '#   note: %s\n' "${NOTES[@]}"
}

# note TEXT: a diagnostic line printed under the case's result
note() { NOTES+=("$1"); }

# fault QUERY: adds a proxy rule ("fault=503&method=PUT&count=2")
fault() {
    local r
    r=$(ctl "set?$1")
    case $r in
    *'"ok": true'*) ;;
    *) WHY+=("cannot set fault rule '$1': $r") ;;
    esac
}

# seen QUERY: how many requests the proxy saw matching QUERY (see fault_proxy.py)
seen() { ctl "count?$1"; }

# want LABEL GOT EXPECTED
want() {
    [ "$2" = "$3" ] || WHY+=("$1: expected $3, got $2")
}

# want_grep LABEL FILE ERE: FILE has a line matching ERE
want_grep() {
    grep -Eq -- "$3" "$2" || WHY+=("$1: no line matching /$3/ in $(basename "$2")")
}

# run NAME [VAR=VALUE...] -- ARGS: r2bridge through the proxy; sets RC, OUTF, ERRF
run() {
    local name=$1 envs=()
    shift
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        envs+=("$1")
        shift
    done
    shift
    OUTF=$OUT/$name.out
    ERRF=$OUT/$name.err
    env S3_ENDPOINT="$PROXY" S3_OVERRIDE_PATH_STYLE=true S3_OPEN_TIMEOUT=1 \
        S3_READ_TIMEOUT=$READ_TIMEOUT S3_RETRY_LIMIT=$RETRY ${envs[@]+"${envs[@]}"} \
        timeout -k 5 "$RUN_LIMIT" "$BIN" "$@" >"$OUTF" 2>"$ERRF"
    RC=$?
    case $RC in
    124 | 137) WHY+=("r2bridge $* did not finish within ${RUN_LIMIT}s (killed)") ;;
    esac
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:|Segmentation|core dumped' "$ERRF"; then
        WHY+=("sanitizer or crash report in stderr of '$name'")
    fi
}

# real NAME ARGS: r2bridge straight to the server; returns its exit code
real() {
    local name=$1
    shift
    S3_ENDPOINT=$REAL S3_OVERRIDE_PATH_STYLE=true timeout -k 5 "$RUN_LIMIT" "$BIN" "$@" \
        >"$OUT/$name.out" 2>"$OUT/$name.err"
}

RB=0
# in_bucket_same KEY FILE: the object on the server is byte-identical to FILE
in_bucket_same() {
    local rc got
    RB=$((RB + 1))
    got=$W/readback.$RB
    real "readback$RB" get "$1" "$got"
    rc=$?
    if [ $rc -ne 0 ]; then
        WHY+=("reading '$1' back from the server: exit $rc: $(head -c 300 "$OUT/readback$RB.err")")
    elif ! cmp -s "$2" "$got"; then
        WHY+=("'$1' on the server is not identical to $(basename "$2")")
    fi
    rm -f "$got"
}

# absent_in_bucket KEY: the server has no such object
absent_in_bucket() {
    local rc
    RB=$((RB + 1))
    real "absent$RB" head "$1"
    rc=$?
    [ $rc -eq 6 ] || WHY+=("'$1' should not exist on the server: head exited $rc")
}

# no_partials DIR: no temporary download file left in DIR
no_partials() {
    local left
    left=$(find "$1" -maxdepth 1 -name '*.r2b-partial-*' | head -n 3)
    [ -z "$left" ] || WHY+=("partial download files left behind: $left")
}

printf '[default]\ns3 =\n    addressing_style = path\n' >"$W/aws.cfg"
AWSN=0
# uploads_of KEY: in-progress multipart uploads of KEY on the server ("error" if unknown)
uploads_of() {
    AWSN=$((AWSN + 1))
    if ! AWS_CONFIG_FILE=$W/aws.cfg timeout 30 aws --endpoint-url "$REAL" --region auto \
        s3api list-multipart-uploads --bucket "$BUCKET" --prefix "$1" --output json \
        >"$OUT/aws$AWSN.out" 2>"$OUT/aws$AWSN.err"; then
        echo error
        return
    fi
    "$PY" -c '
import json, sys
text = open(sys.argv[1]).read().strip()
doc = json.loads(text) if text else {}
print(sum(1 for u in doc.get("Uploads") or [] if u.get("Key") == sys.argv[2]))
' "$OUT/aws$AWSN.out" "$1" 2>>"$OUT/aws$AWSN.err" || echo error
}

# --- fixtures -----------------------------------------------------------------------

SMALL=$W/small.bin  # 3 MiB: a single PUT, big enough to be cut mid-body
BIG=$W/big.bin      # 12 MiB + a bit: three 5 MiB parts
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >"$SMALL"
head -c $((12 * 1024 * 1024 + 12345)) /dev/urandom >"$BIG"
BASE=$PREFIX/base   # an object the GET/HEAD cases read
MP="R2B_PART_SIZE=5242880"
if ! real setup put "$SMALL" "$BASE"; then
    bail "cannot upload the fixture to $REAL: $(head -c 500 "$OUT/setup.err")" "fixture uploaded"
fi

# --- 1. plain forwarding ------------------------------------------------------------

begin "proxy forwards put, head, get, ls and rm unchanged (signatures stay valid)"
K=$PREFIX/plain
run c1put -- put "$SMALL" "$K"
want "put exit" "$RC" 0
want "PUT requests" "$(seen "method=PUT&path=$K")" 1
in_bucket_same "$K" "$SMALL"
run c1head -- head "$K"
want "head exit" "$RC" 0
want_grep "head output" "$OUTF" "^size: $(stat -c %s "$SMALL")\$"
run c1get -- get "$K" "$W/c1.get"
want "get exit" "$RC" 0
cmp -s "$SMALL" "$W/c1.get" || WHY+=("downloaded file differs")
run c1ls -- ls "$PREFIX/"
want "ls exit" "$RC" 0
want_grep "ls output" "$OUTF" " $K\$"
run c1rm -- rm "$K"
want "rm exit" "$RC" 0
absent_in_bucket "$K"
want "requests seen" "$(seen "")" 5
want "faults applied" "$(seen "fault=forward")" 5
finish

# --- 2. retryable statuses ----------------------------------------------------------

begin "PUT: two 503 SlowDown then success: 3 attempts on one connection, object identical"
K=$PREFIX/slowdown
fault "fault=503&method=PUT&path=$K&count=2"
run c2 -- put -v "$SMALL" "$K"
want "exit" "$RC" 0
want "PUT attempts" "$(seen "method=PUT&path=$K")" 3
want "503 answered" "$(seen "fault=503")" 2
want "connections used (keep-alive)" "$(seen "method=PUT&path=$K&what=conns")" 1
want "retry log lines" "$(grep -c 'retrying.*503 SlowDown' "$ERRF")" 2
in_bucket_same "$K" "$SMALL"
finish

begin "PUT: 500 every time, S3_RETRY_LIMIT=2: exit 75 after exactly 3 attempts, one-line error"
K=$PREFIX/internal
fault "fault=500&method=PUT&path=$K&count=-1"
run c3 S3_RETRY_LIMIT=2 -- put "$SMALL" "$K"
want "exit" "$RC" 75
want "PUT attempts" "$(seen "method=PUT&path=$K")" 3
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" '500.*after 2 retries'
absent_in_bucket "$K"
finish

begin "PUT: 429 once is retried"
K=$PREFIX/throttled
fault "fault=429&method=PUT&path=$K&count=1"
run c4 -- put "$SMALL" "$K"
want "exit" "$RC" 0
want "PUT attempts" "$(seen "method=PUT&path=$K")" 2
in_bucket_same "$K" "$SMALL"
finish

begin "PUT: 400 RequestTimeout once is retried"
K=$PREFIX/reqtimeout
fault "fault=400-timeout&method=PUT&path=$K&count=1"
run c5 -- put "$SMALL" "$K"
want "exit" "$RC" 0
want "PUT attempts" "$(seen "method=PUT&path=$K")" 2
in_bucket_same "$K" "$SMALL"
finish

# --- 3. permanent statuses ----------------------------------------------------------

begin "PUT: 403 AccessDenied: exit 3 after 1 attempt (not retried)"
K=$PREFIX/denied
fault "fault=403&method=PUT&path=$K&count=-1"
run c6 -- put "$SMALL" "$K"
want "exit" "$RC" 3
want "PUT attempts" "$(seen "method=PUT&path=$K")" 1
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" '403 AccessDenied'
absent_in_bucket "$K"
finish

begin "HEAD: 404: exit 6 after 1 attempt (not retried)"
fault "fault=404&method=HEAD&path=$BASE&count=-1"
run c7 -- head "$BASE"
want "exit" "$RC" 6
want "HEAD attempts" "$(seen "method=HEAD&path=$BASE")" 1
want_grep "stderr" "$ERRF" '404'
finish

# --- 4. connections cut -------------------------------------------------------------

begin "PUT: connection reset mid request body is retried, object identical"
# 12 MiB in one PUT, cut after 1 MiB: more than the socket buffers hold, so
# the client is still sending when the reset comes
K=$PREFIX/reset-body
fault "fault=reset-mid-body&method=PUT&path=$K&count=1&at=1048576"
run c8 -- put -v "$BIG" "$K"
want "exit" "$RC" 0
want "PUT attempts" "$(seen "method=PUT&path=$K")" 2
in_bucket_same "$K" "$BIG"
finish

begin "PUT: connection reset before the request body is retried, object identical"
K=$PREFIX/reset-head
fault "fault=reset-before-body&method=PUT&path=$K&count=1"
run c9 -- put -v "$SMALL" "$K"
want "exit" "$RC" 0
want "PUT attempts" "$(seen "method=PUT&path=$K")" 2
in_bucket_same "$K" "$SMALL"
finish

begin "GET: connection reset mid response body is retried, file identical, no partial file"
mkdir -p "$W/dl10"
fault "fault=reset-mid-response&method=GET&path=$BASE&count=1"
run c10 -- get -v "$BASE" "$W/dl10/file"
want "exit" "$RC" 0
want "GET attempts" "$(seen "method=GET&path=$BASE")" 2
if [ ! -f "$W/dl10/file" ]; then
    WHY+=("no downloaded file")
elif ! cmp -s "$SMALL" "$W/dl10/file"; then
    WHY+=("downloaded file differs: $(stat -c %s "$W/dl10/file") bytes, expected $(stat -c %s "$SMALL")")
fi
no_partials "$W/dl10"
finish

begin "GET: connection reset mid body every time: exit 75 after 3 attempts, nothing left behind"
mkdir -p "$W/dl11"
fault "fault=reset-mid-response&method=GET&path=$BASE&count=-1"
run c11 S3_RETRY_LIMIT=2 -- get "$BASE" "$W/dl11/file"
want "exit" "$RC" 75
want "GET attempts" "$(seen "method=GET&path=$BASE")" 3
[ ! -e "$W/dl11/file" ] || WHY+=("the destination file exists after a failed download")
no_partials "$W/dl11"
want "stderr lines" "$(wc -l <"$ERRF")" 1
finish

# --- 5. stalls ----------------------------------------------------------------------

begin "GET: no answer past the read timeout is retried, file identical"
mkdir -p "$W/dl12"
fault "fault=stall&method=GET&path=$BASE&count=1"
run c12 -- get -v "$BASE" "$W/dl12/file"
want "exit" "$RC" 0
want "GET attempts" "$(seen "method=GET&path=$BASE")" 2
cmp -s "$SMALL" "$W/dl12/file" || WHY+=("downloaded file differs or is missing")
no_partials "$W/dl12"
finish

begin "GET: stall mid response body past the read timeout is retried, file identical"
mkdir -p "$W/dl13"
fault "fault=stall-mid-response&method=GET&path=$BASE&count=1"
run c13 -- get -v "$BASE" "$W/dl13/file"
want "exit" "$RC" 0
want "GET attempts" "$(seen "method=GET&path=$BASE")" 2
if [ ! -f "$W/dl13/file" ]; then
    WHY+=("no downloaded file")
elif ! cmp -s "$SMALL" "$W/dl13/file"; then
    WHY+=("downloaded file differs: $(stat -c %s "$W/dl13/file") bytes, expected $(stat -c %s "$SMALL")")
fi
no_partials "$W/dl13"
finish

begin "HEAD: no answer past the read timeout is retried"
fault "fault=stall&method=HEAD&path=$BASE&count=1"
run c14 -- head -v "$BASE"
want "exit" "$RC" 0
want "HEAD attempts" "$(seen "method=HEAD&path=$BASE")" 2
want_grep "head output" "$OUTF" "^size: $(stat -c %s "$SMALL")\$"
finish

# --- 6. a server that lies ----------------------------------------------------------

begin "PUT: 200 with a wrong ETag is not reported as success"
K=$PREFIX/bad-etag
fault "fault=bad-etag&method=PUT&path=$K&count=-1"
run c15 -- put "$SMALL" "$K"
ATT=$(seen "method=PUT&path=$K")
case $RC in
75) note "exit 75 (integrity failure, retryable: what the lead asked for); $ATT attempt(s)" ;;
1) note "exit 1 (integrity failure reported as permanent; the lead asked for 75); $ATT attempt(s)" ;;
*) WHY+=("exit: expected 75 or 1, got $RC") ;;
esac
[ "$ATT" = 1 ] || [ "$ATT" = $((RETRY + 1)) ] ||
    WHY+=("PUT attempts: expected 1 (no retry) or $((RETRY + 1)) (all retries), got $ATT")
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" '[Ee][Tt]ag'
absent_in_bucket "$K"
finish

# --- 7. multipart -------------------------------------------------------------------

begin "multipart: a 503 on one UploadPart is retried, upload completes, object identical"
K=$PREFIX/mp-retry
fault "fault=503&method=PUT&path=$K&param=partNumber=2&count=1"
run c16 "$MP" -- put -v --multipart "$BIG" "$K"
want "exit" "$RC" 0
want "part 2 attempts" "$(seen "method=PUT&path=$K&param=partNumber=2")" 2
want "UploadPart requests" "$(seen "method=PUT&path=$K&param=partNumber")" 4
want "create + complete" "$(seen "method=POST&path=$K")" 2
want "aborts" "$(seen "method=DELETE&path=$K")" 0
in_bucket_same "$K" "$BIG"
want "multipart uploads left" "$(uploads_of "$K")" 0
finish

begin "multipart: connection reset mid UploadPart body is retried, object identical"
K=$PREFIX/mp-reset
fault "fault=reset-mid-body&method=PUT&path=$K&param=partNumber=1&count=1"
run c17 "$MP" -- put -v --multipart "$BIG" "$K"
want "exit" "$RC" 0
want "part 1 attempts" "$(seen "method=PUT&path=$K&param=partNumber=1")" 2
in_bucket_same "$K" "$BIG"
want "multipart uploads left" "$(uploads_of "$K")" 0
finish

begin "multipart: the upload check sees an in-progress upload (the next case is not vacuous)"
K=$PREFIX/mp-probe
AWSN=$((AWSN + 1))
UPID=$(AWS_CONFIG_FILE=$W/aws.cfg timeout 30 aws --endpoint-url "$REAL" --region auto \
    s3api create-multipart-upload --bucket "$BUCKET" --key "$K" --query UploadId \
    --output text 2>"$OUT/aws$AWSN.err")
[ -n "$UPID" ] || WHY+=("cannot create a multipart upload with aws: $(head -c 300 "$OUT/aws$AWSN.err")")
want "uploads seen" "$(uploads_of "$K")" 1
AWSN=$((AWSN + 1))
AWS_CONFIG_FILE=$W/aws.cfg timeout 30 aws --endpoint-url "$REAL" --region auto \
    s3api abort-multipart-upload --bucket "$BUCKET" --key "$K" --upload-id "$UPID" \
    >"$OUT/aws$AWSN.out" 2>"$OUT/aws$AWSN.err" || WHY+=("cannot abort the probe upload")
want "uploads after abort" "$(uploads_of "$K")" 0
finish

begin "multipart: UploadPart failing every time: exit 75, upload aborted, nothing left"
K=$PREFIX/mp-fail
fault "fault=503&method=PUT&path=$K&param=partNumber=2&count=-1"
run c18 "$MP" S3_RETRY_LIMIT=2 -- put --multipart "$BIG" "$K"
want "exit" "$RC" 75
want "part 2 attempts" "$(seen "method=PUT&path=$K&param=partNumber=2")" 3
want "aborts" "$(seen "method=DELETE&path=$K&param=uploadId")" 1
want "completes" "$(seen "method=POST&path=$K&param=uploadId")" 0
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" '503.*after 2 retries'
want "multipart uploads left" "$(uploads_of "$K")" 0
absent_in_bucket "$K"
finish

# --- 8. malformed answers and unreachable servers ------------------------------------

begin "ls: truncated ListObjectsV2 XML: non-zero exit, one-line error, no crash, no hang"
fault "fault=truncated-xml&method=GET&param=list-type=2&count=-1"
run c19 -- ls "$PREFIX/"
[ "$RC" -ne 0 ] || WHY+=("exit: expected non-zero, got 0")
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" '^r2bridge: '
[ "$(seen "fault=truncated-xml")" -ge 1 ] || WHY+=("the proxy truncated nothing")
note "exit $RC, $(seen "param=list-type=2") list request(s): $(head -c 200 "$ERRF")"
finish

begin "unreachable endpoint (connection refused): exit 75 after the retries"
# a port that was free a moment ago: bind, note, close
DEAD=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
run c20 S3_ENDPOINT="http://127.0.0.1:$DEAD" S3_RETRY_LIMIT=1 -- head "$BASE"
want "exit" "$RC" 75
want "stderr lines" "$(wc -l <"$ERRF")" 1
want_grep "stderr" "$ERRF" 'after 1 retries'
finish

# --- 9. the secret ------------------------------------------------------------------

begin "the secret key appears in none of the captured output"
stop_proxy # its stderr is complete now
NFILES=$(find "$OUT" -type f | wc -l)
[ "$NFILES" -ge 20 ] || WHY+=("only $NFILES output files captured")
LEAKS=$(grep -rlF -- "$SECRET" "$OUT")
[ -z "$LEAKS" ] || WHY+=("secret found in: $(echo "$LEAKS" | xargs -n1 basename | tr '\n' ' ')")
finish

printf '# %d seconds\n' $((SECONDS - START))
printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
