"""A test upstream (origin) server speaking raw HTTP/1.1 over threads, Python stdlib only, so it can
misbehave on purpose. The mode is chosen by the request path:

  /echo                 200 + JSON: request line, headers as received (ordered [name, value]
                        pairs), sha256 and length of the (de-chunked) body, whether it came
                        chunked, trailers, and `conn`/`seq` (connection id and the request's
                        number on it) so pool reuse can be observed. Any unknown path echoes too.
  /delay/MS             sleeps MS milliseconds, then echoes.
  /bytes/N              N bytes of pattern_chunks(N) with Content-Length; ?chunked=1 chunked
                        (?chunk=SIZE per chunk), ?close=1 no framing (close-delimited);
                        ?die=K resets the connection (RST) after K body bytes; ?trailers=1 ends a
                        chunked body with two trailer fields.
  /status/CODE          that status; body "status CODE\\n" except 1xx/204/304/HEAD;
                        ?cl=N adds a Content-Length: N header without a body (304 style).
  /head-ok              GET: 12345 bytes; HEAD: the same head (Content-Length: 12345, or
                        Transfer-Encoding: chunked with ?chunked=1, or neither with ?bare=1)
                        and no body.
  /drip                 like /echo, but the response goes out one byte per write (?gap_us=200).
  /big-headers          like /echo, plus ?n=100 response headers X-Big-NNN of 400 bytes each.
  /cl-and-te            a response with both Content-Length: 3 and a chunked 10-byte body.
  /http10-response      an "HTTP/1.0 200" response without keep-alive (?cl=1: with a length).
  /early-hints          sends an interim 103 (with a Link header) before the /echo response.
  /overlong             Content-Length: 5 but writes "hello" plus garbage after it.
  /resp-headers         200 with hop-by-hop headers in the response (Connection naming X-Hop,
                        X-Hop, Keep-Alive, Upgrade, Proxy-Connection) plus X-End-To-End.
  /reset-mid-body       promises 100000 bytes, sends 1000, then resets the connection (RST).
  /reset-before-response  resets the connection (RST) after reading the request.
  /close-without-response closes (FIN) after reading the request.
  /keepalive-close-after-response  answers like /echo (keep-alive, no Connection: close) and
                        then closes the idle connection (after ?after=MS, default at once).
  /stale-next           answers like /echo, then the NEXT request arriving on this connection is
                        met with a close (FIN, or RST with ?rst=1) and no response: exactly what
                        a proxy sees when it reuses a pooled connection the server just closed.
                        ?partial=1: "HTTP/1.1 20" is written before the close instead.
  /ws                   answers an Upgrade request with 101 (plus ?greet=TEXT sent in the same
                        write as the head) and then echoes every byte until EOF (?bye=1: closes
                        right after the 101 and greeting instead); 426 otherwise.
  /continue-aware       sends an interim "100 Continue" before reading the body (whether or not
                        the request carried Expect), then echoes.

Every response carries X-Upstream-Conn (the connection id) and, unless the mode closes, keeps the
connection alive by HTTP/1.1 rules; ?conn_close=1 on any path answers with Connection: close and
closes. Requests are recorded in Upstream.requests, ended connections in Upstream.closed_conns.

    from upstream import start_upstream, pattern_chunks, pattern_sha256
    up = start_upstream(self)          # self: a unittest.TestCase; closed in cleanup
    up.port, up.url, up.requests, up.connections_opened()

    python3 upstream.py --port N       # standalone
"""

import argparse
import hashlib
import json
import random
import select
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

# ---------------------------------------------------------------------------------------------
# Deterministic body pattern: byte i of a stream is BLOCK[i % PERIOD]. The period is not a power of
# two, so a shifted, dropped or duplicated piece changes the hash.
PERIOD = 1048573  # a prime just under 1 MiB
_BLOCK = random.Random(20240115).randbytes(PERIOD)
_DOUBLE = memoryview(_BLOCK + _BLOCK)


def pattern_chunks(n, chunk=256 * 1024, start=0):
    """Yields memoryviews covering bytes [start, start+n) of the pattern, never holding more than
    the fixed 2 MiB block in memory."""
    pos = start
    end = start + n
    chunk = min(chunk, PERIOD)
    while pos < end:
        off = pos % PERIOD
        size = min(chunk, end - pos)
        yield _DOUBLE[off:off + size]
        pos += size


_sha_cache = {}


def pattern_sha256(n):
    """The hex sha256 of the first n pattern bytes (cached)."""
    if n not in _sha_cache:
        h = hashlib.sha256()
        for piece in pattern_chunks(n, chunk=PERIOD):
            h.update(piece)
        _sha_cache[n] = h.hexdigest()
    return _sha_cache[n]


# ---------------------------------------------------------------------------------------------
def sleep_unless_gone(sock, seconds):
    """Sleeps, but notices at once a peer that closed (as a real server's event loop would)."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        readable, _, _ = select.select([sock], [], [], remaining)
        if readable:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    raise ClientGone()
            except (ConnectionError, OSError):
                raise ClientGone()
            time.sleep(max(0.0, deadline - time.monotonic()))  # pipelined bytes: just wait
            return


class ClientGone(Exception):
    pass


class Conn:
    """One accepted connection: a socket plus the bytes read but not consumed yet."""

    def __init__(self, sock, conn_id):
        self.sock = sock
        self.id = conn_id
        self.buf = bytearray()
        self.seq = 0
        self.close_next = None  # None, "fin" or "rst": how to meet the next request

    def fill(self, size=65536):
        data = self.sock.recv(size)
        if not data:
            raise ClientGone()
        self.buf += data

    def read_head(self, limit=1 << 20):
        """Returns the head bytes (without the blank line), or None on a clean EOF."""
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[:idx])
                del self.buf[:idx + 4]
                return head
            if len(self.buf) > limit:
                raise ValueError("head too large")
            try:
                self.fill()
            except ClientGone:
                if self.buf:
                    raise
                return None

    def read_line(self):
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[:idx + 2]
                return line
            self.fill()

    def read_up_to(self, n):
        if not self.buf:
            self.fill(min(max(n, 65536), 1 << 20))
        take = min(n, len(self.buf))
        piece = bytes(self.buf[:take])
        del self.buf[:take]
        return piece

    def body_pieces(self, req):
        """Yields the request body's pieces (de-chunked) and fills req['trailers']."""
        if req["chunked"]:
            while True:
                line = self.read_line()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self.read_line()
                        if not t:
                            return
                        name, _, value = t.decode("latin-1").partition(":")
                        req["trailers"].append([name, value.strip()])
                left = size
                while left:
                    piece = self.read_up_to(left)
                    left -= len(piece)
                    yield piece
                if self.read_line() != b"":
                    raise ValueError("bad chunk end")
        else:
            left = req["content_length"] or 0
            while left:
                piece = self.read_up_to(min(left, 1 << 20))
                left -= len(piece)
                yield piece

    def send(self, data):
        self.sock.sendall(data)

    def reset(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.sock.close()


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # obsolete folding: keep verbatim
            headers[-1][1] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        headers.append([name, value.strip()])
    return method, target, version, headers


def header(headers, name, default=None):
    name = name.lower()
    for n, v in headers:
        if n.lower() == name:
            return v
    return default


def header_all(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def connection_tokens(headers):
    tokens = set()
    for v in header_all(headers, "connection"):
        tokens.update(t.strip().lower() for t in v.split(",") if t.strip())
    return tokens


# ---------------------------------------------------------------------------------------------
class Upstream:
    def __init__(self, port=0, host="127.0.0.1"):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(1024)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.lock = threading.Lock()
        self.requests = []  # one dict per request head received (the echo document)
        self.next_conn = 0
        self.live = {}
        self.closed_conns = []  # ids of connections that have ended, in order
        self.closed = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    # -- bookkeeping ---------------------------------------------------------------------------
    def connections_opened(self):
        with self.lock:
            return self.next_conn

    def last_request(self, path_prefix=None):
        with self.lock:
            for r in reversed(self.requests):
                if path_prefix is None or r["path"].startswith(path_prefix):
                    return r
        return None

    def close(self):
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.live.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- serving ----------------------------------------------------------------------------------
    def _accept_loop(self):
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.next_conn += 1
                conn = Conn(sock, self.next_conn)
                self.live[conn.id] = sock
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                head = conn.read_head()
                if head is None:
                    break
                if not self._handle(conn, head):
                    break
        except (ClientGone, OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.live.pop(conn.id, None)
                self.closed_conns.append(conn.id)
            try:
                conn.sock.close()
            except OSError:
                pass

    def _handle(self, conn, head):
        """Serves one request; returns False when the connection must end."""
        method, target, version, headers = parse_head(head)
        conn.seq += 1
        split = urlsplit(target)
        path = split.path or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        te = (header(headers, "transfer-encoding") or "").lower()
        cl = header(headers, "content-length")
        req = {
            "conn": conn.id, "seq": conn.seq, "method": method, "target": target, "path": path,
            "version": version, "headers": headers, "chunked": "chunked" in te,
            "content_length": int(cl) if cl is not None and "chunked" not in te else None,
            "trailers": [], "body_sha256": None, "body_length": 0,
        }
        with self.lock:
            self.requests.append(req)
        tokens = connection_tokens(headers)
        keep = ("close" not in tokens) if version == "HTTP/1.1" else ("keep-alive" in tokens)
        if query.get("conn_close") == "1":
            keep = False

        if conn.close_next:
            how, conn.close_next = conn.close_next, None
            if how == "rst":
                conn.reset()
            elif how == "partial":
                conn.send(b"HTTP/1.1 20")
            return False

        if path == "/close-without-response":
            return False
        if path == "/reset-before-response":
            conn.reset()
            return False

        if path == "/continue-aware":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        elif path == "/early-hints":
            conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        elif (header(headers, "expect") or "").lower() == "100-continue":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

        if path == "/ws":
            return self._websocket(conn, req, headers, query)

        # Consume the body (hashing) before answering, as most origins do.
        h = hashlib.sha256()
        length = 0
        for piece in conn.body_pieces(req):
            h.update(piece)
            length += len(piece)
        req["body_sha256"] = h.hexdigest()
        req["body_length"] = length

        extra = [("X-Upstream-Conn", str(conn.id))]
        if path.startswith("/bytes/"):
            return self._bytes(conn, method, int(path.split("/")[2]), query, keep, extra)
        if path.startswith("/status/"):
            return self._status(conn, method, int(path.split("/")[2]), query, keep, extra)
        if path == "/head-ok":
            return self._head_ok(conn, method, query, keep, extra)
        if path == "/cl-and-te":
            conn.send(self._head(200, [("Content-Length", "3"), ("Transfer-Encoding", "chunked")]
                                 + extra, keep) + b"a\r\n0123456789\r\n0\r\n\r\n")
            return keep
        if path == "/http10-response":
            # An HTTP/1.0 origin: no keep-alive. With ?cl=1 the body has a Content-Length and the
            # connection is left open, but a request reusing it is met with a close (like
            # /stale-next); without, the body is close-delimited.
            body = b"http/1.0 body\n"
            if query.get("cl") == "1":
                conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nX-Upstream-Conn: %d\r\n\r\n"
                          % (len(body), conn.id) + body)
                conn.close_next = "fin"
                return True
            conn.send(b"HTTP/1.0 200 OK\r\nX-Upstream-Conn: %d\r\n\r\n" % conn.id + body)
            return False
        if path == "/overlong":
            # Content-Length: 5, then more bytes than promised in the same write.
            conn.send(self._head(200, [("Content-Length", "5")] + extra, keep) +
                      b"helloEXTRA BYTES THE SERVER SHOULD NOT HAVE SENT\r\n\r\n")
            return keep
        if path == "/reset-mid-body":
            conn.send(self._head(200, [("Content-Length", "100000")] + extra, keep))
            conn.send(bytes(1000))
            time.sleep(0.05)
            conn.reset()
            return False
        if path == "/resp-headers":
            extra += [("Connection", "X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5"),
                      ("Upgrade", "h2c"), ("Proxy-Connection", "keep-alive"),
                      ("X-End-To-End", "kept")]
        if path.startswith("/delay/"):
            sleep_unless_gone(conn.sock, int(path.split("/")[2]) / 1000.0)
        if path == "/drip":
            # The whole response one byte per write, so the proxy sees it in tiny pieces.
            body = json.dumps(req).encode()
            data = self._head(200, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))] + extra, keep) + body
            gap = int(query.get("gap_us", "200")) / 1e6
            for i in range(len(data)):
                conn.send(data[i:i + 1])
                if gap:
                    time.sleep(gap)
            return keep
        if path == "/big-headers":
            extra += [("X-Big-%03d" % i, "h" * 400) for i in range(int(query.get("n", "100")))]
        body = json.dumps(req).encode()
        if method == "HEAD":
            conn.send(self._head(200, [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(body)))] + extra, keep))
        else:
            conn.send(self._head(200, [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(body)))] + extra, keep) + body)
        if path == "/keepalive-close-after-response":
            after = int(query.get("after", "0")) / 1000.0
            if after:
                time.sleep(after)
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if path == "/stale-next":
            conn.close_next = ("rst" if query.get("rst") == "1" else
                               "partial" if query.get("partial") == "1" else "fin")
        return keep

    @staticmethod
    def _head(status, headers, keep, reason=None):
        reasons = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
                   304: "Not Modified", 404: "Not Found", 426: "Upgrade Required",
                   500: "Internal Server Error", 503: "Service Unavailable"}
        lines = ["HTTP/1.1 %d %s" % (status, reason or reasons.get(status, "Status"))]
        lines += ["%s: %s" % kv for kv in headers]
        if not keep:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _bytes(self, conn, method, n, query, keep, extra):
        chunked = query.get("chunked") == "1"
        close = query.get("close") == "1"
        if close:
            conn.send(self._head(200, [("Content-Type", "application/octet-stream")] + extra,
                                 False))
        elif chunked:
            conn.send(self._head(200, [("Content-Type", "application/octet-stream"),
                                       ("Transfer-Encoding", "chunked")] + extra, keep))
        else:
            conn.send(self._head(200, [("Content-Type", "application/octet-stream"),
                                       ("Content-Length", str(n))] + extra, keep))
        if method == "HEAD":
            return keep and not close
        size = int(query.get("chunk", str(256 * 1024)))
        die = int(query.get("die", "-1"))
        sent = 0
        for piece in pattern_chunks(n, chunk=size):
            if 0 <= die < sent + len(piece):
                piece = piece[:die - sent]
                if chunked:
                    conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n" if piece else b"")
                else:
                    conn.send(piece)
                time.sleep(0.05)
                conn.reset()
                return False
            sent += len(piece)
            if chunked:
                conn.send(b"%x\r\n" % len(piece))
                conn.send(piece)
                conn.send(b"\r\n")
            else:
                conn.send(piece)
        if chunked and not close:
            if query.get("trailers") == "1":
                conn.send(b"0\r\nX-Trailer-One: 1\r\nX-Trailer-Two: two\r\n\r\n")
            else:
                conn.send(b"0\r\n\r\n")
        if close:
            conn.sock.shutdown(socket.SHUT_WR)
            return False
        return keep

    def _status(self, conn, method, code, query, keep, extra):
        hdrs = list(extra)
        bodyless = code < 200 or code in (204, 304) or method == "HEAD"
        body = b"" if bodyless else b"status %d\n" % code
        if "cl" in query:
            hdrs.append(("Content-Length", query["cl"]))
        elif not (code < 200 or code in (204, 304)):
            hdrs.append(("Content-Length", str(len(b"status %d\n" % code))))
        if code == 304:
            hdrs.append(("ETag", '"v1"'))
        conn.send(self._head(code, hdrs, keep) + body)
        return keep

    def _head_ok(self, conn, method, query, keep, extra):
        n = 12345
        hdrs = [("Content-Type", "application/octet-stream")] + extra
        if query.get("chunked") == "1":
            hdrs.append(("Transfer-Encoding", "chunked"))
        elif query.get("bare") != "1":
            hdrs.append(("Content-Length", str(n)))
        if method == "HEAD":
            conn.send(self._head(200, hdrs, keep))
            return keep
        if query.get("chunked") == "1":
            conn.send(self._head(200, hdrs, keep) + b"%x\r\n" % n + bytes(n) + b"\r\n0\r\n\r\n")
        else:
            conn.send(self._head(200, hdrs, keep) + bytes(n))
        return keep

    def _websocket(self, conn, req, headers, query):
        up = (header(headers, "upgrade") or "").lower()
        if "upgrade" not in connection_tokens(headers) or not up:
            body = b"upgrade required\n"
            conn.send(self._head(426, [("Content-Length", str(len(body))),
                                       ("X-Upstream-Conn", str(conn.id))], True) + body)
            return True
        greet = query.get("greet", "").encode()
        conn.send(self._head(101, [("Upgrade", up), ("Connection", "Upgrade"),
                                   ("X-Upstream-Conn", str(conn.id))], True) + greet)
        # Tunnel: echo every byte (including any that came right after the request head).
        if query.get("bye") == "1":
            conn.sock.shutdown(socket.SHUT_RDWR)
            return False
        if conn.buf:
            conn.send(bytes(conn.buf))
            conn.buf.clear()
        while True:
            data = conn.sock.recv(65536)
            if not data:
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return False
            conn.send(data)


def start_upstream(test_case=None, port=0):
    """Starts an Upstream on 127.0.0.1 (a free port by default); when test_case (a TestCase) is
    given, it is closed in the test's cleanup."""
    up = Upstream(port)
    if test_case is not None:
        test_case.addCleanup(up.close)
    return up


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    up = Upstream(args.port, args.host)
    print("listening on %s:%d" % (args.host, up.port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        up.close()


if __name__ == "__main__":
    sys.exit(main())
