#!/usr/bin/env python3
"""botocore side of the presign benchmark (driven by scripts/bench/presign).

Subcommands:
  keys N              write N deterministic Mastodon-like object keys, one a
                      line, to stdout (some with UTF-8 and spaces)
  urls FILE T COUNT   print botocore's presigned GET URL for the first COUNT
                      keys of FILE at the fixed time T (seconds since the
                      epoch), one a line, for the byte-for-byte comparison
  bench FILE          presigned GET URLs per second, real time, as the median
                      of --rounds rounds of about --seconds seconds each

Credentials come from R2B_BENCH_ACCESS_KEY / R2B_BENCH_SECRET_KEY; the secret
is never printed. Endpoint and bucket are options, the region is "auto".
"""
import argparse
import datetime
import os
import random
import statistics
import sys
import time
from unittest import mock

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config

EXPIRES_S = 300

# Words for the non-ASCII keys: precomposed accents, CJK, emoji, spaces.
ODD_NAMES = [
    "café au lait",
    "ünïcödé",
    "日本語 ファイル",
    "emoji 🐘 mastodon",
    "naïve résumé",
    "a  b   c",
    "tilde~plus+equals=amp&",
    "percent%20literal",
]
EXTS = ["jpg", "png", "webp", "mp4", "gif"]
STYLES = ["original", "small"]


def gen_keys(n):
    """Deterministic key set: the same N keys on every run and machine."""
    rnd = random.Random(20240506)
    keys = []
    for i in range(n):
        style = rnd.choice(STYLES)
        ext = rnd.choice(EXTS)
        digest = "%016x" % rnd.getrandbits(64)
        a, b, c = 109 + rnd.randrange(3), rnd.randrange(1000), rnd.randrange(1000)
        kind = i % 20
        if kind == 7:  # 5%: a user-visible name with UTF-8 and spaces; the
            # first 160 keys hold every ODD_NAMES entry, for the comparison
            name = ODD_NAMES[(i // 20) % len(ODD_NAMES)]
            keys.append("custom_emojis/images/%03d/%03d/%03d/%s/%s %s.%s"
                        % (a, b, c, style, name, digest[:6], ext))
        elif kind == 13:
            keys.append("accounts/avatars/%03d/%03d/%03d/%s/%s.%s"
                        % (a, b, c, style, digest, ext))
        elif kind == 17:
            keys.append("cache/media_attachments/files/%03d/%03d/%03d/%s/%s.%s"
                        % (a, b, c, style, digest, ext))
        else:
            keys.append("media_attachments/files/%03d/%03d/%03d/%s/%s.%s"
                        % (a, b, c, style, digest, ext))
    return keys


def read_keys(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def make_client(endpoint):
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="auto",
        aws_access_key_id=os.environ["R2B_BENCH_ACCESS_KEY"],
        aws_secret_access_key=os.environ["R2B_BENCH_SECRET_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def presign(client, bucket, key):
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=EXPIRES_S)


def fixed_clock(t):
    """Freezes botocore's signing clock at t, the way botocore's tests do.

    botocore >= 1.33 reads the time through botocore.auth.get_current_datetime;
    older releases call botocore.auth.datetime.datetime.utcnow().
    """
    when = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).replace(tzinfo=None)
    if hasattr(botocore.auth, "get_current_datetime"):
        return mock.patch("botocore.auth.get_current_datetime", return_value=when)
    fake = mock.MagicMock(wraps=datetime)
    fake.datetime.utcnow.return_value = when
    fake.datetime.strptime = datetime.datetime.strptime
    return mock.patch("botocore.auth.datetime", fake)


def cmd_urls(args):
    client = make_client(args.endpoint)
    keys = read_keys(args.keys)[: args.count]
    out = []
    with fixed_clock(args.time):
        for k in keys:
            out.append(presign(client, args.bucket, k))
    sys.stdout.write("\n".join(out) + "\n")


def cmd_bench(args):
    client = make_client(args.endpoint)
    keys = read_keys(args.keys)
    n = len(keys)
    for i in range(min(args.warmup, n)):
        presign(client, args.bucket, keys[i])
    rates = []
    i = 0
    for r in range(args.rounds):
        done = 0
        t0 = time.perf_counter()
        deadline = t0 + args.seconds
        while True:
            for _ in range(100):  # check the clock once per 100 presigns
                presign(client, args.bucket, keys[i])
                i = (i + 1) % n
            done += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        rate = done / (now - t0)
        rates.append(rate)
        print("botocore round %d: %.1f presigns/s (%d in %.3f s)"
              % (r + 1, rate, done, now - t0), file=sys.stderr)
    print("botocore_version=%s" % botocore.__version__)
    print("python_version=%s" % sys.version.split()[0])
    print("botocore_rate=%.1f" % statistics.median(rates))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keys")
    k.add_argument("n", type=int)
    for name in ("urls", "bench"):
        s = sub.add_parser(name)
        s.add_argument("keys")
        if name == "urls":
            s.add_argument("time", type=int)
            s.add_argument("count", type=int)
        s.add_argument("--endpoint", required=True)
        s.add_argument("--bucket", required=True)
        s.add_argument("--seconds", type=float, default=2.0)
        s.add_argument("--rounds", type=int, default=5)
        s.add_argument("--warmup", type=int, default=500)
    args = p.parse_args()
    if args.cmd == "keys":
        sys.stdout.write("\n".join(gen_keys(args.n)) + "\n")
    elif args.cmd == "urls":
        cmd_urls(args)
    else:
        cmd_bench(args)


if __name__ == "__main__":
    main()
