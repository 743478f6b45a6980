#!/usr/bin/env bash
# Video and audio, git t/ style: fixtures made at test time with the ffmpeg
# CLI (testsrc, sine; short and small), each with its exact expected outcome
# through `r2bridge inspect --json`, then every output read back with an
# independent reader (ffprobe -show_format -show_streams -show_chapters) to
# prove that no location, creation time, device make/model, handler name,
# title, comment or encoder string of the source, no chapter and no cover
# art is left; then `r2bridge upload --json` of a video and an audio file to
# the local S3 server (keys end in .mp4/.jpg/.mp3, content types, meta).
#   test/video.sh path/to/r2bridge
#
# A fixture that cannot be generated (an encoder missing) is a FAILURE,
# never a skip. R2B_KEEP_VIDEO=1 keeps the temp directory.
set -uo pipefail

BIN=${1:?usage: video.sh path/to/r2bridge}
case $BIN in /*) ;; *) BIN="$PWD/$BIN" ;; esac
REAL_BIN=$BIN # lib.sh may wrap BIN in a script (valgrind)
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-video.XXXXXX")
if [ "${R2B_KEEP_VIDEO:-0}" = 1 ]; then echo "# keeping $T"; else trap 'rm -rf "$T"' EXIT; fi
. "$(dirname "$0")/lib.sh"
SECRET=${AWS_SECRET_ACCESS_KEY:-}
F=$T/fx
mkdir -p "$F" "$T/styles" "$T/tmp"

for t in ffmpeg ffprobe python3 truncate; do
  check "tool '$t' present (scripts/deps)" eval "command -v $t >/dev/null"
done

# --- fixtures ------------------------------------------------------------------------------
# Everything the source may carry about where, when and on what it was made.
MARK=R2BSECRET
META=(-metadata "location=+48.8582+002.2945/" -metadata "location-eng=+48.8582+002.2945/"
  -metadata "creation_time=2020-01-02T03:04:05Z" -metadata "make=${MARK}MAKE"
  -metadata "model=${MARK}MODEL" -metadata "title=${MARK}TITLE" -metadata "comment=${MARK}COMMENT"
  -metadata "artist=${MARK}ARTIST" -metadata "date=2020-01-02")
APPLE=(-metadata "com.apple.quicktime.location.ISO6709=+48.8582+002.2945+030.000/"
  -metadata "com.apple.quicktime.make=${MARK}MAKE" -metadata "com.apple.quicktime.model=${MARK}MODEL"
  -metadata "com.apple.quicktime.creationdate=2020-01-02T03:04:05+0100" -movflags use_metadata_tags)
SMETA=(-metadata:s:v "handler_name=${MARK}VHANDLER" -metadata:s:v "creation_time=2020-01-02T03:04:05Z"
  -metadata:s:v "encoder=${MARK}ENCODER")
SAMETA=(-metadata:s:a "handler_name=${MARK}AHANDLER" -metadata:s:a "creation_time=2020-01-02T03:04:05Z")
V="testsrc=size=320x240:rate=30"
A="sine=frequency=440:sample_rate=44100"
X264=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p)
gen_log=$T/gen.log
ff() { ffmpeg -hide_banner -nostdin -loglevel error -y "$@" >>"$gen_log" 2>&1; }
made=0 notmade=""
mk() { # mk NAME CMD...: one fixture; a failure is reported (and its row fails)
  local name=$1
  shift
  if "$@" && [ -s "$F/$name" ]; then made=$((made + 1)); else notmade="$notmade $name"; fi
}
# chapters, for the MOV that must lose them
printf ';FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=%sCHAPTER\n' "$MARK" >"$T/chapters.txt"
# cover art: a JPEG carrying the marker in a comment
ff -f lavfi -i "color=c=red:size=64x64" -frames:v 1 -metadata "comment=${MARK}COVER" "$T/cover.jpg"
printf '%sCOVERJPEG' "$MARK" >>"$T/cover.jpg"

mk h264-aac.mp4 ff -f lavfi -i "$V" -f lavfi -i "$A" -t 1 "${X264[@]}" -c:a aac -b:a 96k \
  "${META[@]}" "${SMETA[@]}" "${SAMETA[@]}" "$F/h264-aac.mp4"
mk h264-apple.mov ff -f lavfi -i "$V" -f lavfi -i "$A" -i "$T/chapters.txt" -t 1 "${X264[@]}" -c:a aac \
  -map 0:v -map 1:a -map_metadata 2 -map_chapters 2 "${META[@]}" "${APPLE[@]}" "${SMETA[@]}" "${SAMETA[@]}" \
  "$F/h264-apple.mov"
mk h264-cover.mp4 ff -f lavfi -i "$V" -f lavfi -i "$A" -i "$T/cover.jpg" -t 1 -map 0:v -map 1:a -map 2:v \
  "${X264[@]}" -c:v:1 copy -disposition:v:1 attached_pic -c:a aac "${META[@]}" "$F/h264-cover.mp4"
mk h264-silent.mp4 ff -f lavfi -i "$V" -t 1 "${X264[@]}" "${META[@]}" "$F/h264-silent.mp4"
mk vp9-opus.webm ff -f lavfi -i "$V" -f lavfi -i "$A" -t 1 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 \
  -b:v 300k -c:a libopus "${META[@]}" "$F/vp9-opus.webm"
mk hevc-apple.mov ff -f lavfi -i "$V" -f lavfi -i "$A" -t 1 -c:v libx265 -preset ultrafast \
  -x265-params log-level=error -tag:v hvc1 -c:a aac "${META[@]}" "${APPLE[@]}" "${SMETA[@]}" "$F/hevc-apple.mov"
mk odd-yuv444.mp4 ff -f lavfi -i "testsrc=size=321x241:rate=25" -t 1 -c:v libx264 -preset ultrafast \
  -pix_fmt yuv444p "$F/odd-yuv444.mp4"
# the display matrix, as a phone writes it for a portrait recording (ffmpeg 5.1 sets it on stream copy)
mk rotated.mp4 eval 'ff -f lavfi -i "testsrc=size=640x360:rate=30" -t 0.5 "${X264[@]}" "$T/r0.mp4" &&
  ff -i "$T/r0.mp4" -c copy -metadata:s:v rotate=90 "$F/rotated.mp4"'
mk h264-1280x720.mp4 ff -f lavfi -i "testsrc=size=1280x720:rate=30" -t 0.5 "${X264[@]}" "$F/h264-1280x720.mp4"
mk fps120.mp4 ff -f lavfi -i "testsrc=size=64x48:rate=120" -t 0.25 "${X264[@]}" "$F/fps120.mp4"
mk fps125.mp4 ff -f lavfi -i "testsrc=size=64x48:rate=125" -t 0.25 "${X264[@]}" "$F/fps125.mp4"
mk px-3840x2160.mp4 ff -f lavfi -i "color=size=3840x2160:rate=1" -frames:v 1 "${X264[@]}" "$F/px-3840x2160.mp4"
mk px-3842x2160.mp4 ff -f lavfi -i "color=size=3842x2160:rate=1" -frames:v 1 "${X264[@]}" "$F/px-3842x2160.mp4"
mk frames-36001.mp4 ff -f lavfi -i "color=size=16x16:rate=120" -frames:v 36001 "${X264[@]}" "$F/frames-36001.mp4"
mk size-100mib.mp4 eval 'cp "$F/h264-silent.mp4" "$F/size-100mib.mp4" && truncate -s 104857600 "$F/size-100mib.mp4"'
mk h264-starts-at-5s.mp4 eval 'ff -i "$F/h264-aac.mp4" -c copy -output_ts_offset 5 "$F/h264-starts-at-5s.mp4"'
mk subtitles-only.mp4 eval 'printf "1\n00:00:00,000 --> 00:00:01,000\nhello\n" >"$T/s.srt" && ff -i "$T/s.srt" -c:s mov_text "$F/subtitles-only.mp4"'
mk mpeg2.mp4 ff -f lavfi -i "$V" -t 0.5 -c:v mpeg2video "$F/mpeg2.mp4"
mk aac-only.mp4 ff -f lavfi -i "$A" -t 1 -c:a aac -f mp4 -brand isom "${META[@]}" "$F/aac-only.mp4"
# truncated: moov first (faststart) cut in the media data; moov last cut before it; WebM; WAV
ff -i "$F/h264-aac.mp4" -c copy -movflags +faststart "$T/fs.mp4"
cut60() { head -c $(($(stat -c %s "$1") * 6 / 10)) "$1" >"$2"; }
mk truncated-faststart.mp4 cut60 "$T/fs.mp4" "$F/truncated-faststart.mp4"
mk truncated-moov-last.mp4 cut60 "$F/h264-aac.mp4" "$F/truncated-moov-last.mp4"
mk truncated.webm cut60 "$F/vp9-opus.webm" "$F/truncated.webm"
# audio
mk audio.wav ff -f lavfi -i "$A" -t 1 "$F/audio.wav"
mk audio.flac ff -f lavfi -i "$A" -t 1 -c:a flac "${META[@]}" "$F/audio.flac"
mk audio-vorbis.ogg ff -f lavfi -i "$A" -t 1 -c:a libvorbis "${META[@]}" "$F/audio-vorbis.ogg"
mk audio-stereo.mp3 ff -f lavfi -i "$A" -f lavfi -i "sine=frequency=660:sample_rate=44100" -t 1 \
  -filter_complex amerge=inputs=2 -c:a libmp3lame -b:a 128k "${META[@]}" -id3v2_version 3 -write_id3v1 1 \
  "$F/audio-stereo.mp3"
mk audio-cover.mp3 ff -f lavfi -i "$A" -i "$T/cover.jpg" -t 1 -map 0:a -map 1:v -c:a libmp3lame -c:v copy \
  -disposition:v attached_pic "${META[@]}" -id3v2_version 3 "$F/audio-cover.mp3"
mk audio.m4a ff -f lavfi -i "$A" -t 1 -c:a aac "${META[@]}" "$F/audio.m4a"
mk truncated.wav cut60 "$F/audio.wav" "$F/truncated.wav"
# animated GIFs for --gifv (and a static one, which stays an image)
mk gifv-480x270.gif ff -f lavfi -i "testsrc=size=480x270:rate=10" -t 0.5 "$F/gifv-480x270.gif"
mk gifv-1281x720.gif ff -f lavfi -i "testsrc=size=1281x720:rate=10" -t 0.2 "$F/gifv-1281x720.gif"
mk gif-static.gif ff -f lavfi -i "testsrc=size=64x48:rate=1" -frames:v 1 "$F/gif-static.gif"
# names that lie
mk webm-named.mp4 cp "$F/vp9-opus.webm" "$F/webm-named.mp4"
mk mp3-named.wav cp "$F/audio-stereo.mp3" "$F/mp3-named.wav"
mk mp4-named.mp3 cp "$F/h264-silent.mp4" "$F/mp4-named.mp3"
check "every fixture generated ($made made)" eval 'is "$notmade" ""'
[ -n "$notmade" ] && echo "#   not made:$notmade" && tail -5 "$gen_log" | sed 's/^/#   /'

# --- the table: each fixture's exact outcome -----------------------------------------------------
# file exit outcome type kind path WxH(original) small(WxH) audio(channels) notes
#  path: remux (every stream copied), transcode (at least one re-encoded), - (rejected)
#  small: the poster's size (area rule, upright), - for audio
cat >"$T/expected.tsv" <<'EOF'
h264-aac.mp4	0	ok	video/mp4	video	remux	320x240	320x240	1	+meta +src=h264+aac compliant H.264 yuv420p + AAC with location, dates, make/model, handler names
h264-apple.mov	0	ok	video/quicktime	video	remux	320x240	320x240	1	+meta +src=h264+aac QuickTime with com.apple.quicktime.location.ISO6709, make, model, creationdate, a chapter
h264-cover.mp4	0	ok	video/mp4	video	remux	320x240	320x240	1	+meta +src=h264+aac MP4 with a cover-art JPEG (attached picture): dropped
h264-starts-at-5s.mp4	0	ok	video/mp4	video	remux	320x240	320x240	1	+src=h264+aac timestamps from 5 s: the output starts at 0, no 5 s of nothing
h264-silent.mp4	0	ok	video/mp4	video	remux	320x240	320x240	0	+meta +src=h264 H.264 with no audio: remuxed, no audio track appears
vp9-opus.webm	0	ok	video/webm	video	transcode	320x240	320x240	1	+meta +src=vp9+opus VP9 + Opus WebM: both streams re-encoded (libx264 veryfast, AAC)
hevc-apple.mov	0	ok	video/quicktime	video	transcode	320x240	320x240	1	+meta +src=hevc+aac HEVC QuickTime with Apple location: video re-encoded, AAC copied
odd-yuv444.mp4	0	ok	video/mp4	video	transcode	320x240	320x240	0	+src=h264 H.264 4:4:4 at 321x241: re-encoded to yuv420p, cropped to even 320x240
rotated.mp4	0	ok	video/mp4	video	remux	640x360	360x640	0	+rot=270 +src=h264 display matrix (a quarter turn): kept, the poster is upright
h264-1280x720.mp4	0	ok	video/mp4	video	remux	1280x720	640x360	0	+src=h264 720p: the poster fits 230,400 px
fps120.mp4	0	ok	video/mp4	video	remux	64x48	64x48	0	+src=h264 exactly 120 fps: accepted
fps125.mp4	4	frame_rate_too_high	video/mp4	-	-	-	-	-	125 fps: over 120
px-3840x2160.mp4	0	ok	video/mp4	video	remux	3840x2160	640x360	0	+src=h264 exactly 8,294,400 px: accepted
px-3842x2160.mp4	4	too_many_pixels	video/mp4	-	-	-	-	-	3842x2160: 8,298,720 px, over 8,294,400
frames-36001.mp4	4	too_many_frames	video/mp4	-	-	-	-	-	36,001 frames of 16x16 at 120 fps: over 36,000
size-100mib.mp4	4	too_large	video/mp4	-	-	-	-	-	a valid MP4 padded to 100 MiB: over 99 MiB, refused before decoding
subtitles-only.mp4	4	corrupt	video/mp4	-	-	-	-	-	an MP4 with only a subtitle track: no stream to decode
mpeg2.mp4	4	unsupported_type	video/mp4	-	-	-	-	-	MPEG-2 video in MP4: not a codec Mastodon's browsers play
aac-only.mp4	0	ok	video/mp4	audio	transcode	-	-	1	+meta +src=aac an MP4 with only sound is audio, as for Mastodon: to MP3
truncated-faststart.mp4	4	corrupt	video/mp4	-	-	-	-	-	moov first, cut at 60%: the media data ends early
truncated-moov-last.mp4	4	corrupt	video/mp4	-	-	-	-	-	moov last, cut at 60%: no movie header
truncated.webm	4	corrupt	video/webm	-	-	-	-	-	WebM cut at 60%: ends before its declared duration
audio.wav	0	ok	audio/wav	audio	transcode	-	-	1	+src=pcm_s16le PCM WAV: to MP3 (VBR q2)
audio.flac	0	ok	audio/flac	audio	transcode	-	-	1	+meta +src=flac FLAC with Vorbis comments: to MP3
audio-vorbis.ogg	0	ok	audio/ogg	audio	transcode	-	-	1	+meta +src=vorbis Ogg Vorbis with comments: to MP3
audio-stereo.mp3	0	ok	audio/mpeg	audio	remux	-	-	2	+meta +src=mp3 MP3 with ID3v2 and ID3v1 tags: frames copied, tags dropped
audio-cover.mp3	0	ok	audio/mpeg	audio	remux	-	-	1	+meta +src=mp3 MP3 with an ID3 cover picture: dropped
audio.m4a	0	ok	audio/mp4	audio	transcode	-	-	1	+meta +src=aac AAC in M4A: to MP3
truncated.wav	4	corrupt	audio/wav	-	-	-	-	-	WAV cut at 60%: the data chunk ends early
webm-named.mp4	0	ok	video/webm	video	transcode	320x240	320x240	1	+src=vp9+opus a WebM named .mp4: the content decides
mp3-named.wav	0	ok	audio/mpeg	audio	remux	-	-	2	+src=mp3 an MP3 named .wav: remuxed as MP3
mp4-named.mp3	0	ok	video/mp4	video	remux	320x240	320x240	0	+src=h264 an MP4 named .mp3: a video
gifv-480x270.gif	0	ok	image/gif	gifv	transcode	480x270	480x270	0	+gifv +src=gif --gifv: an animated GIF becomes a silent H.264 MP4 with a poster
gifv-1281x720.gif	4	too_many_pixels	image/gif	-	-	-	-	-	+gifv --gifv: an animated GIF over 921,600 px is refused as without it
gif-static.gif	0	ok	image/gif	image	-	64x48	64x48	-	+gifv --gifv: a single-frame GIF stays an image
EOF

cat >"$T/check.py" <<'EOF'
# check.py INPUT JSON-FILE STDERR-FILE RC TMPDIR-USED row...: prints one reason per line; nothing = pass
import json, os, subprocess, sys
inp, jf, ef, rc, tmpd = sys.argv[1:6]
(file, ex, outcome, etype, ekind, path, osize, ssize, ach, notes) = sys.argv[6:16]
flags = {w.split("=")[0]: (w.split("=", 1)[1] if "=" in w else True) for w in notes.split() if w.startswith("+")}
bad = lambda m: print(m)
if int(rc) != int(ex):
    bad("exit %s, expected %s" % (rc, ex))
try:
    j = json.load(open(jf))
except Exception as e:
    bad("stdout is not JSON: %s" % e); sys.exit(0)
if os.listdir(tmpd) and (ex != "0" or True):
    bad("left in TMPDIR: %s" % os.listdir(tmpd))
if j.get("type") != etype:
    bad("type %r, expected %r" % (j.get("type"), etype))
if outcome != "ok":
    if j.get("ok") is not False or j.get("reject") != outcome:
        bad("reject %r, expected %r" % (j.get("reject"), outcome))
    err = open(ef).read().strip().splitlines()
    if len(err) != 1 or outcome not in err[0]:
        bad("stderr should be one line naming %s: %r" % (outcome, err))
    sys.exit(0)
if j.get("ok") is not True:
    bad("not accepted: %r" % j); sys.exit(0)
if j.get("kind") != ekind:
    bad("kind %r, expected %r" % (j.get("kind"), ekind))
if ekind == "image":  # a GIF that --gifv leaves alone
    o = (j.get("styles") or {}).get("original") or {}
    if o.get("content_type") != "image/gif" or "%sx%s" % (o.get("width"), o.get("height")) != osize:
        bad("original %r, expected an image/gif of %s" % (o, osize))
    sys.exit(0)
gifv = ekind == "gifv"
if gifv:
    ekind = "video"
    if j.get("animated") is not True:
        bad("animated %r for a gifv" % j.get("animated"))
if j.get("transcoded") is not (path == "transcode") or j.get("remuxed") is not (path == "remux"):
    bad("transcoded=%r remuxed=%r, expected %s" % (j.get("transcoded"), j.get("remuxed"), path))
if "+src" in flags and j.get("source_codecs") != flags["+src"]:
    bad("source_codecs %r, expected %r" % (j.get("source_codecs"), flags["+src"]))
st = j.get("styles") or {}
want = ["original", "small"] if ekind == "video" else ["original"]
if sorted(st) != sorted(want):
    bad("styles %s, expected %s" % (sorted(st), want)); sys.exit(0)
o = st["original"]
ect, eext = ("video/mp4", "mp4") if ekind == "video" else ("audio/mpeg", "mp3")
if o.get("content_type") != ect or not o.get("file", "").endswith("/original." + eext):
    bad("original %r %r, expected %s .%s" % (o.get("content_type"), o.get("file"), ect, eext))
of = o.get("file")
if not of or not os.path.isfile(of):
    bad("no original file"); sys.exit(0)
if os.path.getsize(of) != o.get("size"):
    bad("size in JSON %r, on disk %d" % (o.get("size"), os.path.getsize(of)))
import hashlib
if hashlib.sha256(open(of, "rb").read()).hexdigest() != o.get("sha256"):
    bad("sha256 in JSON does not match the file")
def probe(p):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-of", "json", p],
                       capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None
pr = probe(of)
if pr is None:
    bad("ffprobe cannot read the original"); sys.exit(0)
ss = pr.get("streams", [])
vs = [s for s in ss if s["codec_type"] == "video"]
as_ = [s for s in ss if s["codec_type"] == "audio"]
if len(ss) != len(vs) + len(as_):
    bad("extra streams: %s" % [s["codec_type"] for s in ss])
if ekind == "video":
    if "mp4" not in pr["format"]["format_name"]:
        bad("container %s is not MP4" % pr["format"]["format_name"])
    if len(vs) != 1:
        bad("%d video streams, expected 1" % len(vs))
    else:
        v = vs[0]
        if v["codec_name"] != "h264" or v.get("pix_fmt") not in ("yuv420p", "yuvj420p"):
            bad("video %s %s, expected h264 yuv420p" % (v["codec_name"], v.get("pix_fmt")))
        if "%dx%d" % (v["width"], v["height"]) != osize or v["width"] % 2 or v["height"] % 2:
            bad("video %dx%d, expected %s (even)" % (v["width"], v["height"], osize))
        if v.get("disposition", {}).get("attached_pic"):
            bad("the video stream is an attached picture")
        rot = 0
        for sd in v.get("side_data_list", []):
            if "rotation" in sd:
                rot = int(-sd["rotation"]) % 360
        if rot != int(flags.get("+rot", 0)) or j.get("rotation") != rot:
            bad("display rotation %d (JSON %r), expected %s" % (rot, j.get("rotation"), flags.get("+rot", 0)))
    if int(ach) and (len(as_) != 1 or as_[0]["codec_name"] != "aac"):
        bad("audio %s, expected one AAC stream" % [s["codec_name"] for s in as_])
    if not int(ach) and as_:
        bad("an audio stream appeared")
    # faststart: moov before mdat
    d = open(of, "rb").read()
    pos, order = 0, []
    while pos + 8 <= len(d):
        size = int.from_bytes(d[pos:pos + 4], "big"); typ = d[pos + 4:pos + 8].decode("latin1")
        if size == 1:
            size = int.from_bytes(d[pos + 8:pos + 16], "big")
        order.append(typ)
        if size < 8:
            break
        pos += size
    if "moov" not in order or "mdat" not in order or order.index("moov") > order.index("mdat"):
        bad("not faststart: top-level boxes %s" % order)
    sm = st["small"]
    if sm.get("content_type") != "image/jpeg" or not sm.get("file", "").endswith("/small.jpg"):
        bad("small %r %r, expected image/jpeg small.jpg" % (sm.get("content_type"), sm.get("file")))
    if "%sx%s" % (sm.get("width"), sm.get("height")) != ssize:
        bad("poster %sx%s, expected %s" % (sm.get("width"), sm.get("height"), ssize))
    sp = probe(sm.get("file", ""))
    if sp is None or sp["streams"][0]["codec_name"] != "mjpeg" or \
            "%dx%d" % (sp["streams"][0]["width"], sp["streams"][0]["height"]) != ssize:
        bad("the poster file is not a %s JPEG" % ssize)
    if not isinstance(j.get("blurhash"), str) or len(j["blurhash"]) != 28 + 8:
        bad("blurhash %r is not 4x4" % j.get("blurhash"))
else:
    if pr["format"]["format_name"] != "mp3" or len(as_) != 1 or as_[0]["codec_name"] != "mp3" or vs:
        bad("original is %s with %s, expected one MP3 stream" % (pr["format"]["format_name"], [s["codec_name"] for s in ss]))
    d = open(of, "rb").read()
    if d[:3] == b"ID3" or d[-128:-125] == b"TAG" or b"APETAGEX" in d:
        bad("the MP3 carries an ID3/APE tag")
    if j.get("blurhash") is not None:
        bad("blurhash for audio: %r" % j.get("blurhash"))
    if int(ach) and as_ and as_[0].get("channels") != int(ach):
        bad("%s channels, expected %s" % (as_[0].get("channels"), ach))
# every output starts at 0 (AAC priming aside) and lasts what the source lasts
if abs(float(pr["format"].get("start_time", 0))) > 0.1:
    bad("the output starts at %s s" % pr["format"].get("start_time"))
sf = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", inp],
                               capture_output=True, text=True).stdout)["format"]
src_dur = float(sf.get("duration", 0)) - max(0.0, float(sf.get("start_time", 0)))
if abs(float(pr["format"].get("duration", 0)) - src_dur) > 0.1:
    bad("the output lasts %s s, the source %.3f s" % (pr["format"].get("duration"), src_dur))
# meta, as Mastodon's file.meta
m = j.get("meta") or {}
mo = m.get("original") or {}
dur = float(pr["format"].get("duration", 0))
if not isinstance(mo.get("duration"), float) or abs(mo["duration"] - dur) > 0.1 or abs(m.get("duration", -1) - mo["duration"]) > 1e-9:
    bad("meta duration %r, ffprobe says %.3f" % (mo.get("duration"), dur))
if not isinstance(mo.get("bitrate"), int) or mo["bitrate"] <= 0 or abs(mo["bitrate"] - o["size"] * 8 / mo["duration"]) > 2:
    bad("meta bitrate %r is not size*8/duration" % mo.get("bitrate"))
if not isinstance(m.get("length"), str) or not m["length"].startswith("0:00:0"):
    bad("meta length %r" % m.get("length"))
if ekind == "video":
    w, h = map(int, osize.split("x"))
    if (mo.get("width"), mo.get("height"), mo.get("size")) != (w, h, osize) or "/" not in str(mo.get("frame_rate")):
        bad("meta original %r" % mo)
    if vs and mo.get("frame_rate") != vs[0]["avg_frame_rate"] and mo.get("frame_rate") != vs[0]["r_frame_rate"]:
        bad("meta frame_rate %r, ffprobe %s" % (mo.get("frame_rate"), vs[0]["avg_frame_rate"]))
    if not isinstance(m.get("fps"), int) or m["fps"] <= 0:
        bad("meta fps %r" % m.get("fps"))
    sw, sh = map(int, ssize.split("x"))
    if (m.get("small") or {}).get("size") != ssize:
        bad("meta small %r" % m.get("small"))
if int(ach):
    want_ch = "mono" if int(ach) == 1 else "stereo"
    if m.get("audio_channels") != want_ch or m.get("audio_encode") != ("aac" if ekind == "video" else "mp3") \
            or not str(m.get("audio_bitrate", "")).endswith(" Hz"):
        bad("meta audio %r %r %r" % (m.get("audio_channels"), m.get("audio_encode"), m.get("audio_bitrate")))
# the source's metadata, read back: none of it, anywhere
ALLOWED_FORMAT = {"major_brand", "minor_version", "compatible_brands"}
ALLOWED_STREAM = {"language", "handler_name", "vendor_id"}
ft = pr["format"].get("tags", {})
if set(ft) - ALLOWED_FORMAT:
    bad("format tags left: %s" % sorted(set(ft) - ALLOWED_FORMAT))
for s in ss:
    t = s.get("tags", {})
    # an MP3's Xing/LAME header names its writer (FFmpeg), as in every MP3 Mastodon makes
    if ekind == "audio" and str(t.get("encoder", "")).startswith("Lav"):
        t = {k: v for k, v in t.items() if k != "encoder"}
    if set(t) - ALLOWED_STREAM:
        bad("%s stream tags left: %s" % (s["codec_type"], sorted(set(t) - ALLOWED_STREAM)))
    if t.get("handler_name") not in (None, "VideoHandler", "SoundHandler"):
        bad("handler_name %r left" % t.get("handler_name"))
    if t.get("language") not in (None, "und"):
        bad("language %r" % t.get("language"))
if pr.get("chapters"):
    bad("chapters left: %s" % pr["chapters"])
raw = open(of, "rb").read()
for needle in (b"R2BSECRET", b"+48.8582", b"2020-01-02", b"\xa9xyz", b"ISO6709", b"com.apple", b"chpl", b"\xa9too"):
    if needle in raw:
        bad("the original's bytes contain %r" % needle)
if ekind == "video":  # the mp4 muxer's udta/meta/ilst skeleton may be there, but empty
    i = raw.find(b"ilst")
    if i >= 4 and int.from_bytes(raw[i - 4:i], "big") != 8:
        bad("the MP4 has a non-empty ilst (iTunes metadata)")
    if b"chap" in raw.split(b"mdat")[0] or b"text" in raw.split(b"mdat")[0]:
        bad("the MP4 has a chapter or text track")
if ekind == "video":
    sraw = open(sm["file"], "rb").read()
    for needle in (b"R2BSECRET", b"Exif", b"+48.8582"):
        if needle in sraw:
            bad("the poster's bytes contain %r" % needle)
# the source did carry what must be gone (the test would prove nothing otherwise)
if "+meta" in flags:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", inp], capture_output=True, text=True)
    if "R2BSECRET" not in r.stdout and b"R2BSECRET" not in open(inp, "rb").read():
        bad("fixture: the source carries no metadata (sanity)")
# a remux copies the streams bit for bit
if path == "remux":
    def hashes(p, sel):
        r = subprocess.run(["ffmpeg", "-v", "error", "-i", p, "-map", sel, "-c", "copy", "-f", "streamhash", "-hash", "md5", "-"],
                           capture_output=True, text=True)
        return [l.split(",")[-1] for l in r.stdout.splitlines()]
    sel = "0:V:0" if ekind == "video" else "0:a:0"
    hi, ho = hashes(inp, sel), hashes(of, sel)
    if not hi or hi != ho:
        bad("remux: the %s stream differs from the source's (%s vs %s)" % (sel, hi, ho))
EOF

while IFS=$'\t' read -r file ex outcome type kind path osize ssize ach notes; do
  [ -e "$F/$file" ] || { check "$file: fixture exists" false; continue; }
  tmpd=$T/tmp/$file
  rm -rf "$T/styles/$file" && mkdir -p "$tmpd"
  extra=()
  case " $notes " in *" +gifv "*) extra=(--gifv) ;; esac
  TMPDIR=$tmpd "$BIN" inspect "$F/$file" --json --out "$T/styles/$file" "${extra[@]}" </dev/null >"$T/out.json" 2>"$T/err"
  rc=$?
  cat "$T/out.json" "$T/err" >>"$ALL_OUT"
  python3 "$T/check.py" "$F/$file" "$T/out.json" "$T/err" "$rc" "$tmpd" \
    "$file" "$ex" "$outcome" "$type" "$kind" "$path" "$osize" "$ssize" "$ach" "$notes" </dev/null >"$T/why" 2>&1
  case $outcome/$kind in
    ok/video | ok/gifv) desc="$file: $path to MP4 $osize + poster $ssize, no metadata" ;;
    ok/audio) desc="$file: $path to MP3, no metadata" ;;
    ok/*) desc="$file: stays an $kind" ;;
    *) desc="$file: exit $ex $outcome" ;;
  esac
  n=$((n + 1))
  if [ ! -s "$T/why" ]; then
    passed=$((passed + 1)); echo "ok $n - $desc"
  else
    failed=$((failed + 1)); echo "not ok $n - $desc"; sed 's/^/#   /' "$T/why"; echo "#   stderr: $(head -c 300 "$T/err")"
  fi
done <"$T/expected.tsv"

# the deadline: a 4K frame cannot be opened, decoded and written in 1 ms
mkdir -p "$T/tmp/timeout"
TMPDIR=$T/tmp/timeout run inspect "$F/px-3840x2160.mp4" --timeout-ms 1 --json
check "a deadline passed: exit 4 timeout, nothing left in TMPDIR" \
  eval 'is $rc 4 && is "$(json "$out" "d[\"reject\"]")" timeout && is "$(ls -A "$T/tmp/timeout")" ""'
run inspect "$F/px-3840x2160.mp4" --timeout-ms 0
check "--timeout-ms 0 is a usage error (exit 2)" is $rc 2

# the text report and a claimed type that disagrees
run inspect "$F/webm-named.mp4" --claimed-type video/mp4
check "text report: transcoded, source codecs, and the claimed type's mismatch warned" \
  eval 'is $rc 0 && has "$out" "source: vp9+opus" && has "$err" "claimed type '"'"'video/mp4'"'"' but the content is video/webm"'
run inspect "$F/h264-aac.mp4"
check "text report of a remux says so" eval 'is $rc 0 && has "$out" "remuxed (streams copied, metadata dropped)" && has "$out" "h264 30/1"'

# --- the video module: FFmpeg is mapped only by a process that needs it ----------------------
# (r2bridge-av.so, opened on the first video/audio/gifv; docs/media.md)
check "the r2bridge binary does not link FFmpeg (ldd: no libavcodec)" \
  eval 'ldd "$REAL_BIN" >"$T/ldd" && grep -q libvips "$T/ldd" && ! grep -q libavcodec "$T/ldd"'
R2B_AV_MODULE=$T/nonexistent-av.so run inspect "$F/h264-aac.mp4"
check "video module missing: exit 3 (configuration), one line naming R2B_AV_MODULE" \
  eval 'is $rc 3 && is "$(wc -l <"$T/err")" 1 && has "$err" "R2B_AV_MODULE" && has "$err" "nonexistent-av.so"'
R2B_AV_MODULE=$T/nonexistent-av.so run inspect "$F/gif-static.gif" --gifv
check "video module missing: a one-frame GIF under --gifv is still an image (exit 0)" is $rc 0
# an installed copy (outside the build tree): the module next to it, if nobody else may write it
mkdir -m 755 "$T/inst"
cp "$REAL_BIN" "$T/inst/r2bridge"
cp "$(dirname "$REAL_BIN")/r2bridge-av.so" "$T/inst/" && chmod 644 "$T/inst/r2bridge-av.so"
inst() { "$T/inst/r2bridge" inspect "$F/h264-aac.mp4" >"$T/out" 2>"$T/err"; rc=$?; err=$(cat "$T/err"); }
inst
check "a copy outside the build tree loads the module next to it" eval 'is $rc 0 && is "$err" ""'
chmod g+w "$T/inst/r2bridge-av.so"
inst
check "  refused when the module is group-writable: exit 3, one line saying so" \
  eval 'is $rc 3 && is "$(wc -l <"$T/err")" 1 && has "$err" "others may write it"'
chmod 644 "$T/inst/r2bridge-av.so" && chmod 777 "$T/inst"
inst
check "  refused when its directory is world-writable" \
  eval 'is $rc 3 && has "$err" "directory '"'"'$T/inst'"'"'"'
chmod 755 "$T/inst"
# a directory higher up that others may write (not sticky): they could swap ours
mkdir -m 777 "$T/ww" && mv "$T/inst" "$T/ww/inst"
"$T/ww/inst/r2bridge" inspect "$F/h264-aac.mp4" >"$T/out" 2>"$T/err"; rc=$?; err=$(cat "$T/err")
check "  refused when a directory above it is world-writable (not sticky)" \
  eval 'is $rc 3 && has "$err" "directory '"'"'$T/ww'"'"'"'
chmod 1777 "$T/ww" && chown root "$T/ww" 2>/dev/null
"$T/ww/inst/r2bridge" inspect "$F/h264-aac.mp4" >"$T/out" 2>"$T/err"; rc=$?
check "  but a root-owned sticky one (like /tmp) is fine" eval 'is $rc 0 || [ "$(id -u)" != 0 ]'
mv "$T/ww/inst" "$T/inst" && rm "$T/inst/r2bridge-av.so"
inst
check "  and without it, never the build tree's: exit 3" eval 'is $rc 3 && has "$err" "R2B_AV_MODULE"'
R2B_AV_MODULE=r2bridge-av.so run inspect "$F/h264-aac.mp4"
check "R2B_AV_MODULE must be a path (no library-path search): exit 3" \
  eval 'is $rc 3 && has "$err" "is not a path"'

# --- upload: keys, content types and meta through the pipeline ---------------------------------
s3ok=1
for v in S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_BUCKET; do [ -n "${!v:-}" ] || s3ok=0; done
check "the local S3 server's environment is set (scripts/test starts it)" is $s3ok 1
if [ $s3ok = 1 ]; then
  export S3_REGION=auto S3_OVERRIDE_PATH_STYLE=true S3_ALIAS_HOST=files.example.social
  export R2B_MANIFEST="sqlite://$T/manifest.db"
  id=$(( ($(date +%s) % 100000) * 1000 + RANDOM % 1000 ))
  run upload "$F/vp9-opus.webm" --visibility public --account 100 --id "$id" --json
  okey=$(json "$out" 'd["styles"]["original"]["key"]' 2>/dev/null)
  skey=$(json "$out" 'd["styles"]["small"]["key"]' 2>/dev/null)
  check "upload of a WebM: original key .mp4 (video/mp4), small .jpg (image/jpeg)" \
    eval 'is $rc 0 && has "$okey" "/original/" && is "${okey##*.}" mp4 && is "${skey##*.}" jpg && is "$(json "$out" "d[\"styles\"][\"original\"][\"content_type\"]+\" \"+d[\"styles\"][\"small\"][\"content_type\"]")" "video/mp4 image/jpeg"'
  check "upload --json carries Mastodon's video meta" \
    eval 'is "$(json "$out" "\"%s %s %s\" % (d[\"meta\"][\"original\"][\"frame_rate\"], d[\"meta\"][\"audio_channels\"], d[\"meta\"][\"original\"][\"bitrate\"] > 0)")" "30/1 mono True"'
  run get "$okey" "$T/stored.mp4"
  check "the stored original is the metadata-free MP4" \
    eval 'is $rc 0 && ! grep -q R2BSECRET "$T/stored.mp4" && is "$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$T/stored.mp4" | tr "\n" " ")" "h264 aac "'
  run upload "$F/audio.flac" --visibility public --account 100 --id "$((id + 1))" --json
  akey=$(json "$out" 'd["styles"]["original"]["key"]' 2>/dev/null)
  check "upload of a FLAC: one style, key .mp3, audio/mpeg, duration in meta" \
    eval 'is $rc 0 && is "${akey##*.}" mp3 && is "$(json "$out" "\"%s %s %.0f\" % (d[\"styles\"][\"original\"][\"content_type\"], len(d[\"styles\"]), d[\"meta\"][\"duration\"])")" "audio/mpeg 1 1"'
  run upload "$F/gifv-480x270.gif" --visibility public --account 100 --id "$((id + 3))" --gifv --json
  gkey=$(json "$out" 'd["styles"]["original"]["key"]' 2>/dev/null)
  check "upload --gifv of an animated GIF: gifv, key .mp4 (video/mp4), poster .jpg" \
    eval 'is $rc 0 && is "${gkey##*.}" mp4 && is "$(json "$out" "\"%s %s %s\" % (d[\"gifv\"], d[\"styles\"][\"original\"][\"content_type\"], d[\"styles\"][\"small\"][\"key\"].rsplit(\".\", 1)[1])")" "True video/mp4 jpg"'
  run upload "$F/fps125.mp4" --visibility public --account 100 --id "$((id + 2))" --json
  check "upload of a 125 fps video: exit 4, frame_rate_too_high" \
    eval 'is $rc 4 && is "$(json "$out" "d[\"reject\"]")" frame_rate_too_high'
fi
finish
