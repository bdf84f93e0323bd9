"""A controllable upstream for the resilience suites (stdlib only): several of them form a
cluster, and each can be told, while it runs, to fail in the ways real services do.

Run as a program: `python3 fleet.py PORT NAME [HOST]` (HOST: the address to listen on, default
127.0.0.1; any 127.x.y.z works, for several members on one port behind a DNS name). Every answer carries `x-upstream: NAME` and the
body "NAME\\n". What it does is set by its mode (POST /__mode?key=value&..., sent straight to
the upstream, not through the proxy):

    status=N          answer N instead of 200 (health checks excepted)
    retry_after=S     add Retry-After: S to 429/503 answers
    delay_ms=N        wait N ms before answering
    fail=reset|close  reset (RST) or close (FIN) the connection instead of answering
    fail=mid          send a 200 head announcing 100000 body bytes, 1000 of them, then RST
    health=N          status of GET /healthz (default 200)
    health_delay_ms=N wait N ms before answering GET /healthz
    flap=N            alternate: N requests failing as set, then N answered 200, ...

Per request, a client can ask for failures: `x-fail-first: K` with `x-fail-key: KEY` makes the
first K requests carrying KEY fail (as `x-fail-how: 503|429|<status>|reset|close|mid`, default
503), and the later ones succeed: a retry's second try then sees a healthy answer. With
`x-retry-after: S`, a failing 429/503 carries Retry-After: S. `x-delay-ms: N` delays
that one request by N ms (on top of the mode's delay_ms).

GET /__stats answers {"requests": N, "health_checks": M, "active": A, "max_active": X,
"paths": {...}, "health_host": H, "pid": P} (requests counts traffic only, not control or health
checks; H is the Host header of the last health check; P the server's process id).
"""

import http.client
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request

_lock = threading.Lock()
_mode = {}
_stats = {"requests": 0, "health_checks": 0, "active": 0, "max_active": 0}
_fail_counts = {}
_name = "upstream"


def _reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _read_request(conn, buf):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    need = int(headers.get("content-length", "0"))
    while len(rest) < need:
        data = conn.recv(65536)
        if not data:
            return None
        rest += data
    return method, target, headers, rest[:need], rest[need:]


def _answer(conn, status, body=None, extra=""):
    body = body if body is not None else (_name + "\n").encode()
    head = ("HTTP/1.1 %d X\r\nContent-Length: %d\r\nx-upstream: %s\r\n%s\r\n" %
            (status, len(body), _name, extra))
    conn.sendall(head.encode("latin-1") + body)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                request = _read_request(conn, buf)
                if request is None:
                    return
                method, target, headers, body, buf = request
                if not self.respond(conn, method, target, headers, body):
                    return
        except (ConnectionError, OSError, ValueError):
            return

    def respond(self, conn, method, target, headers, body):
        url = urllib.parse.urlsplit(target)
        if url.path == "/__mode":
            with _lock:
                _mode.clear()
                _mode.update(dict(urllib.parse.parse_qsl(url.query)))
            _answer(conn, 200, b"mode set\n")
            return True
        if url.path == "/__stats":
            with _lock:
                _answer(conn, 200, json.dumps(dict(_stats, pid=os.getpid())).encode())
            return True
        with _lock:
            mode = dict(_mode)
        if url.path == "/healthz":
            with _lock:
                _stats["health_checks"] += 1
                _stats["health_host"] = headers.get("host")
            if mode.get("health_delay_ms"):
                time.sleep(int(mode["health_delay_ms"]) / 1000.0)
            _answer(conn, int(mode.get("health", "200")))
            return True
        with _lock:
            _stats["requests"] += 1
            number = _stats["requests"]
            _stats["active"] += 1
            _stats["max_active"] = max(_stats["max_active"], _stats["active"])
            paths = _stats.setdefault("paths", {})
            paths[url.path] = paths.get(url.path, 0) + 1
        try:
            return self.answer_traffic(conn, headers, mode, number, len(body))
        finally:
            with _lock:
                _stats["active"] -= 1

    def answer_traffic(self, conn, headers, mode, number, body_bytes):
        how = None
        key = headers.get("x-fail-key")
        if key and "x-fail-first" in headers:
            with _lock:
                seen = _fail_counts.get(key, 0)
                _fail_counts[key] = seen + 1
            if seen < int(headers["x-fail-first"]):
                how = headers.get("x-fail-how", "503")
        if how is None:
            flap = int(mode.get("flap", "0"))
            failing = flap == 0 or ((number - 1) // flap) % 2 == 0
            if failing and mode.get("fail"):
                how = mode["fail"]
            elif failing and mode.get("status"):
                how = mode["status"]
        if mode.get("delay_ms"):
            time.sleep(int(mode["delay_ms"]) / 1000.0)
        if headers.get("x-delay-ms"):
            time.sleep(int(headers["x-delay-ms"]) / 1000.0)
        if how == "reset":
            _reset(conn)
            return False
        if how == "mid":
            conn.sendall(("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nx-upstream: %s\r\n\r\n"
                          % _name).encode("latin-1") + b"m" * 1000)
            time.sleep(0.1)
            _reset(conn)
            return False
        if how == "close":
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return False
        status = int(how) if how else 200
        extra = "x-body-bytes: %d\r\n" % body_bytes
        if status in (429, 503) and (mode.get("retry_after") or headers.get("x-retry-after")):
            extra += "Retry-After: %s\r\n" % (headers.get("x-retry-after") or mode["retry_after"])
        _answer(conn, status, extra=extra)
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def serve(port, name, host="127.0.0.1"):
    global _name
    _name = name
    with _Server((host, port), _Handler) as server:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        server.serve_forever()


# ---------------------------------------------------------------------------------------------
# Test helpers
# ---------------------------------------------------------------------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import free_port, wait_port  # noqa: E402


class Member:
    """One running fleet upstream (killed by PID in the case's tearDown)."""

    def __init__(self, case, name, port=None, host="127.0.0.1"):
        self.case, self.name, self.host = case, name, host
        if port:
            self.port = port
            self.start()
            return
        # free_port() can race with suites running in parallel: a member that lost its port
        # to another process exits at startup (address in use); take a new port.
        for attempt in range(3):
            self.port = free_port(host)
            try:
                self.start()
                return
            except RuntimeError:  # exited before listening
                if attempt == 2:
                    raise

    def start(self):
        self.proc = self.case.start(
            [sys.executable, os.path.abspath(__file__), str(self.port), self.name, self.host])
        wait_port(self.port, host=self.host, proc=self.proc)
        # The listener may be another process's (a port lost to a parallel suite, before this
        # one failed to bind it): the member answers with its own pid.
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.stats().get("pid") == self.proc.pid:
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("fleet member %s exited with %d before listening on %d" %
                                   (self.name, self.proc.returncode, self.port))
            if time.monotonic() > deadline:
                raise RuntimeError("port %d is not fleet member %s's" % (self.port, self.name))
            time.sleep(0.02)

    def stop(self):
        """Stops the process: its port then refuses connections."""
        self.proc.kill()
        self.proc.wait()

    def set_mode(self, **mode):
        query = urllib.parse.urlencode(mode)
        urllib.request.urlopen("http://%s:%d/__mode?%s" % (self.host, self.port, query),
                               data=b"", timeout=5).read()

    def stats(self):
        with urllib.request.urlopen("http://%s:%d/__stats" % (self.host, self.port),
                                    timeout=5) as r:
            return json.loads(r.read())

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)


def fleet(case, *names):
    return [Member(case, name) for name in names]


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "upstream",
          sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1")
