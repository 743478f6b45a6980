#!/usr/bin/env bash
# The product end to end through the CLI: upload, sign (and --stdin), grant,
# revoke, visibility, delete, manifest, against the local S3 server and a
# real manifest: a fresh SQLite file, then (when R2B_TEST_PG_URL is set) the
# local PostgreSQL server. git t/ style.
#   test/pipeline.sh path/to/r2bridge
set -uo pipefail

BIN=${1:?usage: pipeline.sh path/to/r2bridge}
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET R2B_PRIVATE_BUCKET; do
  if [ -z "${!v:-}" ]; then
    echo "pipeline.sh: $v is not set: run through scripts/test, which starts the local S3 server" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
done
command -v exiftool >/dev/null || { echo "pipeline.sh: exiftool missing (scripts/deps)"; echo "0 passed, 1 failed"; exit 1; }

T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-pipeline.XXXXXX")
trap 'rm -rf "$T"' EXIT
SECRET=$AWS_SECRET_ACCESS_KEY
. "$(dirname "$0")/lib.sh"
export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true S3_ALIAS_HOST=files.example.social
PUBLIC=$S3_BUCKET PRIVATE=$R2B_PRIVATE_BUCKET
BASE_ID=$(( ($(date +%s) % 100000) * 1000 + RANDOM % 1000 )) # distinct keys per run

# A photo with a location, a camera serial and an XMP creator.
convert -size 1200x900 plasma:fractal -seed 7 -quality 92 "$T/photo.jpg" 2>/dev/null
exiftool -q -overwrite_original -GPSLatitude=48.8584 -GPSLatitudeRef=N -GPSLongitude=2.2945 \
  -GPSLongitudeRef=E -Make=Canon -Model='EOS R5' -SerialNumber=0123456789 \
  -XMP:Creator='Jane Doe' -Orientation=6 -n "$T/photo.jpg"
printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' >"$T/evil.svg"

backend() { # backend NAME URL: the whole suite against one manifest
  local name=$1 url=$2 id key small pkey psmall
  export R2B_MANIFEST=$url
  id=$((BASE_ID + ${#name}))

  # --- upload, public -------------------------------------------------------------
  run upload "$T/photo.jpg" --visibility public --account 100 --status 7 --id "$id" --json
  check "[$name] public upload exits 0 with both styles" \
    eval 'is $rc 0 && is "$(json "$out" "\",\".join(sorted(d[\"styles\"]))")" "original,small"'
  key=$(json "$out" 'd["styles"]["original"]["key"]')
  small=$(json "$out" 'd["styles"]["small"]["key"]')
  check "[$name] keys follow Paperclip's layout" \
    eval 'has "$key" "media_attachments/files/" && has "$key" "/original/" && has "$small" "/small/"'
  check "[$name] upright: orientation 6 turns 1200x900 into 900x1200" \
    eval 'is "$(json "$out" "d[\"meta\"][\"original\"][\"size\"]")" 900x1200'
  check "[$name] meta and blurhash as Mastodon's file.meta wants" \
    eval 'is "$(json "$out" "len(d[\"blurhash\"])")" 36 && is "$(json "$out" "d[\"styles\"][\"original\"][\"url\"]")" "https://files.example.social/$key"'
  run get "$key" "$T/stored.jpg" --bucket "$PUBLIC"
  check "[$name] the stored original has no GPS, serial, camera or XMP" \
    eval 'is $rc 0 && ! exiftool -a -G1 "$T/stored.jpg" | grep -qiE "gps|serial|canon|eos|jane|xmp"'
  run head "$key" --bucket "$PUBLIC" --json
  check "[$name] public objects carry Mastodon's Cache-Control" \
    eval 'is "$(json "$out" "d[\"cache_control\"]")" "public, max-age=315576000, immutable" && is "$(json "$out" "d[\"content_type\"]")" image/jpeg'
  run manifest show "$key" --json
  check "[$name] manifest: stored, public, owner 100, status 7, etag confirmed" \
    eval 'is "$(json "$out" "\"%s %s %s %s %s\" % (d[\"state\"],d[\"visibility\"],d[\"owner_id\"],d[\"status_id\"],len(d[\"etag\"]))")" "stored public 100 7 32"'
  run upload "$T/photo.jpg" --visibility public --account 100 --id "$id" --json
  check "[$name] a retried job writes the same keys (idempotent)" \
    eval 'is $rc 0 && is "$(json "$out" "d[\"styles\"][\"original\"][\"key\"]")" "$key"'

  # --- upload, direct ------------------------------------------------------------------
  run upload "$T/photo.jpg" --visibility direct --account 100 --audience 200,201 --id $((id + 1)) --json
  pkey=$(json "$out" 'd["styles"]["original"]["key"]')
  psmall=$(json "$out" 'd["styles"]["small"]["key"]')
  check "[$name] direct upload goes to the private bucket with no public URL" \
    eval 'is $rc 0 && is "$(json "$out" "\"%s %s\" % (d[\"styles\"][\"original\"][\"bucket\"], d[\"styles\"][\"original\"][\"url\"])")" "$PRIVATE None"'
  run head "$pkey" --bucket "$PRIVATE" --json
  check "[$name] private objects are 'private, no-store'" \
    eval 'is $rc 0 && is "$(json "$out" "d[\"cache_control\"]")" "private, no-store"'
  run head "$pkey" --bucket "$PUBLIC"
  check "[$name] and never in the public bucket" eval 'is $rc 6'
  rc=0; out=$(env -u R2B_PRIVATE_BUCKET "$BIN" upload "$T/photo.jpg" --visibility private --account 100 --id $((id + 2)) 2>&1); rc=$?
  echo "$out" >>"$ALL_OUT"
  check "[$name] private upload without a private bucket: exit 3, nothing recorded" \
    eval 'is $rc 3 && has "$out" "R2B_PRIVATE_BUCKET" && ! "$BIN" manifest ls media_attachments/files/ 2>/dev/null | grep -q "/$(printf %09d $((id + 2)) | sed "s/.../&\//g;s/\/$//")/"'

  # --- rejected and bad arguments -------------------------------------------------------
  run upload "$T/evil.svg" --visibility public --account 100 --id $((id + 3)) --json
  check "[$name] an SVG is rejected: exit 4, reason in JSON" \
    eval 'is $rc 4 && is "$(json "$out" "d[\"reject\"]")" unsupported_type'
  run upload "$T/photo.jpg" --visibility public --account 100 --key "a/../original/x.jpg"
  check "[$name] a key with '..' is refused before anything: exit 2" eval 'is $rc 2 && has "$err" ".."'
  run upload "$T/photo.jpg" --visibility public --account 100 --key "flat/x.jpg"
  check "[$name] an image key without /original/ is refused" eval 'is $rc 2 && has "$err" "/original/"'
  run upload "$T/photo.jpg" --visibility secret --account 100 --id 1
  check "[$name] unknown visibility: exit 2" eval 'is $rc 2'
  run upload "$T/photo.jpg" --visibility public --account 100 --key "custom/$name/original/pic.jpg" --json
  check "[$name] --key: small stored beside it" \
    eval 'is $rc 0 && is "$(json "$out" "d[\"styles\"][\"small\"][\"key\"]")" "custom/$name/small/pic.jpg"'

  # --- sign ------------------------------------------------------------------------------
  run sign "$pkey" --viewer 100
  check "[$name] the owner gets a presigned URL" eval 'is $rc 0 && has "$out" "X-Amz-Expires=300"'
  code=$(curl -s -o "$T/fetched" -w '%{http_code}' "$out")
  check "[$name] which plain curl fetches (200)" eval 'is $code 200'
  run sign "$pkey" --viewer 201 --ttl 3600 --json
  check "[$name] an audience member too, TTL lowered to the direct cap and said so" \
    eval 'is $rc 0 && is "$(json "$out" "\"%s %s\" % (d[\"expires_in\"], d[\"ttl_capped\"])")" "300 True"'
  run sign "$pkey" --viewer 999
  check "[$name] a stranger is denied: exit 5 not_in_audience" eval 'is $rc 5 && has "$err" "not_in_audience"'
  run sign "$pkey" --anonymous --json
  check "[$name] anonymous is denied" eval 'is $rc 5 && is "$(json "$out" "d[\"reason\"]")" not_in_audience'
  run sign "$key" --anonymous
  check "[$name] public media: the alias-host URL for anyone" eval 'is $rc 0 && is "$out" "https://files.example.social/$key"'
  run sign "${pkey^^}" --viewer 100
  check "[$name] a key differing in case is unknown" eval 'is $rc 5 && has "$err" "unknown"'
  run sign "$pkey/" --viewer 100
  check "[$name] a key with a trailing slash is unknown" eval 'is $rc 5'
  printf '%s 100\n%s -\nnot a valid line\n%s 999\n\n%s -\n' "$pkey" "$pkey" "$psmall" "$key" >"$T/req"
  "$BIN" sign --stdin <"$T/req" >"$T/out" 2>"$T/err"; rc=$?; out=$(cat "$T/out"); cat "$T/out" "$T/err" >>"$ALL_OUT"
  check "[$name] sign --stdin: one JSON line per request, in order, malformed line answered" \
    eval 'is $rc 0 && lines "$out" 5 && is "$(printf "%s\n" "$out" | python3 -c "import json,sys; print(\",\".join(str(json.loads(l)[\"ok\"]) for l in sys.stdin))")" "True,False,False,False,True"'
  run grant "$pkey" 999
  run sign "$pkey" --viewer 999
  check "[$name] grant takes effect on the next sign" eval 'is $rc 0'
  run revoke "$pkey" 999
  run sign "$pkey" --viewer 999
  check "[$name] revoke too" eval 'is $rc 5'

  # --- visibility: the object moves -----------------------------------------------------------
  run visibility "$pkey" public
  check "[$name] direct -> public moves the object" eval 'is $rc 0'
  run head "$pkey" --bucket "$PUBLIC" --json
  check "[$name] now in the public bucket, public Cache-Control" \
    eval 'is $rc 0 && is "$(json "$out" "d[\"cache_control\"]")" "public, max-age=315576000, immutable"'
  run head "$pkey" --bucket "$PRIVATE"
  check "[$name] and gone from the private one" eval 'is $rc 6'
  run visibility "$pkey" private
  run head "$pkey" --bucket "$PUBLIC"
  check "[$name] public -> private: gone from the public bucket" eval 'is $rc 6'
  run sign "$pkey" --anonymous
  check "[$name] and denied to anonymous again" eval 'is $rc 5'
  run visibility "$pkey" private
  check "[$name] repeating a move is harmless" eval 'is $rc 0'

  # --- delete ----------------------------------------------------------------------------------
  run delete "$pkey" "$psmall" --json
  check "[$name] delete: record, then object" eval 'is $rc 0 && is "$(json "$out" "d[\"deleted\"]")" 2'
  run sign "$pkey" --viewer 100
  check "[$name] deleted media is denied (deleted)" eval 'is $rc 5 && has "$err" "deleted"'
  run head "$pkey" --bucket "$PRIVATE"
  check "[$name] the object is gone" eval 'is $rc 6'
  printf '%s\n%s\n' "$pkey" "never/existed.jpg" | "$BIN" delete --stdin >"$T/out" 2>"$T/err"; rc=$?
  check "[$name] delete --stdin is idempotent" eval 'is $rc 0'

  # --- a failed upload claims nothing ------------------------------------------------------------
  S3_ENDPOINT=http://127.0.0.1:9 S3_RETRY_LIMIT=0 run upload "$T/photo.jpg" --visibility public --account 100 --id $((id + 4)) --json
  check "[$name] S3 unreachable: exit 75" eval 'is $rc 75'
  run manifest ls --state stored
  check "[$name] and no record claims the object is stored" \
    eval '! printf "%s\n" "$out" | grep -q "/$(printf %09d $((id + 4)) | sed "s/.../&\//g;s/\/$//")/"'
  run manifest ls --state pending --json
  check "[$name] the record says pending" \
    eval 'printf "%s\n" "$out" | grep -q "/$(printf %09d $((id + 4)) | sed "s/.../&\//g;s/\/$//")/"'
  pend=$(printf '%s\n' "$out" | grep "/$(printf %09d $((id + 4)) | sed 's/.../&\//g;s/\/$//')/" | head -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["key"])')
  run sign "$pend" --anonymous
  check "[$name] and the check denies it (pending)" eval 'is $rc 5 && has "$err" "pending"'
  run visibility "$pend" direct
  check "[$name] a visibility change while its upload is pending: exit 75 (it must still happen later)" \
    eval 'is $rc 75 && has "$err" "still pending"'
}

backend sqlite "sqlite://$T/manifest.db"
if [ -n "${R2B_TEST_PG_URL:-}" ]; then
  backend postgresql "$R2B_TEST_PG_URL"
fi

# --- ids and help ----------------------------------------------------------------------------
export R2B_MANIFEST="sqlite://$T/manifest.db"
run upload "$T/photo.jpg" --visibility public --account 100 --id 109876543210987654 --json
check "a snowflake id partitions into six groups" \
  eval 'is $rc 0 && has "$(json "$out" "d[\"styles\"][\"original\"][\"key\"]")" "media_attachments/files/109/876/543/210/987/654/original/"'
for c in upload sign visibility grant revoke delete manifest; do
  run "$c" --help
  check "$c --help" eval 'is $rc 0 && has "$out" "usage: r2bridge $c"'
done
run sign somekey
check "sign without a viewer: exit 2" eval 'is $rc 2'
finish
