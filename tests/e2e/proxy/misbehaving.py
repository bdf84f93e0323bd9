"""A small misbehaving HTTP/1.1 upstream (stdlib only), plus the helpers the proxy failure,
lifecycle, CLI and access-log suites share: start `pillion proxy` from a generated YAML config,
talk raw HTTP/1.1 over sockets, read the access log and the admin stats.

Run as a program, it serves on 127.0.0.1:PORT; what it does is chosen by the request path:

    /ok (any other path)   200 "ok\\n" (or ?size=N bytes), keep-alive, echoes x-request-id
                           back as x-seen-request-id and the request body size as x-body-bytes
    /delay?ms=N            waits N ms, then answers like /ok
    /close                 reads the request, closes the connection without a response (FIN)
    /reset                 reads the request, resets the connection (RST) without a response
    /reset-mid             sends a head announcing 100000 bytes, 1000 of them, then RST
    /malformed             answers "THIS IS NOT HTTP" and closes
    /big?size=N            200 with an N-byte body, written as fast as the peer takes it
    /slow-body?ms=N        200 head at once, then 10 body bytes every N ms, 5 times
    /echo-head             200 with the request head exactly as received as the body
    /big-head?size=N       200 whose head carries an N-byte header
    /overlong              200 with Content-Length: 3 followed by a second, unrequested response
                           on the same connection (response-queue poisoning)
    /raw?hex=H[&close=1]   sends the bytes bytes.fromhex(H) as the whole response (then closes
                           with close=1)
    /ok-then-close?ms=N    like /ok (keep-alive, no Connection: close), then closes the
                           connection N ms later (a keep-alive race the pool must survive)

    python3 misbehaving.py PORT
"""

import json
import os
import re
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request

# ---------------------------------------------------------------------------------------------
# The upstream server
# ---------------------------------------------------------------------------------------------


def _read_head(conn, buf):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _read_body(conn, headers, rest):
    """Reads a Content-Length or chunked body; returns (body_size, leftover bytes)."""
    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need:
            data = conn.recv(65536)
            if not data:
                raise ConnectionError("eof in body")
            rest += data
        return need, rest[need:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        size_total = 0
        while True:
            while b"\r\n" not in rest:
                data = conn.recv(65536)
                if not data:
                    raise ConnectionError("eof in chunk size")
                rest += data
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in rest:  # (no trailers expected) the final CRLF
                    data = conn.recv(65536)
                    if not data:
                        raise ConnectionError("eof in last chunk")
                    rest += data
                _, _, rest = rest.partition(b"\r\n")
                return size_total, rest
            while len(rest) < size + 2:
                data = conn.recv(65536)
                if not data:
                    raise ConnectionError("eof in chunk")
                rest += data
            size_total += size
            rest = rest[size + 2:]
    return 0, rest


def _reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while True:
                head, buf = _read_head(conn, buf)
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body_bytes, buf = _read_body(conn, headers, buf)
                url = urllib.parse.urlsplit(target)
                query = dict(urllib.parse.parse_qsl(url.query))
                self.raw_head = head
                if not self.respond(conn, method, url.path, query, headers, body_bytes):
                    return
        except (ConnectionError, OSError, ValueError):
            return

    def respond(self, conn, method, path, query, headers, body_bytes):
        """Returns False when the connection must not be reused."""
        if path == "/close":
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return False
        if path == "/reset":
            _reset(conn)
            return False
        if path == "/reset-mid":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            time.sleep(0.1)
            _reset(conn)
            return False
        if path == "/malformed":
            conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            conn.close()
            return False
        if path == "/big":
            size = int(query.get("size", "1048576"))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % size)
            chunk = b"b" * 65536
            sent = 0
            while sent < size:
                n = min(len(chunk), size - sent)
                conn.sendall(chunk[:n])
                sent += n
            return True
        if path == "/slow-body":
            ms = int(query.get("ms", "200"))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
            for _ in range(5):
                time.sleep(ms / 1000.0)
                conn.sendall(b"s" * 10)
            return True
        if path == "/raw":
            conn.sendall(bytes.fromhex(query.get("hex", "")))
            if query.get("close"):
                conn.close()
                return False
            return True
        if path == "/overlong":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-Poison: 1\r\n\r\npoisoned\n")
            return True
        if path == "/ok-then-close":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            time.sleep(int(query.get("ms", "100")) / 1000.0)
            if query.get("rst"):
                _reset(conn)
            else:
                conn.close()
            return False
        if path == "/big-head":
            size = int(query.get("size", "100000"))
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * size +
                         b"\r\nContent-Length: 3\r\n\r\nok\n")
            return True
        if path == "/echo-head":
            body = self.raw_head + b"\r\n\r\n"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return True
        if path == "/delay":
            time.sleep(int(query.get("ms", "1000")) / 1000.0)
        size = int(query.get("size", "0"))
        body = b"b" * size if size else b"ok\n"
        extra = ""
        if "x-request-id" in headers:
            extra += "x-seen-request-id: %s\r\n" % headers["x-request-id"]
        head = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                "x-body-bytes: %d\r\n%s\r\n" % (len(body), body_bytes, extra))
        conn.sendall(head.encode("latin-1") + (b"" if method == "HEAD" else body))
        return True


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(port):
    with _Server(("127.0.0.1", port), _Handler) as server:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        server.serve_forever()


# ---------------------------------------------------------------------------------------------
# Test helpers
# ---------------------------------------------------------------------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import PILLION, ProcessTestCase, free_port, wait_port  # noqa: E402

SANITIZED = os.environ.get("PILLION_SANITIZED") == "1"


def start_upstream(case, port=None):
    """Starts the misbehaving upstream through case.start (killed by PID in tearDown)."""
    port = port or free_port()
    proc = case.start([sys.executable, os.path.abspath(__file__), str(port)])
    wait_port(port, proc=proc)
    return port


def closed_port():
    """A loopback port nothing listens on (connect is refused)."""
    return free_port()


class Proxy:
    """A running `pillion proxy` with its ports, config path and access log."""

    def __init__(self, proc, port, admin_port, log_path, config_path, stderr_path):
        self.proc, self.port, self.admin_port = proc, port, admin_port
        self.log_path, self.config_path, self.stderr_path = log_path, config_path, stderr_path

    def admin(self, path, method="GET", timeout=5):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.admin_port, path),
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stats(self):
        status, text = self.admin("/stats")
        assert status == 200, text
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if value.strip().lstrip("-").isdigit():
                out[name.strip()] = int(value)
        return out

    def wait_stat(self, name, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.stats().get(name)
            if value is not None and predicate(value):
                return value
            time.sleep(0.05)
        raise AssertionError("stat %s never satisfied the predicate (last %r)" % (name, value))

    def log_lines(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return [line for line in f.read().splitlines() if line]
        except FileNotFoundError:
            return []

    def log_entry(self, request_id, timeout=3.0):
        """The parsed access-log line carrying request_id (waits for the batched flush)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                entry = parse_log_line(line)
                if entry.get("request_id") == request_id:
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError("no access-log line for request_id=%s in %s" %
                                     (request_id, self.log_lines()[-5:]))
            time.sleep(0.05)

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def prometheus_sample(proxy, name, **labels):
    """A sample of /stats/prometheus, by name and labels (None when absent)."""
    status, text = proxy.admin("/stats/prometheus")
    assert status == 200, text
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if not series.startswith(name + "{"):
            continue
        got = ",".join(sorted(series[len(name) + 1:-1].split(",")))
        if got == want:
            return float(value)
    return None


def cluster_endpoints(proxy, cluster):
    """A cluster's endpoints in /clusters, by address."""
    status, text = proxy.admin("/clusters")
    assert status == 200, text
    for item in json.loads(text)["clusters"]:
        if item["name"] == cluster:
            return {e["address"]: e for e in item["endpoints"]}
    raise AssertionError("no %s cluster in /clusters: %s" % (cluster, text))


def parse_log_line(line):
    line = line.strip()
    if line.startswith("{"):
        try:
            return json.loads(line)
        except ValueError:
            return {}
    return dict(re.findall(r"(\w+)=(\S+)", line))


def yaml_config(port, admin_port, upstream_port, log_path, limits=None, timeouts=None,
                route_timeout=None, extra_routes="", extra_clusters="", log_format="text",
                workers=1, connect_timeout=None, pool=None, app_host=None, extra_top=""):
    """A config: extra_routes go before the catch-all route to the `app` cluster; extra_top is
    appended as top-level YAML."""
    lines = [
        "workers: %d" % workers,
        "admin: { address: 127.0.0.1:%d }" % admin_port,
        "listeners:",
        "  - { name: main, address: 127.0.0.1:%d, routes: default }" % port,
        "routes:",
        "  default:",
    ]
    if extra_routes:
        lines += ["    " + line for line in extra_routes.strip("\n").splitlines()]
    lines.append("    - { match: { %spath_prefix: / }, cluster: app%s }" %
                 ("host: %s, " % app_host if app_host else "",
                  ", timeout: %s" % route_timeout if route_timeout else ""))
    lines += [
        "clusters:",
        "  - name: app",
        "    endpoints: [ \"127.0.0.1:%d\" ]" % upstream_port,
    ]
    if connect_timeout:
        lines.append("    connect_timeout: %s" % connect_timeout)
    if pool:
        lines.append("    pool: { %s }" % ", ".join("%s: %s" % kv for kv in pool.items()))
    if extra_clusters:
        lines += ["  " + line for line in extra_clusters.strip("\n").splitlines()]
    lines.append("access_log: { path: %s, format: %s }" % (json.dumps(log_path), log_format))
    if limits:
        lines.append("limits: { %s }" % ", ".join("%s: %s" % kv for kv in limits.items()))
    if timeouts:
        lines.append("timeouts: { %s }" % ", ".join("%s: %s" % kv for kv in timeouts.items()))
    if extra_top:
        lines += extra_top.strip("\n").splitlines()
    return "\n".join(lines) + "\n"


def start_proxy(case, upstream_port, name="proxy", extra_args=(), env=None, **config):
    """Writes a YAML config, starts `pillion proxy -c` and waits for listener and admin."""
    # free_port() can race with suites running in parallel: a proxy that lost its port to
    # another process exits at startup with "Address already in use"; take new ports.
    for attempt in range(3):
        try:
            return _start_proxy_once(case, upstream_port, name, extra_args, env, config)
        except RuntimeError:
            with open(case.path(name + ".stderr"), encoding="utf-8", errors="replace") as f:
                lost_port = "in use" in f.read()
            if not lost_port or attempt == 2:
                raise


def _start_proxy_once(case, upstream_port, name, extra_args, env, config):
    port, admin_port = free_port(), free_port()
    log_path = case.path(name + ".access.log")
    config_path = case.path(name + ".yaml")
    with open(config_path, "w") as f:
        f.write(yaml_config(port, admin_port, upstream_port, log_path, **config))
    stderr_path = case.path(name + ".stderr")
    err = open(stderr_path, "w")
    case.addCleanup(err.close)
    proc = case.start([PILLION, "proxy", "-c", config_path, *extra_args], stdout=err,
                      stderr=subprocess.STDOUT, env=env)
    wait_port(port, proc=proc)
    wait_port(admin_port, proc=proc)
    return Proxy(proc, port, admin_port, log_path, config_path, stderr_path)


class Response:
    def __init__(self, status, reason, headers, body, raw):
        self.status, self.reason, self.headers, self.body, self.raw = (
            status, reason, headers, body, raw)

    def header(self, name):
        return self.headers.get(name.lower())


def read_response(sock, head_request=False, timeout=5.0):
    """Reads one response from sock (Content-Length, chunked or until close). Returns a
    Response, or None when the connection closed before any byte arrived."""
    sock.settimeout(timeout)
    buf = getattr(sock, "_pending", b"")
    while b"\r\n\r\n" not in buf:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            if not buf:
                return None
            raise AssertionError("connection closed inside a response head: %r" % buf[:200])
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if head_request or status in (204, 304) or 100 <= status < 200:
        body, rest = b"", rest
    elif "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need:
            data = sock.recv(65536)
            if not data:
                raise AssertionError("connection closed inside a body (%d of %d)" %
                                     (len(rest), need))
            rest += data
        body, rest = rest[:need], rest[need:]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while True:
            while b"\r\n" not in rest:
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("connection closed inside a chunked body")
                rest += data
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("connection closed inside a chunk")
                rest += data
            if size == 0:
                rest = rest[2:]
                break
            out += rest[:size]
            rest = rest[size + 2:]
        body = out
    else:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        body, rest = rest, b""
    sock._pending = rest
    return Response(status, reason, headers, body, head)


class _Sock(socket.socket):
    """A socket that can carry bytes read past one response (for keep-alive reads)."""
    _pending = b""


def connect(port, timeout=5.0):
    sock = _Sock(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def request(port, raw, timeout=5.0):
    """Sends raw bytes on a new connection and reads one response (None if closed first)."""
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return read_response(sock, timeout=timeout)


def get(port, path="/ok", host="svc", extra=""):
    raw = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, extra)).encode()
    return request(port, raw)


def is_closed(sock, timeout=3.0):
    """True when the peer closed (EOF or RST) within timeout and sent no further bytes."""
    sock.settimeout(timeout)
    pending = getattr(sock, "_pending", b"")
    if pending:
        return False
    try:
        data = sock.recv(1)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return data == b""


def curl(*args, timeout=10):
    """Runs curl; returns (status code or 0, headers dict, body bytes, exit code)."""
    proc = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-D", "-",
                           "-o", "-", *args], capture_output=True, timeout=timeout + 5)
    out = proc.stdout
    head, _, body = out.partition(b"\r\n\r\n")
    status, headers = 0, {}
    if head.startswith(b"HTTP/"):
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers, body, proc.returncode


class ProxyCase(ProcessTestCase):
    """A ProcessTestCase with assertion helpers for generated error replies."""

    def wait_stderr(self, proxy, *words, timeout=3.0):
        """The proxy's stderr lines holding every one of `words`, once there is one."""
        deadline = time.monotonic() + timeout
        while True:
            text = proxy.stderr()
            lines = [line for line in text.splitlines() if all(w in line for w in words)]
            if lines:
                return lines
            if time.monotonic() > deadline:
                self.fail("no stderr line with %r in:\n%s" % (words, text[-2000:]))
            time.sleep(0.05)

    def assertLocalReply(self, proxy, resp, status, flag, reason_words):
        """resp is a generated error: status, body naming the reason with the request id that
        is also the x-request-id header and the access-log line's, which has the flag."""
        self.assertIsNotNone(resp, "connection closed without a response")
        self.assertEqual(resp.status, status, resp.raw)
        rid = resp.header("x-request-id")
        self.assertTrue(rid, "no x-request-id on the error response: %r" % resp.raw)
        body = resp.body.decode("utf-8", "replace")
        self.assertIn("request_id: %s" % rid, body)
        for word in reason_words:
            self.assertIn(word.lower(), body.lower(), "reason %r not in body %r" % (word, body))
        entry = proxy.log_entry(rid)
        self.assertEqual(str(entry.get("status")), str(status), entry)
        self.assertIn(flag, entry.get("flags", "").split(","), entry)
        return rid, entry

    def assertServes(self, proxy):
        resp = get(proxy.port, "/ok")
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"ok\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
