"""End-to-end: bodies through `pillion proxy`: chunked requests and responses, close-delimited
responses re-framed for HTTP/1.1 clients, HTTP/1.0 clients, Expect: 100-continue, and 2 GiB
uploads and downloads streamed with bounded proxy memory (generated and hashed on the fly, never
held in memory by the test)."""

import hashlib
import json
import os
import socket
import sys
import threading
import time
import unittest

from test_fwd_support import SANITIZED, ProxyCase, RawClient, build_request, proc_memory
from upstream import pattern_chunks, pattern_sha256

BIG = (64 << 20) if SANITIZED else (2 << 30)   # the headline 2 GiB transfers
MID = (64 << 20) if SANITIZED else (512 << 20)  # the other framings, to keep the suite short
RSS_BOUND = (96 << 20) if SANITIZED else (8 << 20)


def write_pattern_file(path, n):
    with open(path, "wb") as f:
        for piece in pattern_chunks(n):
            f.write(piece)
    return pattern_sha256(n)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ChunkedAndCloseDelimited(ProxyCase):
    def test_chunked_request_body_with_curl_arrives_intact(self):
        n = 3 * 1024 * 1024 + 17
        path = self.path("body.bin")
        digest = write_pattern_file(path, n)
        p = self.curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                      "-H", "Content-Type: application/octet-stream", self.url + "/echo")
        doc = json.loads(p.stdout)
        self.assertTrue(doc["chunked"], "the chunked body is forwarded chunked")
        self.assertEqual(doc["body_length"], n)
        self.assertEqual(doc["body_sha256"], digest)

    def test_chunked_request_with_extensions_and_trailers(self):
        c = self.raw()
        body = (b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n"
                b"X-Checksum: abc\r\n\r\n")
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")], body))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["body_sha256"], hashlib.sha256(b"hello world").hexdigest())
        self.assertEqual(doc["trailers"], [["X-Checksum", "abc"]])
        c.request("GET", "/echo?next")
        self.assertEqual(c.read_response().json()["target"], "/echo?next")

    def test_chunked_response_then_next_request_on_same_connection(self):
        n = 2 * 1024 * 1024 + 3
        out1, out2 = self.path("a"), self.path("b")
        p = self.curl("-o", out1, "-o", out2, "-w", "%{num_connects}\n",
                      self.url + "/bytes/%d?chunked=1" % n, self.url + "/bytes/5000?chunked=1&chunk=1")
        self.assertEqual(p.stdout.decode().split(), ["1", "0"])
        self.assertEqual(file_sha256(out1), pattern_sha256(n))
        self.assertEqual(file_sha256(out2),
                         pattern_sha256(5000))

    def test_close_delimited_response_reframed_and_connection_kept(self):
        n = 1024 * 1024 + 9
        c = self.raw()
        c.request("GET", "/bytes/%d?close=1" % n)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual((r.header("transfer-encoding") or "").lower(), "chunked",
                         "an HTTP/1.1 client gets the close-delimited body chunked")
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(n))
        c.request("GET", "/echo?after-close-delimited")
        self.assertEqual(c.read_response().json()["target"], "/echo?after-close-delimited")

    def test_close_delimited_response_with_curl(self):
        n = 777777
        out1, out2 = self.path("a"), self.path("b")
        p = self.curl("-o", out1, "-o", out2, "-w", "%{num_connects}\n",
                      self.url + "/bytes/%d?close=1" % n, self.url + "/bytes/%d" % n)
        self.assertEqual(p.stdout.decode().split(), ["1", "0"])
        for out in (out1, out2):
            self.assertEqual(file_sha256(out),
                             pattern_sha256(n))

    def test_http10_client_gets_correct_bodies(self):
        n = 300001
        for mode in ("", "?chunked=1", "?close=1"):
            with self.subTest(mode=mode):
                out = self.path("h10")
                p = self.curl("-0", "-o", out, "-D", "-", self.url + "/bytes/%d%s" % (n, mode))
                head = p.stdout.decode("latin-1").lower()
                self.assertTrue(head.startswith("http/1."), head)
                self.assertNotIn("transfer-encoding: chunked", head,
                                 "an HTTP/1.0 client cannot take chunked")
                self.assertEqual(file_sha256(out),
                                 pattern_sha256(n))

    def test_http10_raw_chunked_upstream_body_is_decoded(self):
        with RawClient(self.port) as c:
            c.request("GET", "/bytes/100000?chunked=1&chunk=999", version="HTTP/1.0")
            r = c.read_response()
            self.assertIsNone(r.header("transfer-encoding"))
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(100000))

    def test_http10_keep_alive(self):
        c = self.raw()
        for i in range(3):
            c.request("GET", "/echo?k=%d" % i, [("Connection", "keep-alive")], version="HTTP/1.0")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["target"], "/echo?k=%d" % i)
            self.assertIn("keep-alive", (r.header("connection") or "").lower())


class ExpectContinue(ProxyCase):
    def test_curl_expect_100_continue_is_fast_and_intact(self):
        n = 2 * 1024 * 1024
        path = self.path("body.bin")
        digest = write_pattern_file(path, n)
        t0 = time.monotonic()
        # curl sends the body without a 100 after its expect timeout: 5 s, far from the
        # bound below, so only a missing 100 Continue makes this slow.
        p = self.curl("-H", "Expect: 100-continue", "--expect100-timeout", "5",
                      "--data-binary", "@" + path, "-w", "\n%{http_code}", self.url + "/echo")
        elapsed = time.monotonic() - t0
        body, _, code = p.stdout.rpartition(b"\n")
        self.assertEqual(code, b"200")
        doc = json.loads(body)
        self.assertEqual(doc["body_length"], n)
        self.assertEqual(doc["body_sha256"], digest)
        self.assertNotIn("expect", [h[0].lower() for h in doc["headers"]])
        self.assertLess(elapsed, 3.0, "curl waited for its expect timeout")

    def test_raw_client_gets_100_before_sending_body(self):
        c = self.raw(timeout=5)
        c.send(build_request("POST", "/echo", [("Expect", "100-continue"),
                                               ("Content-Length", "11")]))
        head = c.read_head()  # raises socket.timeout if no 100 comes
        self.assertTrue(head.startswith(b"HTTP/1.1 100"), head)
        c.send(b"hello world")
        c.sock.settimeout(5)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_sha256"], hashlib.sha256(b"hello world").hexdigest())
        c.request("GET", "/echo?next")
        self.assertEqual(c.read_response().json()["target"], "/echo?next")

    def test_interim_100_from_upstream_does_not_confuse_the_client(self):
        c = self.raw()
        c.send(build_request("POST", "/continue-aware", [("Expect", "100-continue"),
                                                         ("Content-Length", "5")]))
        c.sock.settimeout(5)
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 100"), head)
        c.sock.settimeout(5)
        c.send(b"12345")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], 5)
        c.request("GET", "/echo?next")
        self.assertEqual(c.read_response().json()["target"], "/echo?next")

    def test_upstream_100_without_expect(self):
        c = self.raw()
        c.request("POST", "/continue-aware", body=b"abc")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["body_length"], 3)
        c.request("GET", "/echo?next")
        self.assertEqual(c.read_response().json()["target"], "/echo?next")


class MemorySampler(threading.Thread):
    """Samples the proxy's VmRSS every 20 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, proc_memory(self.pid)[0])
            except (OSError, KeyError):
                return
            time.sleep(0.02)


class Hasher(threading.Thread):
    """Computes pattern_sha256(n) concurrently with the transfer (hashlib releases the GIL)."""

    def __init__(self, n):
        super().__init__(daemon=True)
        self.n, self.digest = n, None
        self.start()

    def result(self):
        self.join()
        return self.digest

    def run(self):
        self.digest = pattern_sha256(self.n)


class BoundedMemoryStreaming(ProxyCase):
    def warm_up(self):
        # Reach steady state (pool, buffers, log writer) before taking the baseline.
        for _ in range(3):
            self.get("/bytes/%d" % (1 << 20))
            self.get("/echo", method="POST", body=b"x" * (1 << 20))
        time.sleep(0.2)
        rss, hwm = proc_memory(self.proxy.pid)
        return rss, hwm

    def check_memory(self, base_rss, sampler):
        sampler.stop.set()
        sampler.join()
        rss, hwm = proc_memory(self.proxy.pid)
        growth = max(hwm, sampler.peak) - base_rss
        sys.stderr.write("[proxy RSS %.1f MiB -> peak %.1f MiB] " % (base_rss / 2**20,
                                                                   max(hwm, sampler.peak) / 2**20))
        self.assertLessEqual(growth, RSS_BOUND,
                             "proxy RSS grew by %.1f MiB (bound %.1f MiB)" %
                             (growth / 2**20, RSS_BOUND / 2**20))

    def _upload(self, chunked, size):
        base, _ = self.warm_up()
        expected = Hasher(size)
        sampler = MemorySampler(self.proxy.pid)
        sampler.start()
        c = self.raw(timeout=120)
        if chunked:
            c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]))
            for piece in pattern_chunks(size, chunk=1 << 20):
                c.send(b"%x\r\n" % len(piece))
                c.send(piece)
                c.send(b"\r\n")
            c.send(b"0\r\n\r\n")
        else:
            c.send(build_request("POST", "/echo", [("Content-Length", str(size))]))
            for piece in pattern_chunks(size, chunk=1 << 20):
                c.send(piece)
        r = c.read_response()
        self.check_memory(base, sampler)
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["body_length"], size)
        self.assertEqual(doc["body_sha256"], expected.result())

    def test_large_upload_content_length(self):
        self._upload(chunked=False, size=BIG)

    def test_large_upload_chunked(self):
        self._upload(chunked=True, size=MID)

    def _download(self, query, size):
        base, _ = self.warm_up()
        expected = Hasher(size)
        sampler = MemorySampler(self.proxy.pid)
        sampler.start()
        c = self.raw(timeout=120)
        c.request("GET", "/bytes/%d%s" % (size, query))
        head = c.read_head()
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        chunked = b"transfer-encoding: chunked" in head.lower()
        # A slow reader: the upstream writes as fast as it can; the proxy must push back.
        time.sleep(1.0)
        h = hashlib.sha256()
        total = 0
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        if chunked:
            while True:
                chunk = int(c.read_line().split(b";")[0], 16)
                if chunk == 0:
                    c.read_line()
                    break
                left = chunk
                if c.buf:
                    take = bytes(c.buf[:left])
                    del c.buf[:len(take)]
                    h.update(take)
                    left -= len(take)
                    total += len(take)
                while left:
                    n = c.sock.recv_into(view[:min(left, len(buf))])
                    self.assertGreater(n, 0, "EOF inside a chunk")
                    h.update(view[:n])
                    left -= n
                    total += n
                self.assertEqual(c.read_exact(2), b"\r\n")
        else:
            h.update(c.buf)
            total = len(c.buf)
            c.buf.clear()
            while total < size:
                n = c.sock.recv_into(view)
                self.assertGreater(n, 0, "EOF after %d bytes" % total)
                h.update(view[:n])
                total += n
        self.check_memory(base, sampler)
        self.assertEqual(total, size)
        self.assertEqual(h.hexdigest(), expected.result())
        c.request("GET", "/echo?after-download")
        self.assertEqual(c.read_response().json()["target"], "/echo?after-download")

    def test_pipelined_flood_from_a_client_that_does_not_read(self):
        # The client pipelines many large-response requests and reads nothing for a while: the
        # proxy must stop reading requests / responses instead of buffering them.
        base, _ = self.warm_up()
        count, size = (40, 1 << 20) if SANITIZED else (400, 1 << 20)
        sampler = MemorySampler(self.proxy.pid)
        sampler.start()
        c = self.raw(timeout=60)
        data = b"".join(build_request("GET", "/bytes/%d?i=%d" % (size, i)) for i in range(count))
        sender = threading.Thread(target=c.send, args=(data,), daemon=True)
        sender.start()
        time.sleep(1.5)
        digest = pattern_sha256(size)
        for i in range(count):
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), digest, "response %d" % i)
        sender.join(10)
        self.check_memory(base, sampler)

    def test_large_download_content_length(self):
        self._download("", BIG)

    def test_large_download_chunked(self):
        self._download("?chunked=1", MID)

    def test_large_download_close_delimited(self):
        self._download("?close=1", MID)


if __name__ == "__main__":
    unittest.main()
