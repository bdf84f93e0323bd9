"""Bad input never crashes or hangs the proxy: a few hundred seeded random, mutated and truncated
requests, and the classic request-smuggling shapes (Content-Length with Transfer-Encoding, two
Content-Length values, bad chunk sizes, obs-fold, NUL bytes). Each is answered with a 4xx (400
for the malformed ones) or the connection is closed; afterwards the process is alive, serves
normally and no downstream connection is left open."""

import concurrent.futures
import random
import socket
import time
import unittest

from misbehaving import (ProxyCase, connect, is_closed, read_response, request, start_proxy,
                         start_upstream)

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n"

# Framing the proxy must refuse with 400 and close; anything after them must never be parsed.
MUST_REJECT = {
    "cl_and_te": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 6\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_and_cl": b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "two_content_lengths": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n"
                           b"Content-Length: 40\r\n\r\n" + SMUGGLED,
    "content_length_list": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 0, 40\r\n\r\n"
                           + SMUGGLED,
    "content_length_plus": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: +3\r\n\r\nabc",
    "content_length_negative": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: -1\r\n\r\n",
    "content_length_overflow": b"POST /ok HTTP/1.1\r\nHost: svc\r\n"
                               b"Content-Length: 99999999999999999999999\r\n\r\n",
    "content_length_hex": b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 0x10\r\n\r\n",
    "te_unknown": b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: xchunked\r\n\r\n"
                  b"0\r\n\r\n" + SMUGGLED,
    "te_chunked_not_last": b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked, "
                           b"identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_twice": b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "space_before_colon_te": b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding : chunked\r\n"
                             b"Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "space_before_colon": b"GET /ok HTTP/1.1\r\nHost : svc\r\n\r\n",
    "nul_in_value": b"GET /ok HTTP/1.1\r\nHost: svc\r\nX-A: a\x00b\r\n\r\n",
    "nul_in_name": b"GET /ok HTTP/1.1\r\nHost: svc\r\nX\x00A: a\r\n\r\n",
    "nul_in_target": b"GET /o\x00k HTTP/1.1\r\nHost: svc\r\n\r\n",
    "del_in_target": b"GET /o\x7fk HTTP/1.1\r\nHost: svc\r\n\r\n",
    "space_in_target": b"GET /o k HTTP/1.1\r\nHost: svc\r\n\r\n",
    "bare_cr": b"GET /ok HTTP/1.1\rHost: svc\r\r\n\r\n",
    "leading_whitespace_line": b"GET /ok HTTP/1.1\r\n Host: svc\r\n\r\n",
    "empty_header_name": b"GET /ok HTTP/1.1\r\nHost: svc\r\n: v\r\n\r\n",
    "http2_version": b"GET /ok HTTP/2.0\r\nHost: svc\r\n\r\n",
    "http09": b"GET /ok\r\n\r\n",
    "bad_version": b"GET /ok HTTP/1.x\r\nHost: svc\r\n\r\n",
    "lower_case_version": b"GET /ok http/1.1\r\nHost: svc\r\n\r\n",
    "bad_method_token": b"G@T /ok HTTP/1.1\r\nHost: svc\r\n\r\n",
    "empty_target": b"GET  HTTP/1.1\r\nHost: svc\r\n\r\n",
    "only_crlf": b"\r\n\r\n\r\n\r\n",
}

BAD_CHUNKED_BODIES = {
    "non_hex_size": b"zz\r\nabc\r\n0\r\n\r\n",
    "size_overflow": b"fffffffffffffffffffff1\r\nabc\r\n0\r\n\r\n",
    "negative_size": b"-1\r\nabc\r\n0\r\n\r\n",
    "missing_crlf_after_data": b"3\r\nabcXX0\r\n\r\n",
}
CHUNKED_HEAD = b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"

TEMPLATES = [
    b"GET /ok?q=1 HTTP/1.1\r\nHost: svc\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
    b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\n"
    b"hello world",
    b"POST /ok HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    b"6\r\n world\r\n0\r\n\r\n",
    b"GET /ok HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, Upgrade\r\nUpgrade: foo\r\n"
    b"X-Request-ID: abc\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    b"\r\n\r\n",
    b"HEAD /ok HTTP/1.0\r\nHost: svc\r\n\r\n",
]
SPECIAL = [b"\x00", b"\r", b"\n", b"\r\n", b" ", b":", b"\t", b"\x7f", b"\xff", b",", b";",
           b"\r\n ", b"-", b"0", b"9", b"f", b"\r\n\r\n", b"Transfer-Encoding: chunked\r\n",
           b"Content-Length: 7\r\n", b"Host: x\r\n"]

ALLOWED = {200, 400, 404, 408, 413, 417, 431, 501, 502, 504}


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randrange(len(data) + 1)
        if op < 0.3 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op < 0.6:
            data[pos:pos] = rng.choice(SPECIAL)
        elif op < 0.8 and data:
            del data[pos:pos + rng.randint(1, 8)]
        else:
            end = rng.randrange(pos, len(data) + 1)
            data[pos:pos] = data[pos:end]  # duplicate a span (header lines, CRLFs)
    return bytes(data)


def generate(seed, count):
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 1500)))
            if rng.random() < 0.5:
                raw += b"\r\n\r\n"
        elif kind == 1:
            raw = mutate(rng, rng.choice(TEMPLATES))
        elif kind == 2:
            template = rng.choice(TEMPLATES)
            raw = template[:rng.randrange(1, len(template))]  # truncated
        else:
            lines = [b"GET /ok HTTP/1.1", b"Host: svc"]
            for _ in range(rng.randint(0, 12)):
                name = bytes(rng.choice(b"abcXYZ-_:\t \x00\x7f") for _ in range(rng.randint(0, 10)))
                value = bytes(rng.choice(b"abc 019,;=\"\\\t\x01\xff") for _ in
                              range(rng.randint(0, 20)))
                lines.append(name + rng.choice([b": ", b":", b" : ", b""]) + value)
            raw = b"\r\n".join(lines) + b"\r\n\r\n"
        cases.append(raw)
    return cases


def exchange(port, raw, timeout=8.0):
    """Sends raw, half-closes, and returns (list of statuses, bodies, closed) once the proxy
    closes the connection. Raises on a hang (no close within timeout)."""
    sock = connect(port, timeout)
    try:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise AssertionError("proxy neither answered nor closed within %.0fs for %r" %
                                     (timeout, raw[:120]))
            if not chunk:
                break
            data += chunk
        return data
    finally:
        sock.close()


def statuses(data):
    out = []
    for line in data.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 ") and len(line) >= 12 and line[9:12].isdigit():
            out.append(int(line[9:12]))
    return out


class BadInput(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream, route_timeout="1s",
                                 timeouts={"request_headers": "1s", "idle": "5s"})

    def assertHealthy(self):
        self.assertIsNone(self.proxy.proc.poll(), "the proxy exited")
        self.assertServes(self.proxy)
        self.proxy.wait_stat("downstream_cx_active", lambda v: v == 0, timeout=5)

    def test_seeded_random_and_mutated_requests(self):
        cases = generate(20261130, 400)
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda raw: (raw, exchange(self.proxy.port, raw)), cases))
        answered = 0
        for raw, data in results:
            if not data:
                continue  # closed without an answer: allowed for garbage
            self.assertTrue(data.startswith(b"HTTP/1.1 "), "not an HTTP response to %r: %r" %
                            (raw[:80], data[:80]))
            for status in statuses(data):
                answered += 1
                self.assertIn(status, ALLOWED, "%d for %r" % (status, raw[:120]))
            if data.startswith(b"HTTP/1.1 400"):
                self.assertIn(b"request_id: ", data)
                self.assertIn(b"x-request-id: ", data.lower())
        self.assertGreater(answered, 100)
        self.assertHealthy()
        stats = self.proxy.stats()
        self.assertGreater(stats["response_flag_DPE"], 50)

    def test_truncated_heads_left_open_get_408_or_close(self):
        rng = random.Random(7)
        socks = []
        for i in range(30):
            template = rng.choice(TEMPLATES)
            head_end = template.index(b"\r\n\r\n")
            sock = connect(self.proxy.port, timeout=5)
            sock.sendall(template[:rng.randrange(1, head_end)])
            socks.append(sock)
        start = time.monotonic()
        try:
            for sock in socks:
                resp = read_response(sock, timeout=5)
                if resp is not None:
                    self.assertEqual(resp.status, 408)
                self.assertTrue(is_closed(sock, timeout=3))
        finally:
            for sock in socks:
                sock.close()
        self.assertLess(time.monotonic() - start, 4.0)
        self.assertHealthy()

    def test_smuggling_shapes_are_rejected_and_nothing_after_them_is_parsed(self):
        for name, raw in MUST_REJECT.items():
            with self.subTest(name):
                with connect(self.proxy.port) as sock:
                    sock.sendall(raw)
                    resp = read_response(sock)
                    self.assertIsNotNone(resp, "closed without a 400")
                    self.assertEqual(resp.status, 400, resp.raw)
                    rid = resp.header("x-request-id")
                    self.assertIn(("request_id: %s" % rid).encode(), resp.body)
                    self.assertTrue(is_closed(sock), "connection left open after a 400")
                entry = self.proxy.log_entry(rid)
                self.assertEqual(entry["flags"], "DPE")
        time.sleep(0.3)
        self.assertFalse([line for line in self.proxy.log_lines() if "/smuggled" in line],
                         "bytes after a rejected request were parsed as a request")
        self.assertHealthy()

    def test_bad_chunk_sizes_are_400_and_close(self):
        # Head first, body a moment later: the body error is found while streaming.
        for name, body in BAD_CHUNKED_BODIES.items():
            with self.subTest(name):
                with connect(self.proxy.port) as sock:
                    sock.sendall(CHUNKED_HEAD)
                    time.sleep(0.2)
                    start = time.monotonic()
                    sock.sendall(body)
                    resp = read_response(sock)
                    self.assertLess(time.monotonic() - start, 0.9)
                    self.assertIsNotNone(resp)
                    self.assertEqual(resp.status, 400, resp.raw)
                    self.assertIn(b"chunked", resp.body)
                    self.assertTrue(is_closed(sock))
        self.assertHealthy()

    def test_bad_chunk_sizes_in_one_write_are_400_at_once(self):
        for name, body in BAD_CHUNKED_BODIES.items():
            with self.subTest(name):
                start = time.monotonic()
                resp = request(self.proxy.port, CHUNKED_HEAD + body)
                self.assertIsNotNone(resp)
                self.assertEqual(resp.status, 400, resp.raw)
                self.assertLess(time.monotonic() - start, 0.9)
        self.assertHealthy()

    def test_bad_chunk_sizes_in_one_write_never_reach_the_upstream_as_complete(self):
        # Whatever the delay, the answer is a 400 (or a close), never the upstream's 200.
        for name, body in BAD_CHUNKED_BODIES.items():
            with self.subTest(name):
                data = exchange(self.proxy.port, CHUNKED_HEAD + body + SMUGGLED, timeout=5)
                self.assertNotIn(200, statuses(data), data)
        time.sleep(0.3)
        self.assertFalse([line for line in self.proxy.log_lines() if "/smuggled" in line])
        self.assertHealthy()

    def test_obs_fold_is_rejected_or_unfolded(self):
        raw = (b"GET /echo-head HTTP/1.1\r\nHost: svc\r\nX-A: a\r\n Transfer-Encoding: chunked"
               b"\r\n\r\n")
        resp = request(self.proxy.port, raw)
        if resp is None:
            return
        self.assertIn(resp.status, (200, 400))
        if resp.status == 200:
            # RFC 9112 §5.2: replace each obs-fold with SP before forwarding.
            self.assertNotIn(b"\r\n Transfer-Encoding", resp.body)
            self.assertNotIn(b"\r\nTransfer-Encoding", resp.body)
        self.assertHealthy()

    def test_duplicate_or_invalid_host_is_400(self):
        for raw in (b"GET /echo-head HTTP/1.1\r\nHost: svc\r\nHost: evil\r\n\r\n",
                    b"GET /echo-head HTTP/1.1\r\nHost: s v c\r\n\r\n"):
            resp = request(self.proxy.port, raw)
            self.assertEqual(resp.status, 400, resp.body)

    def test_transfer_encoding_in_http10_is_not_kept_alive(self):
        # RFC 9112 §6.1: faulty framing; the connection must close after the message.
        with connect(self.proxy.port) as sock:
            sock.sendall(b"POST /ok HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
            resp = read_response(sock)
            if resp is not None:
                self.assertIn(resp.status, (200, 400))
            self.assertTrue(is_closed(sock))
        time.sleep(0.3)
        self.assertFalse([line for line in self.proxy.log_lines() if "/smuggled" in line])
        self.assertHealthy()

    def test_pipelined_good_bad_good(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n"
                         b"GET /o\x00k HTTP/1.1\r\nHost: svc\r\n\r\n"
                         b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
            first = read_response(sock)
            self.assertEqual(first.status, 200)
            second = read_response(sock)
            self.assertEqual(second.status, 400)
            self.assertTrue(is_closed(sock))
        self.assertHealthy()

    def test_huge_request_line_and_many_headers(self):
        for raw in (b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: svc\r\n\r\n",
                    b"GET /ok HTTP/1.1\r\nHost: svc\r\n" + b"X-H: v\r\n" * 20000 + b"\r\n"):
            data = exchange(self.proxy.port, raw)
            if data:
                self.assertEqual(statuses(data), [431])
        self.assertHealthy()


if __name__ == "__main__":
    unittest.main()
