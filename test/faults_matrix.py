#!/usr/bin/env python3
"""faults_matrix.py: `r2bridge upload` and `r2bridge migrate` against every
fault test/fault_proxy.py injects, once and always.

For each fault (a row) and each command (upload, migrate), two runs through
the proxy, each with its own keys and a fresh SQLite manifest:

  once    the first matching request gets the fault, the next ones pass:
          the run must succeed (exit 0) with every object verified
  always  every matching request gets it: the run must fail with exit 75

and in every run, whatever the exit code, the manifest must claim nothing
false: every `stored` record names an object that the server holds with the
record's size and ETag and the right bytes (sha256 of the stored style for
upload, of the source file for migrate), read back by an independent client
(boto3/botocore straight from the server, never through the proxy). Also
checked: one-line errors, no sanitizer report, no temp file left in
R2B_TMPDIR, no multipart upload left on the server that the client knew of.

Prints "ok N - ..." / "not ok N - ..." lines and "N passed, M failed"; writes
the results table (markdown) to --table, and with --doc FILE replaces the
table between the markers in FILE (docs/reliability.md).

Needs the S3 environment of scripts/s3-local (scripts/test exports it),
python3 with boto3 or botocore, and ImageMagick's `convert`. Fails, never
skips, without them.
  test/faults_matrix.py --bin path/to/r2bridge [--only FAULT] [--doc docs/reliability.md]
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
RETRY_ONCE = 2    # S3_RETRY_LIMIT for the "once" runs
RETRY_ALWAYS = 1  # and for the "always" runs (2 attempts per request)
READ_TIMEOUT = 1  # S3_READ_TIMEOUT, seconds: stalls last up to STALL
STALL = 8
RUN_LIMIT = 60    # seconds before a hung r2bridge run is killed (a failure)
PART = 5 * 1024 * 1024
PARALLEL = 4      # cases run at a time

# (id, fault, rule filter, what it means). The rule filter selects the
# requests: PUT = PutObject and UploadPart, Create = POST ?uploads,
# Complete = POST ?uploadId. Rows on multipart requests run `upload` with a
# low S3_MULTIPART_THRESHOLD so that its styles go multipart too.
ROWS = [
    ("500", "500", "method=PUT", "500 InternalError"),
    ("503", "503", "method=PUT", "503 SlowDown"),
    ("429", "429", "method=PUT", "429 TooManyRequests"),
    ("400-timeout", "400-timeout", "method=PUT", "400 RequestTimeout"),
    ("reset-before-body", "reset-before-body", "method=PUT",
     "connection reset after the request head"),
    ("reset-mid-body", "reset-mid-body", "method=PUT",
     "connection reset halfway through the request body"),
    ("reset-after-body", "reset-after-body", "method=PUT",
     "connection reset after the whole request, not forwarded"),
    ("reset-after-forward", "reset-after-forward", "method=PUT",
     "forwarded (the server stores it), then reset: the answer is lost"),
    ("stall", "stall", "method=PUT", "no answer past the read timeout, not forwarded"),
    ("stall-after-forward", "stall-after-forward", "method=PUT",
     "forwarded (stored), then no answer past the read timeout"),
    ("bad-etag", "bad-etag", "method=PUT", "200 with a wrong ETag, not forwarded"),
    ("create-503", "503", "method=POST&param=uploads", "CreateMultipartUpload: 503 SlowDown"),
    ("create-truncated-xml", "truncated-xml", "method=POST&param=uploads",
     "CreateMultipartUpload answer with its XML cut in half"),
    ("complete-500", "500", "method=POST&param=uploadId", "CompleteMultipartUpload: 500"),
    # the server completes the upload every time, only the answer is lost:
    # r2bridge must find the object (HEAD, multipart ETag of its parts) and succeed
    ("complete-truncated-xml", "truncated-xml", "method=POST&param=uploadId",
     "CompleteMultipartUpload answer with its XML cut in half", 0),
    ("complete-reset-mid-response", "reset-mid-response", "method=POST&param=uploadId",
     "CompleteMultipartUpload: reset halfway through the answer", 0),
    ("complete-stall-mid-response", "stall-mid-response", "method=POST&param=uploadId",
     "CompleteMultipartUpload: half the answer, then a stall", 0),
]
ROWS = [r if len(r) == 5 else r + (75,) for r in ROWS]  # the exit an "always" run must give

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|Segmentation|core dumped")


def fail_early(msg):
    print("faults_matrix.py: %s" % msg, file=sys.stderr)
    print("not ok 1 - %s" % msg)
    print("0 passed, 1 failed")
    sys.exit(1)


def s3_client():
    from botocore.config import Config

    args = dict(endpoint_url=os.environ["S3_ENDPOINT"], region_name="auto",
                aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))
    try:
        import boto3
    except ImportError:
        import botocore.session

        return botocore.session.get_session().create_client("s3", **args)
    return boto3.client("s3", **args)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Proxy:
    def __init__(self, upstream, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fault_proxy.py"), "--upstream", upstream,
             "--stall", str(STALL)], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            fail_early("the fault proxy did not start (see %s)" % log_path)
        self.url = "http://127.0.0.1:%s" % line

    def ctl(self, what):
        with urllib.request.urlopen("%s/__fault/%s" % (self.url, what), timeout=10) as r:
            return json.loads(r.read().decode())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Matrix:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.bin)
        self.w = tempfile.mkdtemp(prefix="r2b-matrix.", dir=os.environ.get("R2B_TEST_TMP"))
        self.out = os.path.join(self.w, "out")
        os.makedirs(self.out)
        self.run_id = "matrix-%d-%d" % (int(time.time()), os.getpid())
        self.bucket = os.environ["S3_BUCKET"]
        self.s3 = s3_client()
        self.proxy = Proxy(os.environ["S3_ENDPOINT"], os.path.join(self.out, "proxy.err"))
        self.n = self.passed = self.failed = 0
        self.results = {}
        self.photo = os.path.join(self.w, "photo.jpg")
        r = subprocess.run(["convert", "-size", "900x700", "plasma:fractal", "-seed", "5",
                            "-quality", "90", self.photo], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(self.photo):
            self.close()
            fail_early("cannot make the test image with ImageMagick's convert: %s" % r.stderr[:300])

    def close(self):
        self.proxy.stop()
        shared = os.environ.get("R2B_TEST_OUTPUTS")
        if shared:  # every captured output, for the suite's final secret scan
            os.makedirs(shared, exist_ok=True)
            with open(os.path.join(shared, "faults_matrix-%d.log" % os.getpid()), "wb") as dst:
                for name in sorted(os.listdir(self.out)):
                    with open(os.path.join(self.out, name), "rb") as src:
                        shutil.copyfileobj(src, dst)
        if os.environ.get("R2B_MATRIX_KEEP"):
            print("# kept %s" % self.w)
        else:
            shutil.rmtree(self.w, ignore_errors=True)

    def check(self, desc, why):
        self.n += 1
        if why:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc))
            for w in why:
                print("#   %s" % w)
        else:
            self.passed += 1
            print("ok %d - %s" % (self.n, desc))
        sys.stdout.flush()

    # --- one run ------------------------------------------------------------------

    def run(self, name, args, env_extra):
        env = dict(os.environ)
        env.update({"S3_ENDPOINT": self.proxy.url, "S3_OVERRIDE_PATH_STYLE": "true",
                    "S3_OPEN_TIMEOUT": "1", "S3_READ_TIMEOUT": str(READ_TIMEOUT),
                    "R2B_MANIFEST": "sqlite://%s" % os.path.join(self.w, name + ".db"),
                    "R2B_TMPDIR": os.path.join(self.w, "tmp-" + name)})
        env.pop("S3_ALIAS_HOST", None)
        env.update(env_extra)
        os.makedirs(env["R2B_TMPDIR"])
        t0 = time.monotonic()
        outp, errp = (os.path.join(self.out, name + ext) for ext in (".out", ".err"))
        with open(outp, "wb") as o, open(errp, "wb") as e:
            try:
                rc = subprocess.run([self.bin] + args, stdout=o, stderr=e, env=env,
                                    timeout=RUN_LIMIT).returncode
            except subprocess.TimeoutExpired:
                rc = "killed"
        with open(outp, errors="replace") as f:
            out = f.read()
        with open(errp, errors="replace") as f:
            err = f.read()
        return rc, out, err, time.monotonic() - t0, env

    # --- what the store and the manifest say --------------------------------------

    def records(self, env):
        path = env["R2B_MANIFEST"][len("sqlite://"):]
        if not os.path.exists(path):
            return []
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            rows = db.execute("SELECT key, bucket, state, size, etag, sha256, source_path"
                              " FROM r2b_objects").fetchall()
        finally:
            db.close()
        return [dict(zip(("key", "bucket", "state", "size", "etag", "sha256", "source"), r))
                for r in rows]

    def read_back(self, bucket, key):
        """(size, etag, sha256) of the object on the server, or None."""
        try:
            o = self.s3.get_object(Bucket=bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        body = o["Body"].read()
        return len(body), o["ETag"].strip('"'), hashlib.sha256(body).hexdigest()

    def false_claims(self, recs, expect_sha):
        """Problems with the `stored` records: each must be on the server, exact."""
        why = []
        for r in recs:
            if r["state"] != "stored":
                continue
            got = self.read_back(r["bucket"], r["key"])
            want = expect_sha(r)
            if got is None:
                why.append("FALSE CLAIM: '%s' is stored in the manifest, absent from '%s'"
                           % (r["key"], r["bucket"]))
            elif got[0] != r["size"] or got[1] != r["etag"] or got[2] != want:
                why.append("FALSE CLAIM: '%s' stored as %s bytes etag %s, the server has %s"
                           " bytes etag %s%s" % (r["key"], r["size"], r["etag"], got[0], got[1],
                                                 "" if got[2] == want else ", other bytes"))
        return why

    def uploads_left(self, prefix):
        n = 0
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix):
            n += len(page.get("Uploads", []))
        return n

    def faulted_run(self, name, fault, sel, prefix, mode, always_rc, args, extra):
        """Arms the fault on the case's prefix, runs r2bridge, applies the common checks;
        returns (rc, out, err, secs, env, why, hits, requests under the prefix)."""
        self.proxy.ctl("set?fault=%s&%s&path=/%s/%s&count=%d"
                       % (fault, sel, self.bucket, prefix, 1 if mode == "once" else -1))
        rc, out, err, secs, env = self.run(name, args, extra)
        why = []
        self.common_checks(rc, err, env, why, 0 if mode == "once" else always_rc)
        hits = self.proxy.ctl("count?fault=%s&path=/%s/%s" % (fault, self.bucket, prefix))
        reqs = self.proxy.ctl("count?path=/%s/%s" % (self.bucket, prefix))
        if hits < 1:
            why.append("the fault was never applied (the case would prove nothing)")
        return rc, out, err, secs, env, why, hits, reqs

    def common_checks(self, rc, err, env, why, want_rc):
        if rc == "killed":
            why.append("did not finish within %d s" % RUN_LIMIT)
        if SANITIZER.search(err):
            why.append("sanitizer or crash report in stderr")
        if rc != want_rc:
            why.append("exit %s, expected %d" % (rc, want_rc))
        left = os.listdir(env["R2B_TMPDIR"])
        if left:
            why.append("temp files left in R2B_TMPDIR: %s" % left[:3])

    # --- the two commands -----------------------------------------------------------

    def upload(self, row, mode):
        rid, fault, sel, _, always_rc = row
        name = "up-%s-%s" % (rid, mode)
        prefix = "%s/%s/" % (self.run_id, name)
        key = prefix + "original/pic.jpg"
        multipart = "param=upload" in sel
        extra = {"S3_RETRY_LIMIT": str(RETRY_ONCE if mode == "once" else RETRY_ALWAYS)}
        if multipart:
            extra["S3_MULTIPART_THRESHOLD"] = "65536"  # both styles go multipart (one part)
        rc, out, err, secs, env, why, hits, reqs = self.faulted_run(
            name, fault, sel, prefix, mode, always_rc,
            ["upload", self.photo, "--visibility", "public", "--account", "7", "--key", key,
             "--json"], extra)
        recs = self.records(env)
        why += self.false_claims(recs, lambda r: r["sha256"])
        stored = sum(1 for r in recs if r["state"] == "stored")
        if rc == 0:
            try:
                styles = json.loads(out)["styles"]
            except (ValueError, KeyError):
                styles = {}
                why.append("exit 0 without the JSON result")
            for s in styles.values():
                got = self.read_back(s["bucket"], s["key"])
                if got is None or got[0] != s["size"] or got[2] != s["sha256"]:
                    why.append("'%s' is not on the server as reported" % s["key"])
            if stored != len(styles) or not styles:
                why.append("%d stored records for %d styles" % (stored, len(styles)))
        else:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if len(lines) != 1:
                why.append("stderr has %d lines, expected one: %r" % (len(lines), err[:300]))
        if not (fault == "truncated-xml" and "param=uploads" in sel):
            left = self.uploads_left(prefix)
            if left:
                why.append("%d multipart upload(s) left on the server" % left)
        first = err.strip().splitlines()[0] if rc != 0 and err.strip() else ""
        return {"rc": rc, "stored": stored, "records": len(recs), "requests": reqs,
                "hits": hits, "secs": round(secs, 1), "error": first[:300]}, why

    def migrate(self, row, mode):
        rid, fault, sel, _, always_rc = row
        name = "mg-%s-%s" % (rid, mode)
        root = os.path.join(self.w, "tree-" + name)
        prefix = "%s/%s/" % (self.run_id, name)
        rnd = random.Random(name)
        files = {"a/original/one.jpg": 120000, "b/small/two.png": 40000,
                 "c/original/big.mp4": PART + 1500000}  # the big one goes multipart: 2 parts
        for rel, size in files.items():
            p = os.path.join(root, prefix, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(rnd.randbytes(size))
        extra = {"S3_RETRY_LIMIT": str(RETRY_ONCE if mode == "once" else RETRY_ALWAYS),
                 "S3_MULTIPART_THRESHOLD": str(PART + 1000000), "R2B_PART_SIZE": str(PART)}
        rc, out, err, secs, env, why, hits, reqs = self.faulted_run(
            name, fault, sel, prefix, mode, always_rc,
            ["migrate", "--from-dir", root, "--jobs", "2", "--json"], extra)
        recs = self.records(env)
        srcs = {r["key"]: os.path.join(root, r["key"]) for r in recs}
        why += self.false_claims(recs, lambda r: sha256_file(srcs[r["key"]]))
        stored = sum(1 for r in recs if r["state"] == "stored")
        try:
            summary = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except ValueError:
            summary = {}
            why.append("no JSON summary on stdout")
        if rc == 0:
            if stored != len(files):
                why.append("exit 0 but %d of %d files stored" % (stored, len(files)))
            for rel in files:
                got = self.read_back(self.bucket, prefix + rel)
                if got is None or got[2] != sha256_file(os.path.join(root, prefix, rel)):
                    why.append("'%s' is not on the server with the file's bytes" % rel)
        elif rc == 75:
            failed = summary.get("files_failed", 0)
            if failed + stored != len(files):
                why.append("%d failed + %d stored != %d files" % (failed, stored, len(files)))
        if not (fault == "truncated-xml" and "param=uploads" in sel):
            left = self.uploads_left(prefix)
            if left:
                why.append("%d multipart upload(s) left on the server" % left)
        reasons = [f.get("reason", "") for f in summary.get("failures", [])]
        return {"rc": rc, "stored": stored, "records": len(recs), "files": len(files),
                "requests": reqs, "hits": hits, "secs": round(secs, 1),
                "error": (reasons[0] if reasons else "")[:300]}, why

    def go(self):
        rows = [r for r in ROWS if not self.a.only or r[0] in self.a.only.split(",")]
        jobs = [(row, cmd, mode) for row in rows for cmd in ("upload", "migrate")
                for mode in ("once", "always")]

        def one(job):
            row, cmd, mode = job
            return (self.upload if cmd == "upload" else self.migrate)(row, mode)

        # the cases are independent (own keys, own manifest, rules filtered by their
        # prefix): a few at a time, since most of a case is waiting on timeouts
        with ThreadPoolExecutor(PARALLEL) as ex:
            for (row, cmd, mode), (res, why) in zip(jobs, ex.map(one, jobs)):
                self.results[(row[0], cmd, mode)] = res
                res["ok"] = not why
                self.check("%s %s, %s: exit %s, %s/%s stored, %d request(s), %d fault(s), %.1f s"
                           % (cmd, row[3], mode, res["rc"], res["stored"], res["records"],
                              res["requests"], res["hits"], res["secs"]), why)
        table = self.table(rows)
        if self.a.table:
            with open(self.a.table, "w") as f:
                f.write(table)
        if self.a.doc:
            self.write_doc(table)

    def secret_check(self):
        """The secret in no captured output of this run (stdout, stderr, the proxy's log)."""
        secret = os.environ["AWS_SECRET_ACCESS_KEY"].encode()
        names = sorted(os.listdir(self.out))
        leaks = []
        total = 0
        for name in names:
            with open(os.path.join(self.out, name), "rb") as f:
                data = f.read()
            total += len(data)
            if secret in data:
                leaks.append(name)
        why = ["the secret appears in %s" % ", ".join(leaks[:5])] if leaks else []
        if len(names) < 2 * self.n:
            why.append("only %d output files for %d runs" % (len(names), self.n))
        self.check("the secret appears in none of the %d captured outputs (%d bytes)"
                   % (len(names), total), why)

    # --- the report -------------------------------------------------------------------

    def cell(self, r):
        if r["rc"] == 0:
            s = "0, %d stored" % r["stored"]
        else:
            s = "%s, %d/%d stored" % (r["rc"], r["stored"], r["records"])
        return s + ("" if r.get("ok") else " **FAILED**")

    def table(self, rows):
        out = ["| fault | request | upload once | upload always | migrate once | migrate always |",
               "|---|---|---|---|---|---|"]
        for rid, fault, sel, desc, _ in rows:
            req = {"method=PUT": "PUT (object, part)", "method=POST&param=uploads": "Create",
                   "method=POST&param=uploadId": "Complete"}[sel]
            cells = [self.cell(self.results[(rid, c, m)]) for c in ("upload", "migrate")
                     for m in ("once", "always")]
            out.append("| %s | %s | %s |" % (desc, req, " | ".join(cells)))
        out.append("")
        out.append("Errors reported by the `always` runs (first line of stderr for upload,"
                   " the first failure's reason for migrate):")
        out.append("")
        for rid, fault, sel, desc, _ in rows:
            for c in ("upload", "migrate"):
                e = self.results[(rid, c, "always")]["error"]
                if e:  # without the run's key prefix, which says nothing
                    e = e.replace("%s/%s/" % (self.bucket, self.run_id), ".../")
                    out.append("- %s, %s: `%s`" % (desc, c, e.replace("`", "'")))
        return "\n".join(out) + "\n"

    def write_doc(self, table):
        begin, end = "<!-- matrix:begin -->", "<!-- matrix:end -->"
        with open(self.a.doc) as f:
            doc = f.read()
        i, j = doc.find(begin), doc.find(end)
        if i < 0 or j < i:
            print("# %s has no %s ... %s markers: not updated" % (self.a.doc, begin, end))
            return
        stamp = ("Generated by `test/faults_matrix.py` on %s: %d cases passed, %d failed.\n\n"
                 % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), self.passed, self.failed))
        with open(self.a.doc, "w") as f:
            f.write(doc[:i + len(begin)] + "\n" + stamp + table + doc[j:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--only", help="comma-separated row ids")
    ap.add_argument("--table", help="write the markdown table here")
    ap.add_argument("--doc", help="replace the table between the markers in this file")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        fail_early("no r2bridge executable at '%s'" % a.bin)
    for v in ("S3_ENDPOINT", "S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(v):
            fail_early("%s is not set: run through scripts/test, or eval \"$(scripts/s3-local "
                       "start)\"" % v)
    try:
        import botocore  # noqa: F401
    except ImportError:
        fail_early("python3 cannot import botocore (apt-get install python3-boto3)")
    if shutil.which("convert") is None:
        fail_early("ImageMagick's convert is not installed")
    start = time.monotonic()
    m = Matrix(a)
    try:
        m.go()
        m.proxy.stop()  # its log is complete now
        m.secret_check()
    finally:
        m.close()
    print("# %d seconds" % (time.monotonic() - start))
    print("%d passed, %d failed" % (m.passed, m.failed))
    sys.exit(0 if m.failed == 0 else 1)


if __name__ == "__main__":
    main()
