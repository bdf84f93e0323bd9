"""Slow clients cannot hold the proxy: a head trickled byte by byte gets 408 after
timeouts.request_headers, an idle keep-alive connection is closed after timeouts.idle, a client
that stops reading a large response is dropped after timeouts.stream_idle; and none of these
timeouts cuts a slow exchange that is still making progress."""

import socket
import time
import unittest

from misbehaving import ProxyCase, connect, is_closed, read_response, start_proxy, start_upstream


def read_until_closed(sock, limit_bytes, timeout=5.0):
    """Reads as fast as possible; returns (bytes read, closed before limit_bytes)."""
    sock.settimeout(timeout)
    total = 0
    while total < limit_bytes:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            return total, True
        except socket.timeout:
            return total, False
        if not data:
            return total, True
        total += len(data)
    return total, False


class SlowClients(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream,
                                 timeouts={"request_headers": "1s", "idle": "1s",
                                           "stream_idle": "1s"})

    def test_slowloris_gets_408_after_request_headers_timeout(self):
        head = b"GET /ok HTTP/1.1\r\nHost: svc\r\nX-Slow: " + b"a" * 200
        with connect(self.proxy.port) as sock:
            start = time.monotonic()
            resp = None
            for byte in head:
                try:
                    sock.send(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
                sock.settimeout(0.05)
                try:
                    sock._pending = sock.recv(65536)
                except socket.timeout:
                    continue
                break
            resp = read_response(sock)
            elapsed = time.monotonic() - start
            self.assertLocalReply(self.proxy, resp, 408, "RT", ["request head"])
            self.assertTrue(is_closed(sock))
        # The trickle did not extend the deadline.
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.0)
        self.assertGreaterEqual(self.proxy.stats()["response_flag_RT"], 1)
        self.assertServes(self.proxy)

    def test_many_slowloris_connections_do_not_block_others(self):
        socks = [connect(self.proxy.port) for _ in range(50)]
        try:
            for sock in socks:
                sock.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n")
            # While they hang, a normal client is served at once.
            start = time.monotonic()
            self.assertServes(self.proxy)
            self.assertLess(time.monotonic() - start, 0.5)
            for sock in socks:
                resp = read_response(sock, timeout=4)
                self.assertEqual(resp.status, 408)
                self.assertTrue(is_closed(sock))
        finally:
            for sock in socks:
                sock.close()
        self.proxy.wait_stat("downstream_cx_active", lambda v: v == 0)

    def test_idle_keepalive_connection_is_closed_after_idle(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
            self.assertEqual(read_response(sock).status, 200)
            start = time.monotonic()
            self.assertTrue(is_closed(sock, timeout=4))
            elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.0)
        self.proxy.wait_stat("downstream_cx_active", lambda v: v == 0)

    def test_connection_that_never_sends_is_closed_after_idle_without_a_response(self):
        with connect(self.proxy.port) as sock:
            start = time.monotonic()
            self.assertTrue(is_closed(sock, timeout=4))  # EOF, no 408 for an empty connection
            elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.0)

    def test_keepalive_requests_within_idle_keep_the_connection(self):
        with connect(self.proxy.port) as sock:
            for _ in range(4):
                sock.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
                self.assertEqual(read_response(sock).status, 200)
                time.sleep(0.6)  # 4 x 0.6 s > idle, but each gap < idle

    def test_client_that_stops_reading_is_dropped_after_stream_idle(self):
        size = 256 << 20
        with connect(self.proxy.port) as sock:
            sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: svc\r\n\r\n" % size)
            start = time.monotonic()
            sock.settimeout(5)
            first = sock.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:100])
            rid = [line.split(b":", 1)[1].strip().decode() for line in
                   first.split(b"\r\n\r\n")[0].split(b"\r\n")
                   if line.lower().startswith(b"x-request-id:")][0]
            # Stop reading: socket buffers fill, nothing moves, stream_idle (1 s) fires.
            entry = self.proxy.log_entry(rid, timeout=6)
            self.assertLess(time.monotonic() - start, 4.0)
            self.assertEqual(entry["status"], "200")
            self.assertNotEqual(entry["flags"], "-")
            total, closed = read_until_closed(sock, size)
            self.assertTrue(closed, "the stalled download was not dropped")
            self.assertLess(total, size)
        self.proxy.wait_stat("downstream_cx_active", lambda v: v == 0)
        self.assertServes(self.proxy)

    def test_stream_idle_drop_is_flagged_si(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: svc\r\n\r\n" % (256 << 20))
            sock.settimeout(5)
            first = sock.recv(4096)
            rid = [line.split(b":", 1)[1].strip().decode() for line in
                   first.split(b"\r\n\r\n")[0].split(b"\r\n")
                   if line.lower().startswith(b"x-request-id:")][0]
            entry = self.proxy.log_entry(rid, timeout=6)
        self.assertEqual(entry["flags"], "SI")
        self.assertGreaterEqual(self.proxy.stats()["response_flag_SI"], 1)

    def test_stalled_upload_fails_after_stream_idle_as_si(self):
        with connect(self.proxy.port) as sock:
            start = time.monotonic()
            sock.sendall(b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 1000\r\n\r\nabc")
            resp = read_response(sock)
            elapsed = time.monotonic() - start
            if resp is not None:
                self.assertNotEqual(resp.status, 504)
                entry = self.proxy.log_entry(resp.header("x-request-id"))
                self.assertIn("SI", entry["flags"].split(","))
            self.assertTrue(is_closed(sock))
        self.assertLess(elapsed, 2.5)

    def test_stalled_upload_is_cut_after_stream_idle(self):
        with connect(self.proxy.port) as sock:
            start = time.monotonic()
            sock.sendall(b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 1000\r\n\r\nabc")
            resp = read_response(sock)
            elapsed = time.monotonic() - start
            if resp is not None:
                self.assertGreaterEqual(resp.status, 400)
            self.assertTrue(is_closed(sock))
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)
        self.proxy.wait_stat("downstream_cx_active", lambda v: v == 0)
        self.assertServes(self.proxy)

    def test_slow_but_steady_response_is_not_cut_by_stream_idle(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"GET /slow-body?ms=400 HTTP/1.1\r\nHost: svc\r\n\r\n")
            resp = read_response(sock, timeout=5)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b"s" * 50)  # 2 s in total, 0.4 s between bytes

    def test_slow_but_steady_upload_is_not_cut(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\n")
            for _ in range(5):
                time.sleep(0.4)
                sock.sendall(b"u")
            resp = read_response(sock, timeout=5)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("x-body-bytes"), "5")

    def test_request_in_flight_longer_than_idle_is_not_cut(self):
        # idle guards the time between requests only (stream_idle, which also covers the wait
        # for the response head, is longer here).
        proxy = start_proxy(self, self.upstream, name="idle-only",
                            timeouts={"request_headers": "1s", "idle": "1s",
                                      "stream_idle": "10s"})
        with connect(proxy.port) as sock:
            sock.sendall(b"GET /delay?ms=2000 HTTP/1.1\r\nHost: svc\r\n\r\n")
            resp = read_response(sock, timeout=5)
            self.assertEqual(resp.status, 200)


if __name__ == "__main__":
    unittest.main()
