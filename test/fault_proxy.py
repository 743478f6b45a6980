#!/usr/bin/env python3
"""fault_proxy.py: a loopback HTTP/1.1 reverse proxy that injects S3 faults.

Sits between r2bridge and an S3 server (tests only). Requests are forwarded
byte for byte: the raw request head (Host included) and body go upstream
unchanged, so SigV4 signatures stay valid (the client signed the Host it
sent, and the server verifies the Host it receives). Each client request
gets a fresh upstream connection, so a stale upstream connection can never
be mistaken for a fault; the client side is keep-alive.

Faults are rules: "the next COUNT requests matching METHOD / PATH / QUERY get
FAULT". Rules come from --rule on the command line or from the control
endpoint, which the proxy answers itself and never forwards:

  GET /__fault/set?fault=F[&method=M][&path=S][&query=S][&param=N=V]
                  [&count=N][&skip=N][&stall=SECONDS][&at=BYTES]
                                                          add a rule
  GET /__fault/clear                                      drop all rules
  GET /__fault/reset                                      rules and counters
  GET /__fault/stats                                      JSON counters + log
  GET /__fault/count[?method=M][&path=S][&query=S][&param=N=V][&fault=F]
                   [&what=conns]      matching requests (what=conns: the
                                      number of connections they came on)

  method  exact, case-insensitive; path/query: substrings of the request
  target's path / query string; param: an exact query parameter "name=value"
  (or just "name"); count: -1 for every matching request (default 1); skip:
  let that many matching requests pass first; at: for the *-mid-* faults, the
  body bytes let through before the cut (default: half the body).

Faults (F):
  500                 500 InternalError
  503 | slowdown      503 SlowDown
  429                 429 TooManyRequests
  400-timeout         400 RequestTimeout
  403                 403 AccessDenied
  404                 404 NoSuchKey (no body on HEAD)
  reset-before-body   read the request head, then reset the connection
  reset-mid-body      read about half of the request body, then reset
  reset-after-body    read the whole request, then reset without answering
  reset-mid-response  forward, relay the head and about half of the response
                      body, then reset
  stall               read the whole request, answer nothing until the client
                      gives up or `stall` seconds pass (default --stall), close
  stall-mid-response  forward, relay the head and about half of the body, stall
  truncated-xml       forward, then relay the body cut in half (Content-Length
                      fixed up: well-formed HTTP, malformed XML)
  bad-etag            answer 200 with a wrong ETag without forwarding
  reset-after-forward forward the request (the server acts on it), read the
                      whole answer, then reset the client without a byte of it:
                      the write happened but the client cannot know
  stall-after-forward the same, but say nothing until the client gives up

Prints the listening port on stdout when ready; stops on SIGTERM/SIGINT.
Listens on 127.0.0.1 only. Python 3.9+ standard library only.
"""

import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

MAX_HEAD_BYTES = 64 * 1024  # a request or response head larger than this is refused
MAX_BUFFERED_BODY_BYTES = 16 * 1024 * 1024  # truncated-xml reads the body whole
MAX_LOG_ENTRIES = 10000
IO_CHUNK = 64 * 1024
UPSTREAM_TIMEOUT_S = 60.0
CLIENT_IDLE_TIMEOUT_S = 300.0

FAULTS = {
    "500", "503", "slowdown", "429", "400-timeout", "403", "404",
    "reset-before-body", "reset-mid-body", "reset-after-body", "reset-mid-response",
    "stall", "stall-mid-response", "truncated-xml", "bad-etag",
    "reset-after-forward", "stall-after-forward",
}

# Canned answers: status, reason, S3 error code, message.
CANNED = {
    "500": (500, "Internal Server Error", "InternalError",
            "We encountered an internal error. Please try again."),
    "503": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "429": (429, "Too Many Requests", "TooManyRequests", "Please reduce your request rate."),
    "400-timeout": (400, "Bad Request", "RequestTimeout",
                    "Your socket connection to the server was not read from or written to "
                    "within the timeout period."),
    "403": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "404": (404, "Not Found", "NoSuchKey", "The specified key does not exist."),
}
CANNED["slowdown"] = CANNED["503"]

WRONG_ETAG = '"00000000000000000000000000000bad"'


class ProtocolError(Exception):
    pass


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        data = self.sock.recv(IO_CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self):
        """Bytes up to and including the blank line; None on EOF before any byte."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[: i + 4])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ProtocolError("head too large")
            if not self._fill():
                if self.buf:
                    raise ProtocolError("connection closed inside a head")
                return None

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[: i + 2])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > MAX_HEAD_BYTES:
                raise ProtocolError("line too long")
            if not self._fill():
                raise ProtocolError("connection closed inside a chunked body")

    def read_some(self, n):
        """Up to n bytes (at least 1); b'' at EOF."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_exact(self, n):
        out = bytearray()
        while len(out) < n:
            part = self.read_some(n - len(out))
            if not part:
                raise ProtocolError("connection closed inside a body")
            out += part
        return bytes(out)


class Head:
    """A parsed request or response head; `raw` is kept to forward as is."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].decode("latin-1").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if ":" not in line:
                raise ProtocolError("bad header line")
            name, value = line.split(":", 1)
            self.headers.append((name.strip(), value.strip()))

    def get(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def content_length(self):
        v = self.get("Content-Length")
        if v is None:
            return None
        if not v.isdigit():
            raise ProtocolError("bad Content-Length")
        return int(v)

    def chunked(self):
        te = self.get("Transfer-Encoding")
        return te is not None and "chunked" in te.lower()


def rst(sock):
    """Close with a TCP reset (SO_LINGER 0), not an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def close_quietly(sock):
    if sock is None:
        return
    try:
        sock.close()
    except OSError:
        pass


class Rule:
    def __init__(self, params, default_stall):
        self.fault = params.get("fault", "")
        if self.fault not in FAULTS:
            raise ValueError("unknown fault %r" % self.fault)
        self.method = params.get("method", "").upper()
        self.path = params.get("path", "")
        self.query = params.get("query", "")
        self.param = params.get("param", "")
        self.count = int(params.get("count", "1"))
        self.skip = int(params.get("skip", "0"))
        self.stall = float(params.get("stall", default_stall))
        self.at = int(params["at"]) if params.get("at") else None
        self.applied = 0

    def matches(self, method, path, query):
        return request_matches(method, path, query, self.method, self.path, self.query,
                               self.param)

    def describe(self):
        return {"fault": self.fault, "method": self.method, "path": self.path,
                "query": self.query, "param": self.param, "count": self.count,
                "skip": self.skip, "stall": self.stall, "at": self.at,
                "applied": self.applied}


def request_matches(method, path, query, want_method, want_path, want_query, want_param):
    if want_method and method.upper() != want_method.upper():
        return False
    if want_path and want_path not in path:
        return False
    if want_query and want_query not in query:
        return False
    if want_param:
        pairs = query.split("&") if query else []
        if "=" in want_param:
            if want_param not in pairs:
                return False
        elif not any(p == want_param or p.startswith(want_param + "=") for p in pairs):
            return False
    return True


class State:
    """Rules and counters, shared by all connection threads."""

    def __init__(self, default_stall):
        self.lock = threading.Lock()
        self.default_stall = default_stall
        self.rules = []
        self.reset_counters()

    def reset_counters(self):
        self.total = 0
        self.connections = 0
        self.by_method = {}
        self.by_fault = {}
        self.log = []

    def add_rule(self, params):
        rule = Rule(params, self.default_stall)
        with self.lock:
            self.rules.append(rule)
            return len(self.rules) - 1

    def choose(self, method, path, query, target, conn_id):
        """Records the request and returns the Rule to apply, or None."""
        with self.lock:
            chosen = None
            for rule in self.rules:
                if rule.count == 0 or not rule.matches(method, path, query):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    break  # this one passes untouched
                if rule.count > 0:
                    rule.count -= 1
                rule.applied += 1
                chosen = rule
                break
            fault = chosen.fault if chosen else "forward"
            self.total += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1
            self.by_fault[fault] = self.by_fault.get(fault, 0) + 1
            if len(self.log) < MAX_LOG_ENTRIES:
                self.log.append({"method": method, "target": target, "fault": fault,
                                 "conn": conn_id, "time": round(time.time(), 3)})
            return chosen

    def new_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def stats(self):
        with self.lock:
            return {"total": self.total, "connections": self.connections,
                    "by_method": dict(self.by_method), "by_fault": dict(self.by_fault),
                    "rules": [r.describe() for r in self.rules], "requests": list(self.log)}

    def count(self, params):
        """Matching requests, or with what=conns the connections they came on."""
        with self.lock:
            n = 0
            conns = set()
            for e in self.log:
                path, _, query = e["target"].partition("?")
                if not request_matches(e["method"], path, query, params.get("method", ""),
                                       params.get("path", ""), params.get("query", ""),
                                       params.get("param", "")):
                    continue
                if "fault" in params and e["fault"] != params["fault"]:
                    continue
                n += 1
                conns.add(e["conn"])
            return len(conns) if params.get("what") == "conns" else n


class Proxy:
    def __init__(self, upstream_host, upstream_port, state, verbose):
        self.upstream = (upstream_host, upstream_port)
        self.state = state
        self.verbose = verbose
        self.stop = threading.Event()

    def say(self, msg):
        if self.verbose:
            sys.stderr.write("fault_proxy: %s\n" % msg)
            sys.stderr.flush()

    # --- one client connection ------------------------------------------------------

    def serve(self, sock):
        conn_id = self.state.new_connection()
        sock.settimeout(CLIENT_IDLE_TIMEOUT_S)
        reader = Reader(sock)
        try:
            while not self.stop.is_set():
                raw = reader.read_head()
                if raw is None:
                    break
                head = Head(raw)
                parts = head.start.split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    raise ProtocolError("bad request line %r" % head.start[:100])
                method, target = parts[0], parts[1]
                if target.startswith("/__fault/"):
                    self.drain_request_body(reader, head)
                    self.control(sock, target)
                    continue
                if not self.handle(sock, reader, head, method, target, conn_id):
                    break  # the connection was reset, stalled or must end
                if head.get("Connection") and head.get("Connection").lower() == "close":
                    break
        except (OSError, ProtocolError) as e:
            self.say("connection %d: %s" % (conn_id, e))
        close_quietly(sock)

    def handle(self, sock, reader, head, method, target, conn_id):
        """Serves one request; False when the client connection is gone."""
        path, _, query = target.partition("?")
        rule = self.state.choose(method, path, query, target, conn_id)
        fault = rule.fault if rule else "forward"
        self.say("conn %d: %s %s -> %s" % (conn_id, method, target[:200], fault))
        if (head.get("Expect") or "").lower() == "100-continue" and fault != "reset-before-body":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if fault in CANNED:
            self.drain_request_body(reader, head)
            self.send_canned(sock, method, CANNED[fault])
            return True
        if fault == "bad-etag":
            self.drain_request_body(reader, head)
            sock.sendall(("HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: 0\r\n"
                          "x-amz-request-id: fault-proxy\r\n\r\n" % WRONG_ETAG).encode())
            return True
        if fault == "reset-before-body":
            rst(sock)
            return False
        if fault == "reset-mid-body":
            length = head.content_length()
            if length:
                reader.read_exact(min(length, rule.at) if rule.at is not None
                                  else max(1, length // 2))
            elif head.chunked():
                reader.read_some(IO_CHUNK)
            rst(sock)
            return False
        if fault == "reset-after-body":
            self.drain_request_body(reader, head)
            rst(sock)
            return False
        if fault == "stall":
            self.drain_request_body(reader, head)
            self.stall(sock, rule.stall)
            return False
        return self.forward(sock, reader, head, method, fault, rule)

    # --- forwarding -----------------------------------------------------------------

    def forward(self, sock, reader, head, method, fault, rule):
        up = None
        try:
            up = socket.create_connection(self.upstream, timeout=UPSTREAM_TIMEOUT_S)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up.sendall(head.raw)
            self.copy_body(reader, up, head, None)
            up_reader = Reader(up)
            while True:
                raw = up_reader.read_head()
                if raw is None:
                    raise ProtocolError("upstream closed without answering")
                resp = Head(raw)
                status = self.status_of(resp)
                if 100 <= status < 200 and status != 101:
                    continue  # interim: the client got its own 100 from us if it asked
                break
        except (OSError, ProtocolError) as e:
            # the server is gone or broke the protocol: the client sees a 502
            self.say("upstream: %s" % e)
            close_quietly(up)
            self.send_canned(sock, method, (502, "Bad Gateway", "BadGateway",
                                            "fault_proxy: upstream failed: %s" % e), close=True)
            return False  # part of the request body may still be unread
        try:
            no_body = method == "HEAD" or status in (204, 304)
            length = None if no_body else resp.content_length()
            chunked = not no_body and resp.chunked()
            until_close = not no_body and not chunked and length is None

            if fault in ("reset-after-forward", "stall-after-forward"):
                if not no_body:
                    self.drain_request_body(up_reader, resp)  # the answer, thrown away
                close_quietly(up)
                if fault == "stall-after-forward":
                    self.stall(sock, rule.stall)
                else:
                    rst(sock)
                return False

            if fault == "truncated-xml":
                body = b"" if no_body else self.read_whole_body(up_reader, resp)
                cut = body[: len(body) // 2] if body else b"<?xml version=\"1.0\"?><ListBucket"
                out = [resp.start]
                for n, v in resp.headers:
                    if n.lower() not in ("content-length", "transfer-encoding"):
                        out.append("%s: %s" % (n, v))
                out.append("Content-Length: %d" % len(cut))
                sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + cut)
                close_quietly(up)
                return not until_close

            sock.sendall(resp.raw)
            if no_body:
                close_quietly(up)
                return True
            if fault in ("reset-mid-response", "stall-mid-response"):
                if rule.at is not None:
                    limit = rule.at
                elif length is not None:
                    limit = max(1, length // 2) if length > 0 else 0
                else:
                    limit = 1024
                self.copy_body(up_reader, sock, resp, limit)
                close_quietly(up)
                if fault == "stall-mid-response":
                    self.stall(sock, rule.stall)
                else:
                    rst(sock)
                return False
            self.copy_body(up_reader, sock, resp, None)
            close_quietly(up)
            if until_close:
                close_quietly(sock)  # the body ended with the connection: say so
                return False
            return True
        except (OSError, ProtocolError) as e:
            self.say("relaying response: %s" % e)
            close_quietly(up)
            rst(sock)
            return False

    @staticmethod
    def status_of(resp):
        parts = resp.start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError("bad status line %r" % resp.start[:100])
        return int(parts[1])

    def copy_body(self, reader, dst, head, limit):
        """Relays a body framed as `head` says; stops after `limit` raw bytes if given."""
        sent = 0

        def send(data):
            nonlocal sent
            if limit is not None and sent + len(data) > limit:
                data = data[: limit - sent]
            if data:
                dst.sendall(data)
                sent += len(data)
            return limit is None or sent < limit

        length = head.content_length()
        if head.chunked():
            while True:
                line = reader.read_line()
                if not send(line):
                    return
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, then the blank line
                        t = reader.read_line()
                        if not send(t) or t == b"\r\n":
                            return
                left = size + 2
                while left:
                    data = reader.read_some(min(left, IO_CHUNK))
                    if not data:
                        raise ProtocolError("closed inside a chunk")
                    left -= len(data)
                    if not send(data):
                        return
        elif length is not None:
            left = length
            while left:
                data = reader.read_some(min(left, IO_CHUNK))
                if not data:
                    raise ProtocolError("closed inside a body")
                left -= len(data)
                if not send(data):
                    return
        elif not head.start.startswith("HTTP/"):
            return  # a request without Content-Length or chunked has no body
        else:
            while True:  # a response delimited by the connection's end
                data = reader.read_some(IO_CHUNK)
                if not data or not send(data):
                    return

    def read_whole_body(self, reader, resp):
        class Sink:
            def __init__(self):
                self.data = bytearray()

            def sendall(self, b):
                if len(self.data) + len(b) > MAX_BUFFERED_BODY_BYTES:
                    raise ProtocolError("body too large to buffer")
                self.data += b

        sink = Sink()
        if resp.chunked():
            while True:
                size = int(reader.read_line().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while reader.read_line() != b"\r\n":
                        pass
                    break
                sink.sendall(reader.read_exact(size))
                reader.read_exact(2)
        else:
            self.copy_body(reader, sink, resp, None)
        return bytes(sink.data)

    def drain_request_body(self, reader, head):
        class Null:
            @staticmethod
            def sendall(_):
                pass

        self.copy_body(reader, Null, head, None)

    def send_canned(self, sock, method, canned, close=False):
        status, reason, code, message = canned
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                "<Message>%s</Message><RequestId>fault-proxy</RequestId></Error>"
                % (code, message)).encode()
        if method == "HEAD":
            body = b""  # S3 sends no error document for HEAD
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                "x-amz-request-id: fault-proxy\r\n%s\r\n"
                % (status, reason, len(body), "Connection: close\r\n" if close else ""))
        sock.sendall(head.encode() + body)

    def stall(self, sock, seconds):
        """Says nothing until the client hangs up or `seconds` pass, then closes."""
        deadline = time.monotonic() + seconds
        sock.settimeout(0.2)
        try:
            while not self.stop.is_set():
                if time.monotonic() >= deadline:
                    break
                try:
                    if not sock.recv(IO_CHUNK):
                        break  # the client gave up
                except socket.timeout:
                    continue
        except OSError:
            pass
        close_quietly(sock)

    # --- control endpoint -----------------------------------------------------------

    def control(self, sock, target):
        path, _, query = target.partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        status, body = 200, None
        try:
            if path == "/__fault/set":
                body = {"ok": True, "rule": self.state.add_rule(params)}
            elif path == "/__fault/clear":
                with self.state.lock:
                    self.state.rules = []
                body = {"ok": True}
            elif path == "/__fault/reset":
                with self.state.lock:
                    self.state.rules = []
                    self.state.reset_counters()
                body = {"ok": True}
            elif path == "/__fault/stats":
                body = self.state.stats()
            elif path == "/__fault/count":
                body = self.state.count(params)
            else:
                status, body = 404, {"ok": False, "error": "no such control endpoint"}
        except ValueError as e:
            status, body = 400, {"ok": False, "error": str(e)}
        data = (json.dumps(body) + "\n").encode()
        sock.sendall(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n"
                      % (status, "OK" if status == 200 else "Error", len(data))).encode() + data)


def parse_upstream(s):
    if "://" in s:
        u = urllib.parse.urlsplit(s)
        if u.scheme != "http":
            raise ValueError("only http:// upstreams are supported")
        return u.hostname, u.port or 80
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main():
    ap = argparse.ArgumentParser(description="Loopback HTTP/1.1 proxy injecting S3 faults.")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of the S3 server")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--rule", action="append", default=[],
                    help="a rule as a query string, e.g. 'fault=503&method=PUT&count=2'")
    ap.add_argument("--stall", type=float, default=10.0,
                    help="seconds a stall lasts at most (default 10)")
    ap.add_argument("--rcvbuf", type=int, default=256 * 1024,
                    help="receive buffer of client connections (default 256 KiB; 0: the "
                         "system's): keeps little of a request body in flight, so that a "
                         "cut mid-body comes while the client is still sending")
    ap.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args()

    try:
        host, port = parse_upstream(args.upstream)
    except ValueError as e:
        ap.error("bad --upstream: %s" % e)
    state = State(args.stall)
    for r in args.rule:
        try:
            state.add_rule(dict(urllib.parse.parse_qsl(r, keep_blank_values=True)))
        except ValueError as e:
            ap.error("bad --rule %r: %s" % (r, e))
    proxy = Proxy(host, port, state, args.verbose)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.rcvbuf > 0:  # set before listen(): accepted sockets inherit it
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(64)
    lsock.settimeout(0.2)

    def on_signal(signum, frame):
        proxy.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sys.stdout.write("%d\n" % lsock.getsockname()[1])
    sys.stdout.flush()
    while not proxy.stop.is_set():
        try:
            csock, _ = lsock.accept()
        except socket.timeout:
            continue
        except OSError:
            if proxy.stop.is_set():
                break
            raise
        csock.settimeout(None)
        csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=proxy.serve, args=(csock,), daemon=True).start()
    lsock.close()
    proxy.say("stopped after %d requests" % state.total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
