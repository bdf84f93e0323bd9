"""Upstream keep-alive races: an upstream that closes (FIN or RST) an idle pooled connection must
not turn the next request into an error. An idempotent request that fails on a reused
connection is retried once on a fresh one; a connection the upstream closed well before it is
used should not be handed out at all."""

import time
import unittest

from misbehaving import (ProxyCase, connect, get, read_response, request, start_proxy,
                         start_upstream)

POST = b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabc"


class PoolRaces(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream)

    def prime(self, rst=False):
        # The upstream answers keep-alive, then closes that connection 50 ms later; it sits in
        # the proxy's pool.
        resp = get(self.proxy.port, "/ok-then-close?ms=50" + ("&rst=1" if rst else ""))
        self.assertEqual(resp.status, 200)
        time.sleep(0.3)

    def test_get_on_a_closed_pooled_connection_is_retried(self):
        for rst in (False, True):
            with self.subTest(rst=rst):
                before = self.proxy.stats()["upstream_rq_stale_retry"]
                self.prime(rst)
                resp = get(self.proxy.port, "/ok")
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, b"ok\n")
                entry = self.proxy.log_entry(resp.header("x-request-id"))
                self.assertEqual(entry["flags"], "-")
                self.assertIn(entry["attempts"], ("1", "2"))
                if entry["attempts"] == "2":
                    self.assertEqual(self.proxy.stats()["upstream_rq_stale_retry"], before + 1)

    def test_head_and_delete_are_retried_too(self):
        for method in (b"HEAD", b"DELETE", b"PUT"):
            with self.subTest(method=method):
                self.prime()
                with connect(self.proxy.port) as sock:
                    sock.sendall(method + b" /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
                    resp = read_response(sock, head_request=method == b"HEAD")
                self.assertEqual(resp.status, 200)

    def test_post_after_upstream_closed_idle_connection_succeeds(self):
        for rst in (False, True):
            with self.subTest(rst=rst):
                self.prime(rst)
                resp = request(self.proxy.port, POST)
                self.assertEqual(resp.status, 200, resp.body)

    def test_post_is_never_retried_on_a_fresh_connection_failure(self):
        # A failure on a fresh connection is not a pool race: 502, one attempt.
        resp = request(self.proxy.port, b"POST /close HTTP/1.1\r\nHost: svc\r\n"
                       b"Content-Length: 3\r\n\r\nabc")
        self.assertEqual(resp.status, 502)
        entry = self.proxy.log_entry(resp.header("x-request-id"))
        self.assertEqual(entry["attempts"], "1")
        self.assertEqual(entry["flags"], "UR")

    def test_get_failing_twice_is_502_after_two_attempts_at_most(self):
        resp = get(self.proxy.port, "/close")
        self.assertEqual(resp.status, 502)
        entry = self.proxy.log_entry(resp.header("x-request-id"))
        self.assertIn(entry["attempts"], ("1", "2"))

    def test_unrequested_upstream_bytes_never_answer_the_next_request(self):
        # The upstream sends a second, unrequested response after the first: a pooled connection
        # with leftover bytes must not be reused, or the next client gets "poisoned".
        resp = get(self.proxy.port, "/overlong")
        self.assertEqual((resp.status, resp.body), (200, b"ok\n"))
        time.sleep(0.2)
        for _ in range(3):
            resp = get(self.proxy.port, "/ok")
            self.assertEqual(resp.body, b"ok\n")
            self.assertIsNone(resp.header("x-poison"))
            self.assertEqual(resp.header("x-seen-request-id"), resp.header("x-request-id"))

    def test_pool_disabled_never_reuses(self):
        proxy = start_proxy(self, self.upstream, name="nopool", pool={"max_idle": 0})
        for _ in range(3):
            resp = get(proxy.port, "/ok-then-close?ms=10")
            self.assertEqual(resp.status, 200)
            time.sleep(0.05)
            self.assertEqual(request(proxy.port, POST).status, 200)
        stats = proxy.stats()
        self.assertEqual(stats["upstream_rq_pool_reused"], 0)
        self.assertEqual(stats["upstream_rq_stale_retry"], 0)


if __name__ == "__main__":
    unittest.main()
