"""Shared pieces of the proxy forwarding suites (no tests here): start `pillion proxy` in front of
the test upstream (tests/e2e/upstream.py), read its stats and access log, a raw HTTP/1.1 client
that can pipeline and inspect framing byte by byte, and the proxy's memory from /proc."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request

from harness import PILLION, ProcessTestCase, free_port, wait_port
from upstream import start_upstream

SANITIZED = os.environ.get("PILLION_SANITIZED") == "1"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def header(headers, name, default=None):
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return default


def header_all(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def list_values(headers, name):
    """The comma-separated list a field (possibly repeated) stands for, in order."""
    out = []
    for v in header_all(headers, name):
        out += [t.strip() for t in v.split(",") if t.strip()]
    return out


class Response:
    def __init__(self, status, reason, headers, body, interim, raw_head):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.interim = interim  # [(status, headers)] of 1xx responses before this one
        self.raw_head = raw_head

    def header(self, name, default=None):
        return header(self.headers, name, default)

    def json(self):
        return json.loads(self.body)


class RawClient:
    """A plain socket speaking HTTP/1.1 by hand: write anything, read responses one by one."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=(), body=b"", version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed by the proxy")
        self.buf += data

    def read_head(self):
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[:idx])
                del self.buf[:idx + 4]
                return head
            self._fill()

    def read_line(self):
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[:idx + 2]
                return line
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until_eof(self):
        while True:
            try:
                self._fill()
            except EOFError:
                break
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_response(self, method="GET", keep_interim=True):
        interim = []
        while True:
            raw = self.read_head()
            lines = raw.decode("latin-1").split("\r\n")
            version, status, *reason = lines[0].split(" ", 2)
            status = int(status)
            headers = [[n, v.strip()] for n, _, v in (l.partition(":") for l in lines[1:])]
            if 100 <= status < 200 and status != 101:
                interim.append((status, headers))
                continue
            break
        te = (header(headers, "transfer-encoding") or "").lower()
        cl = header(headers, "content-length")
        trailers = []
        if method == "HEAD" or status in (101, 204, 304) or status < 200:
            body = b""
        elif "chunked" in te:
            body = bytearray()
            while True:
                size = int(self.read_line().split(b";")[0], 16)
                if size == 0:
                    while True:
                        line = self.read_line()
                        if not line:
                            break
                        n, _, v = line.decode("latin-1").partition(":")
                        trailers.append([n, v.strip()])
                    break
                body += self.read_exact(size)
                if self.read_exact(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
            body = bytes(body)
        elif cl is not None:
            body = self.read_exact(int(cl))
        else:
            body = self.read_until_eof()
        resp = Response(status, reason[0] if reason else "", headers, body, interim, raw)
        resp.trailers = trailers
        return resp

    def pending(self, wait=0.2):
        """Bytes that arrive within `wait` seconds beyond what was consumed (should be none)."""
        self.sock.settimeout(wait)
        try:
            self._fill()
        except (socket.timeout, EOFError):
            pass
        finally:
            self.sock.settimeout(10.0)
        return bytes(self.buf)


def build_request(method, target, headers=(), body=b"", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)]
    names = {n.lower() for n, _ in headers}
    if "host" not in names:
        lines.append("Host: test.local")
    lines += ["%s: %s" % (n, v) for n, v in headers]
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def proc_memory(pid):
    """(VmRSS, VmHWM) of a process in bytes, from /proc/PID/status."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


class ProxyCase(ProcessTestCase):
    """Starts the test upstream and `pillion proxy` (one worker) in front of it."""

    proxy_args = ()

    def setUp(self):
        super().setUp()
        self.up = start_upstream(self)
        self.start_proxy(self.up.url)

    def start_proxy(self, upstream_url=None, extra=(), config=None, workers=1):
        # free_port() can race with suites running in parallel: a proxy that lost its port
        # to another process exits at startup with "Address already in use"; take new ports.
        for attempt in range(3):
            try:
                return self._start_proxy_once(upstream_url, extra, config, workers)
            except RuntimeError:
                with open(self.proxy_stderr) as err:
                    lost_port = "in use" in err.read()
                if not lost_port or attempt == 2:
                    raise

    def _start_proxy_once(self, upstream_url, extra, config, workers):
        self.port = free_port()
        self.admin_port = free_port()
        self.access_log = self.path("access-%d.log" % self.port)
        self.proxy_stderr = self.path("proxy-%d.err" % self.port)
        if config is not None:
            path = self.path("pillion-%d.yaml" % self.port)
            with open(path, "w") as f:
                f.write(config.format(port=self.port, admin=self.admin_port,
                                      log=self.access_log))
            args = [PILLION, "proxy", "-c", path]
        else:
            args = [PILLION, "proxy", "--listen", "127.0.0.1:%d" % self.port,
                    "--upstream", upstream_url, "--workers", str(workers),
                    "--admin", "127.0.0.1:%d" % self.admin_port,
                    "--access-log", self.access_log]
        args += list(self.proxy_args) + list(extra)
        with open(self.proxy_stderr, "w") as err:
            self.proxy = self.start(args, stderr=err)
        wait_port(self.port, proc=self.proxy)
        wait_port(self.admin_port, proc=self.proxy)
        return self.proxy

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stats(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.admin_port,
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(":")
            try:
                out[name.strip()] = int(value.strip())
            except ValueError:
                pass
        return out

    def log_lines(self, at_least=0, timeout=3.0):
        """The access log's lines, waiting (flushes are batched) until there are `at_least`."""
        deadline = time.monotonic() + timeout
        while True:
            lines = []
            if os.path.exists(self.access_log):
                with open(self.access_log) as f:
                    lines = [l for l in f.read().splitlines() if l.strip()]
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def curl(self, *args, check=True, timeout=60):
        proc = subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args),
                              capture_output=True, timeout=timeout + 10)
        if check and proc.returncode != 0:
            self.fail("curl %s failed (%d): %s" % (args, proc.returncode, proc.stderr.decode()))
        return proc

    def raw(self, timeout=10.0):
        client = RawClient(self.port, timeout)
        self.addCleanup(client.close)
        return client

    def get(self, target, headers=(), method="GET", body=b""):
        """One request on a fresh raw connection."""
        with RawClient(self.port) as c:
            c.request(method, target, headers, body)
            return c.read_response(method)


def log_field(line, name):
    m = re.search(r"(?:^|\s)%s=(\S*)" % re.escape(name), line)
    return m.group(1) if m else None
