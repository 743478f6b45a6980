#!/usr/bin/env bash
# Media tests in git's t/ style: `r2bridge inspect` on a generated corpus
# (test/fixtures/make-fixtures.sh), one test per row of its expected.tsv, then
# the metadata proof on every image the tool wrote.
#   test/media.sh path/to/r2bridge
#
# For each row: exit code, JSON (ok / reject name, sniffed type, kind, styles
# with their content types, dimensions, sizes and sha256 checked against the
# files themselves, libmagic's type of each file, pixel limits, blurhash,
# Mastodon's meta), pixels (upright quadrants after EXIF orientation, first
# frame, alpha), pass-through bytes, appended ZIP gone, nothing left in TMPDIR.
# Expected dimensions come from the area rule and are allowed +-1 px per side
# (rounding); the pixel limits themselves are exact.
#
# Metadata proof, on every image output, with three independent readers:
# exiftool -j -a -G1 (allow-list of groups and tags), vipsheader -a (no exif,
# xmp, iptc, comment, orientation fields), and a structural walk of the file
# (JPEG markers, PNG chunks, WebP chunks and VP8X flags, GIF extensions); the
# marker R2BSECRET (in every metadata value of the corpus) and the source's
# dates must appear nowhere. Only colour information (an sRGB ICC profile) may
# remain. Every source that should carry metadata is checked to carry it.
#
# A fixture that could not be generated is a FAILURE, never a skip.
# R2B_KEEP_MEDIA=1 keeps the temp directory (corpus, outputs) for inspection.
set -uo pipefail

BIN=${1:?usage: media.sh path/to/r2bridge}
case $BIN in /*) ;; *) BIN="$PWD/$BIN" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${R2B_TEST_TMP:-/tmp}/r2b-media.XXXXXX")
if [ "${R2B_KEEP_MEDIA:-0}" = 1 ]; then
  echo "# keeping $T"
else
  trap 'rm -rf "$T"' EXIT
fi
C="$T/corpus"
mkdir -p "$T/out" "$T/tmp" "$T/run"
. "$HERE/wrap.sh" # under R2B_TEST_WRAPPER (scripts/test --valgrind) the binary runs wrapped
BIN=$(r2b_wrapped "$BIN" "$T")
passed=0 failed=0 n=0

# keep: what the last run printed, kept for the secret scan at the end
keep() { cat "$T/run/stdout" "$T/run/stderr" >>"$T/all-output" 2>/dev/null; }
pass() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n - $1"; }
fail() { # fail DESCRIPTION REASONS-FILE-OR-TEXT
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  if [ -f "$2" ]; then sed 's/^/#   /' "$2"; else printf '%s\n' "$2" | sed 's/^/#   /'; fi
}

# --- tools the test itself needs (missing: failures, not skips) -----------------------------
for t in python3 vips vipsheader exiftool file sha256sum cmp; do
  if command -v "$t" >/dev/null 2>&1; then pass "tool '$t' present"; else fail "tool '$t' present" "install it: scripts/deps"; fi
done
if [ ! -x "$BIN" ]; then
  fail "r2bridge binary exists" "not executable: $BIN"
fi

# --- the corpus ---------------------------------------------------------------------------------
if bash "$HERE/fixtures/make-fixtures.sh" "$C" 2>"$T/gen.err"; then
  pass "corpus generated ($(($(wc -l <"$C/expected.tsv") - 1)) rows)"
else
  fail "corpus generated" "$T/gen.err"
fi
if [ ! -s "$C/expected.tsv" ]; then
  fail "expected.tsv written" "no $C/expected.tsv: nothing to test"
  echo "$passed passed, $failed failed"
  exit 1
fi

# every file of the corpus has a row (nothing generated goes untested)
untested=$(cd "$C" && for f in *; do
  case $f in expected.tsv | generate.log | missing.txt) continue ;; esac
  cut -f1 expected.tsv | grep -qxF -- "$f" || echo "$f"
done)
if [ -z "$untested" ]; then pass "every fixture has a row in expected.tsv"; else fail "every fixture has a row in expected.tsv" "no row for: $untested"; fi

cat >"$T/rss.py" <<'EOF'
# rss.py OUTFILE CMD...: runs CMD (stdout/stderr inherited), writes its peak RSS in KiB to OUTFILE.
# Every allocated byte is written to (glibc MALLOC_PERTURB_, ASan max_malloc_fill_size), so an
# allocation sized from the header shows in the RSS even if nothing else touches it.
import os, resource, subprocess, sys
env = dict(os.environ, MALLOC_PERTURB_="85")
env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS", ""), "max_malloc_fill_size=2147483647") if x)
r = subprocess.run(sys.argv[2:], env=env)
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)
EOF

# --- the per-row checker ---------------------------------------------------------------------------
cat >"$T/check.py" <<'PYEOF'
"""check.py ROW-FIELDS(12) -- BIN INPUT OUTDIR TMPDIR RC STDOUT STDERR RSS BASELINE_RSS LIST
Prints one line per failed assertion; appends the image outputs to LIST."""
import hashlib, json, os, re, struct, subprocess, sys, zlib

a = sys.argv[1:]
(file, exp_exit, outcome, etype, ekind, oct_, ow, oh, sct, sw, sh, notes) = a[:12]
BIN, INPUT, OUTDIR, TMPD, rc, out_f, err_f, rss, base_rss, LIST = a[13:23]
rc = int(rc)
flags = set(w for w in notes.split() if w.startswith("+"))
opt = {f.split("=", 1)[0]: f.split("=", 1)[1] for f in flags if "=" in f}
problems = []

def bad(msg):
    problems.append(msg)

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

def vipshdr(path):
    """(width, height, bands) as libvips reads the file (page 0)."""
    r = subprocess.run(["vipsheader", path], capture_output=True, text=True)
    m = re.search(r": (\d+)x(\d+) \w+, (\d+) bands?", r.stdout)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))

def libmagic(path):
    return subprocess.run(["file", "-b", "--mime-type", path], capture_output=True, text=True).stdout.strip()

def png_pixels(path):
    """Decodes a small non-interlaced PNG: list of rows of (r, g, b, a) 8-bit tuples."""
    d = open(path, "rb").read()
    i, idat, ihdr = 8, b"", None
    while i < len(d):
        ln, t = struct.unpack(">I4s", d[i:i + 8])
        body = d[i + 8:i + 8 + ln]
        if t == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif t == b"IDAT":
            idat += body
        i += 12 + ln
    w, h, depth, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    bpp = chans * depth // 8
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, p = [], bytearray(stride), 0
    for _ in range(h):
        ft = raw[p]; line = bytearray(raw[p + 1:p + 1 + stride]); p += 1 + stride
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = prev[x]; ul = prev[x - bpp] if x >= bpp else 0
            if ft == 1: line[x] = (line[x] + left) & 255
            elif ft == 2: line[x] = (line[x] + up) & 255
            elif ft == 3: line[x] = (line[x] + (left + up) // 2) & 255
            elif ft == 4:
                pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                pr = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                line[x] = (line[x] + pr) & 255
        prev = line
        px = []
        for x in range(w):
            s = line[x * bpp:(x + 1) * bpp]
            v = [s[c * depth // 8] for c in range(chans)]  # 16-bit: high byte
            if chans == 1: v = [v[0]] * 3 + [255]
            elif chans == 2: v = [v[0]] * 3 + [v[1]]
            elif chans == 3: v = v + [255]
            px.append(tuple(v))
        rows.append(px)
    return rows

def corners(path):
    """The four corner pixels of a 4x4 thumbnail of the file (no auto-rotation)."""
    tmp = os.path.join(TMPD, "..", "corners-%d.png" % os.getpid())
    r = subprocess.run(["vips", "thumbnail", path, tmp, "4", "--height", "4", "--size", "force", "--no-rotate"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    rows = png_pixels(tmp)
    os.unlink(tmp)
    return rows[0][0], rows[0][3], rows[3][0], rows[3][3]

def colour(p):
    r, g, b, _ = p
    if "+hue" in flags:  # through a CMYK profile: only the dominant hue is stable
        if r > 200 and g > 200 and b > 200: return "white"
        for name, v, o1, o2 in (("red", r, g, b), ("green", g, r, b), ("blue", b, r, g)):
            if v > 100 and v > o1 + 60 and v > o2 + 60: return name
        return "other(%d,%d,%d)" % (r, g, b)
    if r > 150 and g < 100 and b < 100: return "red"
    if g > 150 and r < 100 and b < 120: return "green"
    if b > 150 and r < 100 and g < 100: return "blue"
    if r > 200 and g > 200 and b > 200: return "white"
    return "other(%d,%d,%d)" % (r, g, b)

# --- exit code, stdout, stderr -------------------------------------------------------------------
stdout = open(out_f, "rb").read().decode("utf-8", "replace")
stderr = open(err_f, "rb").read().decode("utf-8", "replace")
if rc != int(exp_exit):
    bad("exit code %d, expected %s" % (rc, exp_exit))
if os.listdir(TMPD):
    bad("left behind in TMPDIR: %s" % os.listdir(TMPD))
if exp_exit == "6":
    if len(stderr.strip().splitlines()) != 1:
        bad("missing file: expected one line on stderr, got %r" % stderr)
    if os.path.exists(OUTDIR) and os.listdir(OUTDIR):
        bad("missing file, yet files in --out: %s" % os.listdir(OUTDIR))
    print("\n".join(problems)); sys.exit(0)

lines = stdout.splitlines()
j = None
if len(lines) != 1:
    bad("stdout is not exactly one line: %r" % stdout[:300])
try:
    j = json.loads(stdout)
except ValueError:
    bad("stdout is not JSON: %r" % stdout[:300])
if not isinstance(j, dict):
    print("\n".join(problems)); sys.exit(0)

if outcome != "ok":
    if j.get("ok") is not False:
        bad("ok is %r, expected false (reject %s)" % (j.get("ok"), outcome))
    if j.get("reject") != outcome:
        bad("reject is %r, expected %r (message: %r)" % (j.get("reject"), outcome, j.get("message")))
    msg = j.get("message")
    if not isinstance(msg, str) or not msg or "\n" in msg:
        bad("message must be one non-empty line: %r" % msg)
    if etype != "-" and "type" in j and j["type"] != etype:
        bad("type is %r, expected %r" % (j["type"], etype))
    if len(stderr.strip().splitlines()) != 1:
        bad("rejected: expected one line on stderr, got %r" % stderr)
    if os.path.exists(OUTDIR) and os.listdir(OUTDIR):
        bad("rejected, yet files in --out: %s" % os.listdir(OUTDIR))
    if "+maxrss" in flags:
        r, b = int(rss or 0), int(base_rss or 0)
        if not r or not b:
            bad("peak RSS not measured (rss=%r, baseline=%r)" % (rss, base_rss))
        elif r > b + 16 * 1024:
            bad("peak RSS %d KiB, more than the baseline (a 320x240 JPEG: %d KiB) + 16 MiB: "
                "memory sized from the claimed dimensions was allocated before the refusal" % (r, b))
    print("\n".join(problems)); sys.exit(0)

# --- accepted ---------------------------------------------------------------------------------
if j.get("ok") is not True:
    bad("ok is %r, expected true (reject %r: %r)" % (j.get("ok"), j.get("reject"), j.get("message")))
    print("\n".join(problems)); sys.exit(0)
if j.get("type") != etype:
    bad("type is %r, expected %r" % (j.get("type"), etype))
if j.get("kind") != ekind:
    bad("kind is %r, expected %r" % (j.get("kind"), ekind))
if j.get("type_mismatch") is not False:
    bad("type_mismatch is %r without --claimed-type" % j.get("type_mismatch"))
styles = j.get("styles") or {}
want = ["original", "small"] if ekind == "image" else ["original"]
if sorted(styles) != sorted(want):
    bad("styles are %s, expected %s" % (sorted(styles), want))

EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}
dims = {}
for name, ect, ew, eh in (("original", oct_, ow, oh), ("small", sct, sw, sh)):
    if name not in want or name not in styles:
        continue
    s = styles[name]
    if s.get("content_type") != ect:
        bad("%s: content_type %r, expected %r" % (name, s.get("content_type"), ect))
    path = s.get("file")
    if not isinstance(path, str) or not os.path.isfile(path):
        bad("%s: file %r does not exist" % (name, path)); continue
    if os.path.dirname(os.path.abspath(path)) != os.path.abspath(OUTDIR) or not os.path.basename(path).startswith(name + "."):
        bad("%s: file %r is not %s/%s.<ext>" % (name, path, OUTDIR, name))
    if ect in EXT and not path.endswith("." + EXT[ect]):
        bad("%s: file %r should end in .%s" % (name, path, EXT[ect]))
    if os.path.getsize(path) != s.get("size"):
        bad("%s: size %r in JSON, %d on disk" % (name, s.get("size"), os.path.getsize(path)))
    if sha(path) != s.get("sha256"):
        bad("%s: sha256 in JSON does not match the file" % name)
    lm = libmagic(path)
    if lm != ect and not (ect == "audio/wav" and lm == "audio/x-wav") and not (ect == "audio/aac" and lm == "audio/x-hx-aac-adts") \
            and not (ect == "audio/mp4" and lm == "audio/x-m4a"):
        bad("%s: libmagic says the file is %s, the JSON says %s" % (name, lm, ect))
    if ekind != "image":
        continue
    with open(LIST, "a") as f:
        f.write("%s\t%s\t%s\t%s\n" % (file, name, path, notes))
    vh = vipshdr(path)
    if vh is None:
        bad("%s: vipsheader cannot read %s" % (name, path)); continue
    w, h, bands = vh
    dims[name] = (w, h, bands)
    if (s.get("width"), s.get("height")) != (w, h):
        bad("%s: JSON says %rx%r, the file is %dx%d" % (name, s.get("width"), s.get("height"), w, h))
    if abs(w - int(ew)) > 1 or abs(h - int(eh)) > 1:
        bad("%s: %dx%d, expected %sx%s (+-1)" % (name, w, h, ew, eh))
    m = (j.get("meta") or {}).get(name) or {}
    if (m.get("width"), m.get("height"), m.get("size")) != (w, h, "%dx%d" % (w, h)) or \
            not isinstance(m.get("aspect"), (int, float)) or abs(m["aspect"] - w / h) > 0.001:
        bad("%s: meta %r does not describe %dx%d" % (name, m, w, h))
    if "+rgb" in flags and bands != 3:
        bad("%s: %d bands, expected 3 (sRGB, no alpha)" % (name, bands))
    if "+alpha" in flags and bands not in (2, 4):
        bad("%s: %d bands: the alpha channel was lost" % (name, bands))

if ekind == "image":
    if j.get("transcoded") is not True and "+anim" not in flags:
        bad("transcoded is %r, expected true" % j.get("transcoded"))
    if j.get("animated") is not ("+anim" in flags):
        bad("animated is %r, expected %r" % (j.get("animated"), "+anim" in flags))
    want_or = int(opt.get("+orient", "1"))
    if j.get("orientation") != want_or:
        bad("orientation is %r, expected %d" % (j.get("orientation"), want_or))
    bh = j.get("blurhash")
    if not isinstance(bh, str) or len(bh) != 36 or bh[0] != "U" or \
            any(c not in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~" for c in bh):
        bad("blurhash %r is not a 4x4 blurhash (36 base83 characters, starting with U)" % bh)
    if "original" in dims and "small" in dims:
        (w1, h1, _), (w2, h2, _) = dims["original"], dims["small"]
        lim = 921600 if "+anim" in flags else 8294400
        if w1 * h1 > lim:
            bad("original %dx%d has %d px, over %d" % (w1, h1, w1 * h1, lim))
        if w2 * h2 > 230400:
            bad("small %dx%d has %d px, over 230400" % (w2, h2, w2 * h2))
        if w2 > w1 or h2 > h1:
            bad("small %dx%d is larger than original %dx%d" % (w2, h2, w1, h1))
    for name in ("original", "small"):
        path = (styles.get(name) or {}).get("file")
        if not path or not os.path.isfile(path):
            continue
        if "+quad" in flags or "+first" in opt or "+flat" in opt:
            c = corners(path)
            if c is None:
                bad("%s: cannot make a thumbnail to read pixels" % name); continue
            got = [colour(p) for p in c]
            if "+first" in opt:
                exp = [opt["+first"]] * 4
                if got != exp:
                    bad("%s: corners %s, expected the first frame (%s)" % (name, got, opt["+first"]))
            elif "+flat" in opt:
                exp = ["red"] + [opt["+flat"]] * 3
                if got != exp:
                    bad("%s: corners %s, expected %s (opaque red quarter, the rest flattened onto %s)"
                        % (name, got, exp, opt["+flat"]))
            elif "+alpha" in flags:
                alphas = [p[3] for p in c]
                if got[0] != "red" or got[3] != "white" or not (alphas[0] > 200 and alphas[3] > 200 and alphas[1] < 50 and alphas[2] < 50):
                    bad("%s: corners %s alpha %s, expected red/opaque, -/transparent, -/transparent, white/opaque" % (name, got, alphas))
            elif got != ["red", "green", "blue", "white"]:
                bad("%s: corners TL TR BL BR are %s, expected red green blue white (upright)" % (name, got))
    if "+anim" in flags and "+meta" not in flags:  # nothing to strip: the bytes as they came
        o = styles.get("original") or {}
        if o.get("sha256") != sha(INPUT):
            bad("animated GIF original is not the input as is (sha256 differs)")
    if "+nozip" in flags:
        src = open(INPUT, "rb").read()
        if b"PK\x03\x04" not in src or b"R2BSECRET-zip-payload" not in src:
            bad("fixture: the input should carry the ZIP (sanity)")
        for name in ("original", "small"):
            path = (styles.get(name) or {}).get("file")
            if path and os.path.isfile(path):
                d = open(path, "rb").read()
                if b"PK\x03\x04" in d or b"PK\x05\x06" in d or b"R2BSECRET-zip-payload" in d:
                    bad("%s still carries the appended ZIP" % name)

if "+passthrough" in flags:
    o = styles.get("original") or {}
    if j.get("transcoded") is not False:
        bad("transcoded is %r, expected false (pass-through)" % j.get("transcoded"))
    if j.get("animated") is not False:
        bad("animated is %r for %s" % (j.get("animated"), ekind))
    if o.get("sha256") != sha(INPUT):
        bad("pass-through: sha256 %r is not the input's" % o.get("sha256"))
    if o.get("size") != os.path.getsize(INPUT):
        bad("pass-through: size %r is not the input's %d" % (o.get("size"), os.path.getsize(INPUT)))
    p = o.get("file")
    if p and os.path.isfile(p) and subprocess.run(["cmp", "-s", p, INPUT]).returncode != 0:
        bad("pass-through: the file differs from the input")

if "+claimed" in opt:
    for claim, mismatch in ((opt["+claimed"], True), (etype, False)):
        r = subprocess.run([BIN, "inspect", INPUT, "--json", "--claimed-type", claim], capture_output=True, text=True,
                           env=dict(os.environ, TMPDIR=TMPD))
        try:
            jj = json.loads(r.stdout)
        except ValueError:
            bad("--claimed-type %s: stdout is not JSON: %r" % (claim, r.stdout[:200])); continue
        if r.returncode != 0 or jj.get("type") != etype or jj.get("type_mismatch") is not mismatch:
            bad("--claimed-type %s: exit %d, type %r, type_mismatch %r; expected 0, %s, %r" %
                (claim, r.returncode, jj.get("type"), jj.get("type_mismatch"), etype, mismatch))
        if any("file" in (s or {}) for s in (jj.get("styles") or {}).values()):
            bad("--claimed-type %s without --out: styles still name a file" % claim)
        if os.listdir(TMPD):
            bad("--claimed-type %s without --out: left behind in TMPDIR: %s" % (claim, os.listdir(TMPD)))
print("\n".join(problems))
PYEOF

# --- the metadata proof ---------------------------------------------------------------------------
cat >"$T/meta.py" <<'PYEOF'
"""meta.py LIST EXIF_JSON VIPSDIR CORPUS: one line per output, "OK<TAB>desc" or "FAIL<TAB>desc<TAB>reason; ..."."""
import json, os, re, struct, sys

LIST, EXIF_JSON, VIPSDIR, CORPUS = sys.argv[1:5]
exif = {}
try:
    for d in json.load(open(EXIF_JSON)):
        exif[os.path.abspath(d["SourceFile"])] = d
except (ValueError, OSError) as e:
    print("FAIL\texiftool output\tcannot read exiftool's JSON: %s" % e)

SENSITIVE = re.compile(r"Date|Time|Comment|Make|Model|Serial|GPS|Artist|Author|Copyright|Software|Description|"
                       r"Title|Keyword|Caption|Creator|Owner|Lens|Thumbnail|Location|City|Country|By-?line|"
                       r"Unique|XMP|IPTC|Exif|Maker", re.I)
OK_GROUPS = {"ExifTool", "System", "File", "JFIF", "Composite", "PNG", "PNG-pHYs", "RIFF", "GIF", "APP14", "Adobe"}
PNG_TAGS = {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace", "Gamma",
            "SRGBRendering", "WhitePointX", "WhitePointY", "RedX", "RedY", "GreenX", "GreenY", "BlueX", "BlueY",
            "Palette", "Transparency", "BackgroundColor", "SignificantBits", "ProfileName",
            "PixelsPerUnitX", "PixelsPerUnitY", "PixelUnits"}
VIPS_BAD = re.compile(r"exif|xmp|iptc|ipct|comment|gps|orientation|photoshop|maker|thumbnail", re.I)

def structure(path, d):
    """Metadata containers found by walking the file format itself."""
    found = []
    if d[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(d) and d[i] == 0xFF:
            m = d[i + 1]
            if m == 0xDA or m == 0xD9:
                break
            ln = struct.unpack(">H", d[i + 2:i + 4])[0]
            seg = d[i + 4:i + 2 + ln]
            if m == 0xFE:
                found.append("JPEG COM segment")
            elif 0xE0 <= m <= 0xEF:
                ok = (m == 0xE0 and seg[:5] in (b"JFIF\0", b"JFXX\0")) or (m == 0xE2 and seg[:12] == b"ICC_PROFILE\0") \
                    or (m == 0xEE and seg[:5] == b"Adobe")
                if not ok:
                    found.append("JPEG APP%d segment %r" % (m - 0xE0, seg[:16]))
            i += 2 + ln
    elif d[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(d):
            ln, t = struct.unpack(">I4s", d[i:i + 8])
            if t not in (b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
                         b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT"):
                found.append("PNG %s chunk" % t.decode("latin-1"))
            i += 12 + ln
    elif d[:4] == b"RIFF" and d[8:12] == b"WEBP":
        i = 12
        while i + 8 <= len(d):
            t, ln = d[i:i + 4], struct.unpack("<I", d[i + 4:i + 8])[0]
            if t == b"VP8X" and d[i + 8] & (0x08 | 0x04):
                found.append("WebP VP8X flags announce EXIF/XMP (0x%02x)" % d[i + 8])
            if t not in (b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"):
                found.append("WebP %s chunk" % t.decode("latin-1"))
            i += 8 + ln + (ln & 1)
    elif d[:6] in (b"GIF87a", b"GIF89a"):
        i = 13
        if d[10] & 0x80:
            i += 3 * (1 << ((d[10] & 7) + 1))
        while i < len(d):
            if d[i] == 0x3B:
                if i + 1 < len(d):
                    found.append("%d bytes after the GIF trailer" % (len(d) - i - 1))
                break
            if d[i] == 0x2C:
                flags = d[i + 9]
                i += 10 + (3 * (1 << ((flags & 7) + 1)) if flags & 0x80 else 0) + 1
            elif d[i] == 0x21:
                label = d[i + 1]
                if label == 0xFE:
                    found.append("GIF comment extension")
                elif label == 0x01:
                    found.append("GIF plain-text extension")
                elif label == 0xFF and d[i + 3:i + 14] not in (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"):
                    found.append("GIF application extension %r" % d[i + 3:i + 14])
                i += 2
            else:
                found.append("GIF: unknown block 0x%02x at %d" % (d[i], i)); break
            while i < len(d) and d[i] != 0:  # data sub-blocks
                i += d[i] + 1
            i += 1
    else:
        found.append("not a JPEG, PNG, WebP or GIF")
    return found

for line in open(LIST):
    fixture, style, path, notes = line.rstrip("\n").split("\t")
    desc = "metadata: %s -> %s (%s)" % (fixture, style, os.path.basename(path))
    why = []
    if not os.path.isfile(path):
        print("FAIL\t%s\t%s" % (desc, "output file missing")); continue
    d = open(path, "rb").read()
    for needle, what in ((b"R2BSECRET", "the R2BSECRET marker"), (b"2001:02:03", "the source's date"),
                         (b"2001-02-03", "the source's date"), (b"Exif\0\0", "an EXIF header"),
                         (b"<x:xmpmeta", "an XMP packet"), (b"http://ns.adobe.com/xap/1.0/", "the XMP namespace"),
                         (b"Photoshop 3.0", "an IPTC (Photoshop) block")):
        if needle in d:
            why.append("bytes: %s found" % what)
    why += ["structure: " + f for f in structure(path, d)]
    e = exif.get(os.path.abspath(path))
    if e is None:
        why.append("exiftool: no report for the file")
    else:
        for k, v in e.items():
            if k == "SourceFile" or ":" not in k:
                continue
            g, tag = k.split(":", 1)
            if g in ("ExifTool", "System"):
                continue
            if "R2BSECRET" in str(v):
                why.append("exiftool: %s = %r carries the marker" % (k, v))
            if g.startswith("ICC"):
                if tag == "ProfileDescription" and "srgb" not in str(v).lower():
                    why.append("exiftool: ICC profile %r is not sRGB" % v)
                continue
            if g not in OK_GROUPS:
                why.append("exiftool: %s = %r" % (k, str(v)[:60]))
            elif g == "PNG" and tag not in PNG_TAGS:
                why.append("exiftool: PNG text/metadata %s = %r" % (k, str(v)[:60]))
            elif g == "File" and (tag in ("Comment", "ExifByteOrder", "CurrentIPTCDigest") or SENSITIVE.search(tag)):
                why.append("exiftool: %s = %r" % (k, str(v)[:60]))
            elif g not in ("File", "PNG") and SENSITIVE.search(tag):
                why.append("exiftool: %s = %r" % (k, str(v)[:60]))
    vf = os.path.join(VIPSDIR, "%s.%s.txt" % (fixture, style))
    vt = open(vf).read() if os.path.exists(vf) else ""
    if not vt.strip():
        why.append("vipsheader -a: no output")
    for l in vt.splitlines():
        name = l.split(":", 1)[0]
        if name.startswith("vipsheader") or name == "filename" or l.startswith(path):
            continue
        if VIPS_BAD.search(name) or "R2BSECRET" in l:
            why.append("vipsheader: %s" % l[:100])
    print(("FAIL\t%s\t%s" % (desc, "; ".join(why))) if why else ("OK\t%s" % desc))

# Sources that must carry metadata do (otherwise the proof proves nothing).
seen = set()
for line in open(LIST):
    fixture, style, path, notes = line.rstrip("\n").split("\t")
    if "+meta" not in notes.split() or fixture in seen:
        continue
    seen.add(fixture)
    src = os.path.abspath(os.path.join(CORPUS, fixture))
    e = exif.get(src) or {}
    blob = json.dumps(e)
    desc = "fixture %s carries metadata to remove" % fixture
    why = []
    if "R2BSECRET" not in blob:
        why.append("no R2BSECRET value in exiftool's report of the source")
    if not fixture.startswith("gif-static-1600") and "GPSLatitude" not in blob:
        why.append("no GPS in the source")
    print(("FAIL\t%s\t%s" % (desc, "; ".join(why))) if why else ("OK\t%s" % desc))
PYEOF

LIST="$T/outputs.tsv"
: >"$LIST"

# run_row LINE-FIELDS...: runs inspect on one fixture and checks it
i=0
baseline_rss=
rss_of() { # rss_of FILE: peak RSS (KiB) of `inspect FILE`
  mkdir -p "$T/tmp/rss"
  TMPDIR="$T/tmp/rss" python3 "$T/rss.py" "$T/rss" "$BIN" inspect "$1" --json >/dev/null 2>&1
  cat "$T/rss" 2>/dev/null
}
baseline_rss=$(rss_of "$C/jpeg-320x240.jpg")

while IFS=$'\t' read -r file exit outcome type kind oct ow oh sct sw sh notes; do
  [ "$file" = file ] && continue
  i=$((i + 1))
  case "$outcome/$kind" in
    ok/image) desc="$file: ok $type, original $oct ${ow}x$oh, small $sct ${sw}x$sh" ;;
    ok/*) desc="$file: ok $type ($kind), original $oct" ;;
    -/*) desc="$file: exit $exit" ;;
    *) desc="$file: exit $exit $outcome" ;;
  esac
  input="$C/$file"
  if [ "$exit" != 6 ] && [ ! -e "$input" ]; then
    why=$(grep -F -- "$file	" "$C/missing.txt" 2>/dev/null | cut -f2 | head -1)
    fail "$desc" "fixture not generated: ${why:-unknown reason (see $C/generate.log)}"
    continue
  fi
  out="$T/out/$i"
  tmpd="$T/tmp/$i"
  mkdir -p "$tmpd"
  rss=
  case " $notes " in
    *" +maxrss "*)
      TMPDIR="$tmpd" python3 "$T/rss.py" "$T/rss" "$BIN" inspect "$input" --json --out "$out" \
        >"$T/run/stdout" 2>"$T/run/stderr"
      rc=$?
      keep
      rss=$(cat "$T/rss" 2>/dev/null) ;;
    *)
      TMPDIR="$tmpd" "$BIN" inspect "$input" --json --out "$out" >"$T/run/stdout" 2>"$T/run/stderr"
      rc=$?
      keep ;;
  esac
  python3 "$T/check.py" "$file" "$exit" "$outcome" "$type" "$kind" "$oct" "$ow" "$oh" "$sct" "$sw" "$sh" "$notes" -- \
    "$BIN" "$input" "$out" "$tmpd" "$rc" "$T/run/stdout" "$T/run/stderr" "${rss:-0}" "${baseline_rss:-0}" "$LIST" \
    >"$T/run/problems" 2>&1
  if [ -s "$T/run/problems" ] && grep -q . "$T/run/problems"; then
    { grep . "$T/run/problems"; echo "stdout: $(head -c 400 "$T/run/stdout")"; echo "stderr: $(head -c 300 "$T/run/stderr")"; } >"$T/run/why"
    fail "$desc" "$T/run/why"
  else
    pass "$desc"
  fi
  # a rejection without --json: exit 4, one line on stderr, nothing on stdout
  if [ "$exit" = 4 ]; then
    TMPDIR="$tmpd" "$BIN" inspect "$input" >"$T/run/stdout" 2>"$T/run/stderr"
    rc=$?
    keep
    if [ "$rc" = 4 ] && [ ! -s "$T/run/stdout" ] && [ "$(wc -l <"$T/run/stderr")" = 1 ] &&
      grep -q "$outcome" "$T/run/stderr" && [ -z "$(ls -A "$tmpd")" ]; then
      pass "$file: without --json: exit 4, one line on stderr naming '$outcome'"
    else
      fail "$file: without --json: exit 4, one line on stderr naming '$outcome'" \
        "rc=$rc stdout=$(head -c 200 "$T/run/stdout") stderr=$(head -c 300 "$T/run/stderr") tmp=$(ls -A "$tmpd")"
    fi
  fi
done <"$C/expected.tsv"

# without --out the styles are deleted after the report and "file" is absent
for f in jpeg-4000x3000-orient6.jpg gif-animated-480x270.gif audio.wav; do
  [ -e "$C/$f" ] || continue
  mkdir -p "$T/tmp/noout"
  TMPDIR="$T/tmp/noout" "$BIN" inspect "$C/$f" --json >"$T/run/stdout" 2>"$T/run/stderr"
  rc=$?
  keep
  if [ "$rc" = 0 ] && [ -z "$(ls -A "$T/tmp/noout")" ] &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] and d["styles"] and all("file" not in s for s in d["styles"].values()) else 1)' "$T/run/stdout"; then
    pass "$f: without --out nothing is left in TMPDIR and no style names a file"
  else
    fail "$f: without --out nothing is left in TMPDIR and no style names a file" \
      "rc=$rc tmp=$(ls -A "$T/tmp/noout") stdout=$(head -c 300 "$T/run/stdout")"
  fi
done

# --- metadata: every image output, three readers ---------------------------------------------------
mkdir -p "$T/vips"
exif_inputs=()
while IFS=$'\t' read -r fixture style path notes; do
  vipsheader -a "$path" >"$T/vips/$fixture.$style.txt" 2>&1
  exif_inputs+=("$path")
  case " $notes " in *" +meta "*) exif_inputs+=("$C/$fixture") ;; esac
done <"$LIST"
if [ ${#exif_inputs[@]} -gt 0 ]; then
  exiftool -j -a -G1 -struct "${exif_inputs[@]}" >"$T/exif.json" 2>"$T/exif.err"
fi
python3 "$T/meta.py" "$LIST" "$T/exif.json" "$T/vips" "$C" >"$T/meta.out" 2>&1 || echo "FAIL	meta.py	crashed: $(tail -3 "$T/meta.out")" >>"$T/meta.out"
meta_rows=0
while IFS=$'\t' read -r verdict desc why; do
  meta_rows=$((meta_rows + 1))
  if [ "$verdict" = OK ]; then pass "$desc"; else fail "$desc" "$(printf '%s' "$why" | tr ';' '\n' | sed 's/^ //')"; fi
done <"$T/meta.out"
if [ "$meta_rows" -lt 10 ]; then
  fail "metadata proof ran on the image outputs" "only $meta_rows verdicts"
fi

# everything r2bridge printed, for the suite's secret scan (test/secret_scan.sh)
if [ -n "${R2B_TEST_OUTPUTS:-}" ] && mkdir -p "$R2B_TEST_OUTPUTS"; then
  cp "$T/all-output" "$R2B_TEST_OUTPUTS/media-$$.log" 2>/dev/null || true
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
