#!/usr/bin/env python3
"""Differential SigV4 test: r2bridge's signer against botocore.

    sigv4_diff.py --driver PATH --cases N [--seed S] [--show K]

Generates N random S3 requests (header-signed and presigned), has the C
driver (test/sigv4_diff_driver.c) sign all of them in one process (JSON lines
on stdin/stdout), signs the same requests with botocore's S3SigV4Auth and
S3SigV4QueryAuth at the same fixed time, and requires byte-identical canonical
request, string to sign and signature (the whole Authorization header, and
for presigned URLs the scheme, host, path and every query parameter).

The requests are built the way botocore's own S3 client builds them, so that
botocore is exercised on its real code path and not bent to match us:
  - the path is percent-encoded once with safe '/~' (the rest-xml serializer
    for a greedy {Key+} label); S3SigV4Auth signs it verbatim, no
    normalization of '//', '.' or '..';
  - operation parameters are put in the URL query with botocore's
    percent_encode_sequence, valueless ones ("?uploads") as a bare name the
    way a requestUri carries them; S3SigV4Auth then canonicalizes the URL
    query (_canonical_query_string_url), and S3SigV4QueryAuth parses it with
    parse_qs and re-encodes it;
  - the payload hash comes from a real random body (or payload signing is
    switched off with the s3 'payload_signing_enabled' client config);
  - the clock is fixed by replacing botocore.auth's clock, as botocore's own
    unit tests do.

Known botocore peculiarities the generator steers around (where botocore
and the S3 rules differ, the C signer follows the rules):
  - headers botocore never signs (user-agent, expect, transfer-encoding,
    x-amzn-trace-id, connection, ...) are not generated: the C signer signs
    every header its caller passes, by contract;
  - a 'Date' header makes botocore sign 'Date' instead of 'X-Amz-Date'; the
    C signer always adds x-amz-date, so 'Date' is not generated;
  - botocore lowercases the host and drops a default port; hosts are
    generated lowercase, and a default port appears only in botocore's URL,
    the C signer gets the Host header as it will be sent (contract);
  - S3SigV4QueryAuth round-trips the query through parse_qs and a dict, so
    it keeps only the first of repeated parameter names and turns a literal
    '+' into a space; presign cases therefore use distinct names (repeated
    names are covered by the header-signing cases);
  - SigV4QueryAuth drops a content-type of exactly
    'application/x-www-form-urlencoded; charset=utf-8'; not generated;
  - botocore trims header values with Python's str.split(), which also
    folds Unicode spaces (U+00A0, U+2003, U+3000, ...) and ASCII 0x1C-0x1F,
    where SigV4 trims only spaces; values are generated with ASCII spaces
    and tabs only (the C signer refuses control characters in values).

Prints the seed first and "N passed, M failed" as the last line; exits 1 on
any failure, 2 on a usage or setup error.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import types
from urllib.parse import urlsplit

try:
    import botocore
    import botocore.auth
    import botocore.awsrequest
    import botocore.config
    import botocore.credentials
    from botocore.utils import percent_encode
except ImportError as e:  # pragma: no cover - depends on the image
    print("sigv4_diff: cannot import botocore with %s: %s" % (sys.executable, e),
          file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(2)

EPOCH = datetime.datetime(1970, 1, 1)
UNSIGNED = "UNSIGNED-PAYLOAD"
METHODS = ["GET", "PUT", "HEAD", "DELETE", "POST"]
PRESIGN_RESERVED = {
    "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
    "x-amz-signedheaders", "x-amz-security-token", "x-amz-signature",
}

# --- botocore's clock ------------------------------------------------------


class _Clock:
    now = EPOCH


def _fixed_now(*_args, **_kwargs):
    return _Clock.now


def install_clock():
    """Make botocore.auth read the time from _Clock.now."""
    if hasattr(botocore.auth, "get_current_datetime"):
        # botocore >= 1.33: auth.py calls compat.get_current_datetime()
        botocore.auth.get_current_datetime = _fixed_now
        return

    # older botocore calls datetime.datetime.utcnow() through its own import
    # of the datetime module (botocore's tests patch 'botocore.auth.datetime')
    class FixedDateTime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return _Clock.now

    fake = types.ModuleType("datetime")
    fake.__dict__.update(datetime.__dict__)
    fake.datetime = FixedDateTime
    botocore.auth.datetime = fake


# --- random requests ---------------------------------------------------------

ASCII_WORDS = ["a", "photo", "IMG_0001", "x", "report-2024", "data_set", "Z9",
               "dir", "file.txt", "weird.name.", "-", "_", "~user"]
UTF8_WORDS = ["ñ", "é", "ü", "日本語", "中文", "Ελλάδα", "данные", "😀", "🚀",
              "\u00e9\u0301", "ﬁ", "₿", "\u200b", "👩\u200d💻"]
SPECIAL = [" ", "  ", "+", "=", "&", "%", "%20", "%2F", "~", "/", "//", "?",
           "#", "!", "$", "'", "(", ")", "*", ",", ";", ":", "@", "[", "]",
           "\"", "<", ">", "\\", "^", "`", "{", "|", "}", "\t"]
SEGMENTS = ["/./", "/../", "/.", "/..", "./", "../", ".", ".."]
QUERY_NAMES = ["uploads", "uploadId", "partNumber", "prefix", "delimiter",
               "max-keys", "list-type", "continuation-token", "start-after",
               "versionId", "response-content-disposition",
               "response-content-type", "encoding-type", "fetch-owner",
               "acl", "tagging", "x-id", "marker", "A", "a", "a-b", "a.b",
               "a_b", "a~b", "Zz"]
HEADER_VALUE_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def rand_str(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def rand_piece(rng):
    r = rng.random()
    if r < 0.35:
        return rng.choice(ASCII_WORDS)
    if r < 0.55:
        return rng.choice(UTF8_WORDS)
    if r < 0.85:
        return rng.choice(SPECIAL)
    return rng.choice(SEGMENTS)


def rand_key(rng):
    if rng.random() < 0.05:
        return rng.choice([".", "..", "/", "//", " ", "+", "%", "?", "#", "😀"])
    return "".join(rand_piece(rng) for _ in range(rng.randint(1, 8)))


def rand_path(rng):
    style = rng.random()
    if style < 0.1:
        return "/"
    if style < 0.2:
        return "/" + rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789-", 3, 20)
    key = rand_key(rng)
    if style < 0.35:  # virtual-hosted style: the path is the key
        return "/" + key
    bucket = rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789-.", 3, 20)
    return "/" + bucket + "/" + key


def rand_region(rng):
    r = rng.random()
    if r < 0.3:
        return "auto"
    if r < 0.5:
        return "us-east-1"
    if r < 0.7:
        return rng.choice(["eu-west-3", "ap-southeast-2", "wnam", "enam", "weur",
                           "apac", "us-gov-west-1", "cn-north-1"])
    if r < 0.75:
        return rand_str(rng, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", 1, 24)
    return rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789-", 1, 24)


def rand_host(rng, scheme):
    """Returns (netloc for botocore's URL, Host header as it will be sent)."""
    r = rng.random()
    if r < 0.3:
        name = rand_str(rng, "0123456789abcdef", 32, 32) + ".r2.cloudflarestorage.com"
    elif r < 0.45:
        name = rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789-", 3, 30) + \
            ".s3.amazonaws.com"
    elif r < 0.6:
        name = rng.choice(["localhost", "127.0.0.1", "10.0.0.7", "minio.internal",
                           "s3.example.test"])
    elif r < 0.7:
        name = rng.choice(["[::1]", "[2001:db8::5]", "[fe80::1]"])
    else:
        labels = [rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 1, 12)
                  for _ in range(rng.randint(1, 4))]
        name = ".".join(labels)
    default = 443 if scheme == "https" else 80
    p = rng.random()
    if p < 0.45:
        return name, name
    if p < 0.6:  # explicit default port: clients leave it out of Host
        return "%s:%d" % (name, default), name
    port = rng.choice([80, 443, 8080, 9000, 8443, 1, 65535, rng.randint(1, 65535)])
    if port == default:
        port = default + 1
    hp = "%s:%d" % (name, port)
    return hp, hp


def rand_query_name(rng):
    r = rng.random()
    if r < 0.6:
        return rng.choice(QUERY_NAMES)
    if r < 0.8:
        return rand_str(rng, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", 1, 12)
    return "".join(rand_piece(rng) for _ in range(rng.randint(1, 3)))


def rand_query_value(rng):
    r = rng.random()
    if r < 0.15:
        return None  # valueless, like ?uploads
    if r < 0.25:
        return ""
    if r < 0.45:
        return rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 1, 10)
    if r < 0.55:
        return 'attachment; filename="%s"' % rand_key(rng)
    return "".join(rand_piece(rng) for _ in range(rng.randint(1, 5)))


def rand_params(rng, presign):
    params = []
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4, 6, 10])):
        name = rand_query_name(rng)
        if name.lower() in PRESIGN_RESERVED:
            continue
        params.append([name, rand_query_value(rng)])
        if not presign and rng.random() < 0.15:  # repeated name
            params.append([name, rng.choice([rand_query_value(rng), params[-1][1]])])
    if presign:  # see the module docstring: botocore keeps one value per name
        seen, uniq = set(), []
        for n, v in params:
            if n not in seen:
                seen.add(n)
                uniq.append([n, v])
        params = uniq
    rng.shuffle(params)
    return params


def spaced_value(rng):
    """An ASCII header value with leading, trailing and inner runs of spaces/tabs."""
    words = [rand_str(rng, HEADER_VALUE_CHARS, 1, 8) for _ in range(rng.randint(0, 4))]
    ws = lambda: rng.choice(["", " ", "  ", "   ", "\t", " \t ", "    "])
    out = ws()
    for i, w in enumerate(words):
        if i:
            out += rng.choice([" ", "  ", "\t", "   ", " \t"])
        out += w
    return out + ws()


def rand_case_name(rng, name):
    r = rng.random()
    if r < 0.4:
        return name
    if r < 0.7:
        return "-".join(p[:1].upper() + p[1:] for p in name.split("-"))
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def rand_headers(rng, presign):
    headers = []
    for _ in range(rng.choice([0, 0, 1, 2, 3, 4, 6])):
        r = rng.random()
        if r < 0.15:
            v = rng.choice(["image/jpeg", "text/plain; charset=utf-8",
                            "application/octet-stream", " video/mp4 ",
                            "multipart/form-data;  boundary=x"])
            headers.append(["content-type", v])
        elif r < 0.3:
            md5 = hashlib.md5(rand_str(rng, B64, 0, 20).encode()).digest()
            headers.append(["content-md5", base64.b64encode(md5).decode()])
        elif r < 0.4:
            headers.append(["cache-control", rng.choice(
                ["max-age=3600", "no-cache,  no-store", "public, max-age=31536000, immutable"])])
        elif r < 0.5:
            # includes names that sort right next to the signer's own headers
            headers.append([rng.choice(["x-amz-storage-class", "x-amz-acl", "range",
                                        "if-none-match", "if-match", "content-disposition",
                                        "content-encoding", "content-language", "expires",
                                        "x-amz-tagging", "x-amz-copy-source",
                                        "x-amz-checksum-crc32", "x-amz-content-sha",
                                        "x-amz-content-sha2560", "x-amz-d", "x-amz-date-x",
                                        "x-amz-security", "x-amz-", "hos", "host-x", "a", "z",
                                        "x_amz_meta_underscore", "x-amz-meta-"]),
                            spaced_value(rng)])
        else:
            meta = "x-amz-meta-" + rand_str(rng, "abcdefghijklmnopqrstuvwxyz0123456789-_", 1, 12)
            headers.append([meta, spaced_value(rng)])
            if rng.random() < 0.2:  # repeated name, joined with ','
                headers.append([meta, spaced_value(rng)])
    return [[rand_case_name(rng, n), v] for n, v in headers]


def make_big(rng, case, presign):
    """Pushes a case towards the signer's named limits (path bytes, params,
    headers) so that its buffer sizing is exercised, staying within them."""
    what = rng.choice(["path", "params", "headers", "all"])
    if what in ("path", "all"):
        path = "/" + rand_key(rng)
        while len(path.encode("utf-8")) < rng.randint(1000, 4096):
            path += rand_piece(rng)
        while len(path.encode("utf-8")) > 4096:
            path = path[:-1]
        case["path"] = path
    if what in ("params", "all"):
        names = set()
        params = []
        while len(params) < 64:
            name = rand_query_name(rng) + str(len(params))
            if presign and name in names:
                continue
            names.add(name)
            params.append([name, rand_query_value(rng)])
        case["params"] = params
    if what in ("headers", "all"):
        headers = []
        for i in range(64):
            name = rand_case_name(rng, "x-amz-meta-h%d" % rng.randint(0, 40))
            headers.append([name, spaced_value(rng) + " " * rng.randint(0, 50) +
                            rand_str(rng, HEADER_VALUE_CHARS + "  \t", 0, 300)])
        case["headers"] = headers


def rand_creds(rng):
    if rng.random() < 0.5:
        ak = "AKIA" + rand_str(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16)
        sk = rand_str(rng, B64, 40, 40)
    else:  # R2 style
        ak = rand_str(rng, "0123456789abcdef", 32, 32)
        sk = rand_str(rng, "0123456789abcdef", 64, 64)
    if rng.random() < 0.1:
        sk = rand_str(rng, B64, 61, 200)  # "AWS4"+secret longer than a SHA-256 block
    token = None
    if rng.random() < 0.3:
        token = rand_str(rng, B64, 16, 400) + rng.choice(["", "=", "=="])
    return ak, sk, token


def gen_cases(rng, n):
    cases = []
    prev = None
    for i in range(n):
        presign = rng.random() < 0.4
        scheme = rng.choice(["https", "https", "http"])
        netloc, host = rand_host(rng, scheme)
        if prev is not None and rng.random() < 0.3:
            # same credentials, region: the driver reuses its signer, so the
            # signing-key cache is checked on the same day and across days
            ak, sk, token, region = prev["access_key"], prev["secret_key"], \
                prev["token"], prev["region"]
            now = prev["now"] + rng.choice([0, 1, 59, 3600, 86399, 86400, 86401,
                                            -86400, rng.randint(-10 ** 7, 10 ** 7)])
            now = min(max(now, 0), 253402300799)
        else:
            ak, sk, token = rand_creds(rng)
            region = rand_region(rng)
            if rng.random() < 0.1:
                now = rng.randint(0, 253402300799)  # 1970 .. 9999
            else:
                now = rng.randint(946684800, 4102444799)  # 2000 .. 2099
        case = {
            "id": i,
            "mode": "presign" if presign else "sign",
            "access_key": ak, "secret_key": sk, "token": token,
            "region": region, "service": "s3",
            "method": rng.choice(METHODS),
            "scheme": scheme, "netloc": netloc, "host": host,
            "path": rand_path(rng),
            "params": rand_params(rng, presign),
            "headers": rand_headers(rng, presign),
            "now": now,
        }
        if rng.random() < 0.03:
            make_big(rng, case, presign)
        if presign:
            case["expires"] = rng.choice([1, 60, 3600, 86400, 604800,
                                          rng.randint(1, 604800)])
            case["payload_hash"] = None
            case["body_hex"] = ""
        else:
            body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 7, 64, 200])))
            mode = rng.random()
            if mode < 0.3:  # payload signing off: UNSIGNED-PAYLOAD
                case["payload_signed"] = False
                case["payload_hash"] = None if rng.random() < 0.5 else UNSIGNED
            else:
                case["payload_signed"] = True
                case["payload_hash"] = hashlib.sha256(body).hexdigest()
            case["body_hex"] = body.hex()
        cases.append(case)
        prev = case
    return cases


# --- botocore ------------------------------------------------------------------


def _recording(cls):
    class Recording(cls):
        """botocore's signer, unchanged, remembering its intermediate results."""

        def canonical_request(self, request):
            cr = super().canonical_request(request)
            self.last_cr = cr
            return cr

        def string_to_sign(self, request, canonical_request):
            sts = super().string_to_sign(request, canonical_request)
            self.last_sts = sts
            return sts

    return Recording


S3Auth = _recording(botocore.auth.S3SigV4Auth)
S3QueryAuth = _recording(botocore.auth.S3SigV4QueryAuth)
CONFIG_SIGNED = botocore.config.Config(s3={"payload_signing_enabled": True})
CONFIG_UNSIGNED = botocore.config.Config(s3={"payload_signing_enabled": False})


def build_url(case):
    """The URL botocore's S3 client would build for this request."""
    path = percent_encode(case["path"], safe="/~")
    parts = []
    for name, value in case["params"]:
        if value is None:
            parts.append(percent_encode(name))  # from the requestUri, e.g. "?uploads"
        else:
            parts.append("%s=%s" % (percent_encode(name), percent_encode(value)))
    url = "%s://%s%s" % (case["scheme"], case["netloc"], path)
    if parts:
        url += "?" + "&".join(parts)
    return url


def botocore_sign(case):
    creds = botocore.credentials.Credentials(case["access_key"], case["secret_key"],
                                             case["token"])
    _Clock.now = EPOCH + datetime.timedelta(seconds=case["now"])
    req = botocore.awsrequest.AWSRequest(method=case["method"], url=build_url(case),
                                         data=bytes.fromhex(case["body_hex"]))
    for name, value in case["headers"]:
        req.headers[name] = value  # HTTPHeaders appends: repeats are kept in order
    if case["mode"] == "presign":
        auth = S3QueryAuth(creds, case["service"], case["region"], expires=case["expires"])
        auth.add_auth(req)
        return {"canonical_request": auth.last_cr, "string_to_sign": auth.last_sts,
                "url": req.url}
    req.context["client_config"] = CONFIG_SIGNED if case["payload_signed"] else CONFIG_UNSIGNED
    auth = S3Auth(creds, case["service"], case["region"])
    auth.add_auth(req)
    return {"canonical_request": auth.last_cr, "string_to_sign": auth.last_sts,
            "authorization": req.headers["Authorization"],
            "amz_date": req.headers["X-Amz-Date"]}


# --- comparison -------------------------------------------------------------------


def strip_default_port(scheme, netloc):
    default = ":443" if scheme == "https" else ":80"
    return netloc[:-len(default)] if netloc.endswith(default) else netloc


def url_parts(url):
    p = urlsplit(url)
    pairs = sorted(p.query.split("&")) if p.query else []
    return p.scheme, p.netloc, p.path, pairs, p.fragment


def compare(case, mine, theirs):
    """Returns a list of differences (empty when identical)."""
    diffs = []
    if mine.get("status") != 0:
        return ["r2bridge refused a valid request: status %s: %s"
                % (mine.get("status"), mine.get("error"))]
    for k in ("canonical_request", "string_to_sign", "authorization", "amz_date"):
        if k in theirs and mine.get(k) != theirs[k]:
            diffs.append(k)
    if case["mode"] == "presign":
        ms, mn, mp, mq, mf = url_parts(mine.get("url", ""))
        ts, tn, tp, tq, tf = url_parts(theirs["url"])
        if ms != ts or mp != tp or mf != tf or mf:
            diffs.append("url scheme/path")
        if mn != case["host"] or strip_default_port(ts, tn) != case["host"]:
            diffs.append("url host")
        if mq != tq:
            diffs.append("url query")
    return diffs


def side_by_side(a, b, width=78):
    la, lb = a.split("\n"), b.split("\n")
    out = []
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else ""
        y = lb[i] if i < len(lb) else ""
        mark = "  " if x == y else "!="
        out.append("  %-*s %s %s" % (width, x, mark, y))
    return "\n".join(out)


def report_failure(case, mine, theirs, diffs):
    shown = {k: v for k, v in case.items() if k != "body_hex"}
    print("FAIL case %d: %s" % (case["id"], ", ".join(diffs)))
    print("  case: " + json.dumps(shown, ensure_ascii=False))
    print("  canonical request, r2bridge (left) vs botocore (right):")
    print(side_by_side(mine.get("canonical_request", "<none>"), theirs["canonical_request"]))
    for k in ("string_to_sign", "authorization", "url"):
        if k in theirs and mine.get(k) != theirs[k]:
            print("  %s r2bridge: %r" % (k, mine.get(k)))
            print("  %s botocore: %r" % (k, theirs[k]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", required=True, help="path to sigv4_diff_driver")
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--show", type=int, default=5, help="failures to print in full")
    args = ap.parse_args()
    if args.cases < 0:
        ap.error("--cases must be >= 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 32)
    print("sigv4_diff: seed %d (rerun with --seed %d), botocore %s, %s"
          % (seed, seed, botocore.__version__, sys.executable))
    sys.stdout.flush()
    install_clock()
    rng = random.Random(seed)
    cases = gen_cases(rng, args.cases)

    driver_in = []
    for c in cases:
        d = {k: v for k, v in c.items() if k not in ("netloc", "body_hex", "payload_signed")}
        driver_in.append(json.dumps(d, ensure_ascii=False))
    try:
        # R2B_TEST_WRAPPER: scripts/test --valgrind runs the driver under valgrind
        wrapper = shlex.split(os.environ.get("R2B_TEST_WRAPPER", ""))
        proc = subprocess.run(wrapper + [args.driver], input="".join(l + "\n" for l in driver_in).encode("utf-8"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as e:
        print("sigv4_diff: cannot run driver '%s': %s" % (args.driver, e), file=sys.stderr)
        print("0 passed, %d failed" % args.cases)
        return 2
    results = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            r = json.loads(line)
            results[r["id"]] = r
        except (ValueError, KeyError, TypeError):
            print("sigv4_diff: bad line from the driver: %r" % line[:200])
    if proc.returncode != 0:
        print("sigv4_diff: driver exited with status %d" % proc.returncode)
        sys.stdout.write(proc.stderr.decode("utf-8", "replace")[-4000:])

    passed = failed = 0
    for c in cases:
        theirs = botocore_sign(c)
        mine = results.get(c["id"])
        diffs = ["no answer from the driver"] if mine is None else compare(c, mine, theirs)
        if diffs:
            failed += 1
            if failed <= args.show:
                report_failure(c, mine or {}, theirs, diffs)
        else:
            passed += 1
    if proc.returncode != 0 and failed == 0:
        failed = 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
