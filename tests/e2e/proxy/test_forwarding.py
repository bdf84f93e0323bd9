"""End-to-end: `pillion proxy` forwarding HTTP/1.1 between real clients (curl, raw sockets) and the
test upstream (tests/e2e/upstream.py): request identity, header rewriting, keep-alive and the
upstream pool, HEAD/204/304 framing, Upgrade tunnels and pipelining."""

import json
import os
import socket
import time
import unittest

from test_fwd_support import (TRACEPARENT, UUID4, ProxyCase, RawClient, build_request, header,
                              header_all, list_values, log_field)


class RequestIdentity(ProxyCase):
    def test_generated_request_id_is_uuid4_forwarded_and_echoed(self):
        seen = set()
        for _ in range(20):
            r = self.get("/echo")
            self.assertEqual(r.status, 200)
            rid = r.header("x-request-id")
            self.assertIsNotNone(rid, "response lacks x-request-id")
            self.assertRegex(rid, UUID4)
            upstream_ids = header_all(r.json()["headers"], "x-request-id")
            self.assertEqual(upstream_ids, [rid], "upstream must get exactly the echoed id")
            seen.add(rid)
        self.assertEqual(len(seen), 20, "ids must be unique")
        lines = self.log_lines(at_least=20)
        logged = {log_field(l, "request_id") for l in lines}
        self.assertTrue(seen <= logged, "every id appears in the access log")

    def test_client_request_id_is_kept(self):
        r = self.get("/echo", [("X-Request-ID", "client-chosen-id-42")])
        self.assertEqual(r.status, 200)
        self.assertEqual(header_all(r.json()["headers"], "x-request-id"), ["client-chosen-id-42"])
        self.assertEqual(header_all(r.headers, "x-request-id"), ["client-chosen-id-42"])
        line = self.log_lines(at_least=1)[-1]
        self.assertEqual(log_field(line, "request_id"), "client-chosen-id-42")

    def test_upstream_request_id_on_response_is_not_duplicated(self):
        r = self.get("/echo", [("X-Request-ID", "abc")])
        self.assertEqual(len(header_all(r.headers, "x-request-id")), 1)

    def test_traceparent_keeps_trace_id_with_new_span_per_hop(self):
        incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        spans = set()
        for _ in range(5):
            r = self.get("/echo", [("traceparent", incoming)])
            values = header_all(r.json()["headers"], "traceparent")
            self.assertEqual(len(values), 1, values)
            m = TRACEPARENT.match(values[0])
            self.assertIsNotNone(m, values[0])
            trace, span, flags = m.groups()
            self.assertEqual(trace, "0af7651916cd43dd8448eb211c80319c")
            self.assertNotEqual(span, "b7ad6b7169203331")
            self.assertNotEqual(span, "0" * 16)
            self.assertEqual(flags, "01", "sampled flag is propagated")
            spans.add(span)
        self.assertEqual(len(spans), 5, "a new span id for every request")

    def test_traceparent_started_when_absent(self):
        traces = set()
        for _ in range(5):
            r = self.get("/echo")
            values = header_all(r.json()["headers"], "traceparent")
            self.assertEqual(len(values), 1, values)
            m = TRACEPARENT.match(values[0])
            self.assertIsNotNone(m, "not a valid traceparent: %r" % values[0])
            self.assertNotEqual(m.group(1), "0" * 32)
            self.assertNotEqual(m.group(2), "0" * 16)
            traces.add(m.group(1))
        self.assertEqual(len(traces), 5, "each new request starts its own trace")

    def test_invalid_traceparent_is_replaced_with_a_new_trace(self):
        bad = [
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # upper case
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",   # short trace id
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ]
        for value in bad:
            with self.subTest(traceparent=value):
                r = self.get("/echo", [("traceparent", value)])
                self.assertEqual(r.status, 200)
                values = header_all(r.json()["headers"], "traceparent")
                self.assertEqual(len(values), 1, values)
                m = TRACEPARENT.match(values[0])
                self.assertIsNotNone(m, "not a valid traceparent: %r" % values[0])
                self.assertNotIn(m.group(1), value.lower(), "invalid trace id must not survive")
                self.assertNotEqual(m.group(1), "0" * 32)


    def test_two_proxies_in_a_row(self):
        # client -> proxy B -> proxy A -> upstream: one request id end to end, the trace id kept
        # with a new span at each hop, one Via entry and one X-Forwarded-For entry per hop.
        incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        first_hop = self.url
        self.start_proxy(first_hop)
        r = self.get("/echo", [("traceparent", incoming)])
        self.assertEqual(r.status, 200)
        seen = r.json()["headers"]
        rid = r.header("x-request-id")
        self.assertRegex(rid, UUID4)
        self.assertEqual(header_all(seen, "x-request-id"), [rid])
        m = TRACEPARENT.match(header(seen, "traceparent"))
        self.assertEqual(m.group(1), "0af7651916cd43dd8448eb211c80319c")
        self.assertNotEqual(m.group(2), "b7ad6b7169203331")
        self.assertEqual(list_values(seen, "via"), ["1.1 pillion", "1.1 pillion"])
        self.assertEqual(list_values(seen, "x-forwarded-for"), ["127.0.0.1", "127.0.0.1"])
        self.assertEqual(header_all(seen, "x-forwarded-proto"), ["http"])


class HeaderRewriting(ProxyCase):
    def test_hop_by_hop_request_headers_removed_and_proxy_headers_added(self):
        r = self.get("/echo", [
            ("Connection", "keep-alive, X-Custom-Hop"),
            ("X-Custom-Hop", "must go"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-Foo"),
            ("Upgrade", "h2c"),  # not named in Connection: not an upgrade, just a hop header
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-End-To-End", "stays"),
        ])
        self.assertEqual(r.status, 200)
        seen = r.json()["headers"]
        names = [n.lower() for n, _ in seen]
        for hop in ("connection", "x-custom-hop", "keep-alive", "te", "trailer", "upgrade",
                    "proxy-authorization", "proxy-connection", "expect"):
            self.assertNotIn(hop, names, "%s reached the upstream: %s" % (hop, seen))
        self.assertEqual(header(seen, "x-end-to-end"), "stays")
        self.assertEqual(header(seen, "host"), "test.local", "Host is forwarded unchanged")
        self.assertEqual(header_all(seen, "via"), ["1.1 pillion"])
        self.assertEqual(header_all(seen, "x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(header_all(seen, "x-forwarded-proto"), ["http"])

    def test_connection_header_repeated_names_are_all_removed(self):
        r = self.get("/echo", [("Connection", "X-A"), ("Connection", "x-b , X-C"),
                               ("X-A", "1"), ("X-B", "2"), ("X-C", "3"), ("X-D", "4")])
        names = [n.lower() for n, _ in r.json()["headers"]]
        for hop in ("x-a", "x-b", "x-c", "connection"):
            self.assertNotIn(hop, names)
        self.assertIn("x-d", names)

    def test_connection_naming_many_headers_removes_them_all(self):
        names = ["X-Hop-%02d" % i for i in range(24)]
        headers = [("Connection", ", ".join(names))] + [(n, "v") for n in names]
        r = self.get("/echo", headers)
        self.assertEqual(r.status, 200)
        got = {n.lower() for n, _ in r.json()["headers"]}
        leaked = [n for n in names if n.lower() in got]
        self.assertEqual(leaked, [], "headers named by Connection reached the upstream")

    def test_existing_forwarded_headers_are_extended_not_replaced(self):
        r = self.get("/echo", [("X-Forwarded-For", "203.0.113.7"),
                               ("X-Forwarded-Proto", "https"), ("Via", "1.0 fred")])
        seen = r.json()["headers"]
        self.assertEqual(list_values(seen, "x-forwarded-for"), ["203.0.113.7", "127.0.0.1"])
        self.assertEqual(header_all(seen, "x-forwarded-proto"), ["https"])
        self.assertEqual(list_values(seen, "via"), ["1.0 fred", "1.1 pillion"])

    def test_client_address_is_last_with_repeated_forwarded_for(self):
        r = self.get("/echo", [("X-Forwarded-For", "198.51.100.1"),
                               ("X-Forwarded-For", "198.51.100.2")])
        self.assertEqual(list_values(r.json()["headers"], "x-forwarded-for"),
                         ["198.51.100.1", "198.51.100.2", "127.0.0.1"])

    def test_hop_by_hop_response_headers_removed(self):
        r = self.get("/resp-headers")
        self.assertEqual(r.status, 200)
        names = [n.lower() for n, _ in r.headers]
        for hop in ("x-hop", "keep-alive", "upgrade", "proxy-connection"):
            self.assertNotIn(hop, names, "%s reached the client: %s" % (hop, r.headers))
        self.assertEqual(r.header("x-end-to-end"), "kept")
        # The upstream's Connection header is not forwarded either (the proxy may add its own).
        for v in header_all(r.headers, "connection"):
            self.assertNotIn("x-hop", v.lower())

    def test_http10_request_is_forwarded_as_http11_with_via_10(self):
        with RawClient(self.port) as c:
            c.request("GET", "/echo", version="HTTP/1.0")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertEqual(doc["version"], "HTTP/1.1")
        self.assertEqual(list_values(doc["headers"], "via"), ["1.0 pillion"])


class KeepAliveAndPool(ProxyCase):
    def test_downstream_keep_alive_with_curl(self):
        p = self.curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n",
                      self.url + "/echo?a", self.url + "/echo?b")
        self.assertEqual(p.stdout.decode().split(), ["1", "0"])

    def test_many_requests_on_one_downstream_connection(self):
        c = self.raw()
        for i in range(30):
            c.request("GET", "/echo?i=%d" % i)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["target"], "/echo?i=%d" % i)
        # All 30 came over one client connection (one client address:port in the log).
        lines = [l for l in self.log_lines(at_least=30) if "/echo?i=" in l]
        self.assertEqual(len(lines), 30)
        self.assertEqual({log_field(l, "client") for l in lines},
                         {"127.0.0.1:%d" % c.sock.getsockname()[1]})

    def test_upstream_connection_is_pooled_across_client_connections(self):
        conns = set()
        for i in range(25):
            r = self.get("/echo?i=%d" % i)  # a new client connection every time
            self.assertEqual(r.status, 200)
            conns.add(r.json()["conn"])
        self.assertEqual(len(conns), 1, "sequential requests should share one upstream conn")
        self.assertEqual(self.up.connections_opened(), 1)
        stats = self.stats()
        self.assertEqual(stats["upstream_cx_total"], 1)
        self.assertGreaterEqual(stats["upstream_rq_pool_reused"], 24)

    def test_stale_pooled_connection_closed_by_upstream_is_replaced(self):
        r = self.get("/keepalive-close-after-response")
        self.assertEqual(r.status, 200)
        first = r.json()["conn"]
        time.sleep(0.3)  # the upstream's FIN reaches the pooled connection
        r = self.get("/echo")
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.json()["conn"], first)
        stats = self.stats()
        self.assertGreaterEqual(stats["upstream_cx_total"], 2)
        self.assertEqual(stats.get("response_flag_UF", 0) + stats.get("response_flag_UR", 0), 0)

    def test_stale_connection_idle_over_a_second_is_checked_before_reuse(self):
        r = self.get("/keepalive-close-after-response?after=100")
        self.assertEqual(r.status, 200)
        time.sleep(1.4)
        for i in range(3):
            r = self.get("/echo?after-idle=%d" % i)
            self.assertEqual(r.status, 200, r.body)
        stats = self.stats()
        self.assertEqual(stats["downstream_rq_5xx"], 0)
        # The FIN was seen before reuse: no request was sent on the dead connection.
        self.assertEqual(stats["upstream_rq_stale_retry"], 0)
        self.assertEqual(len([q for q in self.up.requests if q["target"] == "/echo?after-idle=0"]),
                         1)
        line = [l for l in self.log_lines(at_least=4) if "after-idle=0" in l][0]
        self.assertEqual(log_field(line, "attempts"), "1")

    def _stale_retry(self, rst):
        r = self.get("/stale-next?rst=%d" % rst)
        self.assertEqual(r.status, 200)
        first = r.json()["conn"]
        # The pooled connection is reused, and the upstream closes it on this request without a
        # byte of response: the proxy must retry the GET once on a fresh connection.
        r = self.get("/echo?after-stale")
        self.assertEqual(r.status, 200, r.body)
        doc = r.json()
        self.assertNotEqual(doc["conn"], first)
        self.assertEqual(doc["target"], "/echo?after-stale")
        stats = self.stats()
        self.assertEqual(stats["upstream_rq_stale_retry"], 1)
        self.assertEqual(stats["downstream_rq_5xx"], 0)
        tries = [q for q in self.up.requests if q["target"] == "/echo?after-stale"]
        self.assertEqual(len(tries), 2, "sent once on the stale connection, once on a fresh one")
        line = [l for l in self.log_lines(at_least=2) if "after-stale" in l][-1]
        self.assertEqual(log_field(line, "status"), "200")

    def test_stale_connection_fin_is_retried_once_for_get(self):
        self._stale_retry(rst=0)

    def test_stale_connection_rst_is_retried_once_for_get(self):
        self._stale_retry(rst=1)

    def test_post_with_body_is_not_retried_on_stale_connection(self):
        r = self.get("/stale-next")
        self.assertEqual(r.status, 200)
        r = self.get("/echo?post", method="POST", body=b"x" * 100)
        self.assertEqual(r.status, 502, "a POST must not be replayed")
        posts = [q for q in self.up.requests if q["target"] == "/echo?post"]
        self.assertEqual(len(posts), 1, "the upstream got the POST exactly once")
        self.assertEqual(self.stats()["upstream_rq_stale_retry"], 0)
        self.assertIn("request_id", r.body.decode())
        # And the proxy is fine afterwards.
        self.assertEqual(self.get("/echo").status, 200)


class BodilessResponses(ProxyCase):
    def _then_next_works(self, c):
        c.request("GET", "/echo?next")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["target"], "/echo?next")
        self.assertEqual(c.pending(), b"", "stray bytes after the response")

    def test_head_has_no_body_and_connection_continues(self):
        c = self.raw()
        for target in ("/head-ok", "/head-ok?chunked=1", "/bytes/1000000", "/echo"):
            with self.subTest(target=target):
                c.request("HEAD", target)
                r = c.read_response("HEAD")
                self.assertEqual(r.status, 200)
                if target == "/head-ok":
                    self.assertEqual(r.header("content-length"), "12345")
                self._then_next_works(c)

    def test_head_with_curl_twice_on_one_connection(self):
        p = self.curl("-I", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                      self.url + "/head-ok", self.url + "/head-ok")
        self.assertEqual(p.stdout.decode().split("\n")[:2], ["200 1", "200 0"])

    def test_204_and_304_have_no_body_and_connection_continues(self):
        c = self.raw()
        for target in ("/status/204", "/status/304", "/status/304?cl=5"):
            with self.subTest(target=target):
                c.request("GET", target)
                r = c.read_response()
                self.assertEqual(r.status, int(target.split("/")[2][:3]))
                self.assertIsNone(r.header("transfer-encoding"),
                                  "a bodiless response must not be re-framed as chunked")
                self._then_next_works(c)

    def test_other_statuses_are_forwarded(self):
        for code in (201, 404, 418, 500, 503):
            with self.subTest(code=code):
                r = self.get("/status/%d" % code)
                self.assertEqual(r.status, code)
                self.assertEqual(r.body, b"status %d\n" % code)


class Upgrade(ProxyCase):
    WS_HEAD = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]

    def test_websocket_upgrade_tunnels_bytes_both_ways(self):
        c = self.raw()
        c.request("GET", "/ws?greet=hello-from-upstream", self.WS_HEAD)
        r = c.read_response()
        self.assertEqual(r.status, 101)
        self.assertEqual((r.header("upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", (r.header("connection") or "").lower())
        seen = self.up.last_request("/ws")["headers"]
        self.assertEqual((header(seen, "upgrade") or "").lower(), "websocket")
        self.assertIn("upgrade", (header(seen, "connection") or "").lower())
        self.assertEqual(header(seen, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==")
        # Bytes the upstream wrote together with its 101 head.
        self.assertEqual(c.read_exact(len(b"hello-from-upstream")), b"hello-from-upstream")
        for msg in (b"\x81\x05hello", b"ping", bytes(range(256)) * 1024):
            c.send(msg)
            self.assertEqual(c.read_exact(len(msg)), msg)
        # Half-close from the client: the upstream echo closes, and so does the tunnel.
        c.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(c.read_until_eof(), b"")
        self.assertEqual(self.stats()["upgrades_total"], 1)

    def test_bytes_sent_right_after_upgrade_request_are_tunnelled(self):
        c = self.raw()
        c.send(build_request("GET", "/ws", self.WS_HEAD) + b"early-bytes")
        r = c.read_response()
        self.assertEqual(r.status, 101)
        self.assertEqual(c.read_exact(len(b"early-bytes")), b"early-bytes")

    def test_upgrade_declined_by_upstream_keeps_http(self):
        c = self.raw()
        c.request("GET", "/echo?upgrade-declined", self.WS_HEAD)
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["target"], "/echo?upgrade-declined")
        c.request("GET", "/echo?after")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["target"], "/echo?after")


class Pipelining(ProxyCase):
    def test_three_pipelined_requests_answered_in_order(self):
        c = self.raw()
        c.send(build_request("GET", "/delay/200?n=1") + build_request("GET", "/echo?n=2") +
               build_request("GET", "/delay/50?n=3"))
        targets = [c.read_response().json()["target"] for _ in range(3)]
        self.assertEqual(targets, ["/delay/200?n=1", "/echo?n=2", "/delay/50?n=3"])

    def test_pipelined_mix_of_methods_and_bodies(self):
        c = self.raw()
        c.send(build_request("POST", "/echo?n=1", body=b"first body") +
               build_request("HEAD", "/head-ok") +
               build_request("GET", "/status/204") +
               build_request("POST", "/echo?n=4", [("Transfer-Encoding", "chunked")],
                             b"4\r\nabcd\r\n0\r\n\r\n") +
               build_request("GET", "/bytes/1000?chunked=1&chunk=7"))
        r1 = c.read_response()
        self.assertEqual(r1.json()["body_length"], 10)
        r2 = c.read_response("HEAD")
        self.assertEqual((r2.status, r2.body), (200, b""))
        r3 = c.read_response()
        self.assertEqual(r3.status, 204)
        r4 = c.read_response()
        self.assertEqual(r4.json()["target"], "/echo?n=4")
        self.assertEqual(r4.json()["body_length"], 4)
        r5 = c.read_response()
        self.assertEqual(len(r5.body), 1000)
        self.assertEqual(c.pending(), b"")

    def test_pipelined_requests_each_logged_once(self):
        c = self.raw()
        c.send(b"".join(build_request("GET", "/echo?p=%d" % i) for i in range(10)))
        for i in range(10):
            self.assertEqual(c.read_response().json()["target"], "/echo?p=%d" % i)
        lines = self.log_lines(at_least=10)
        for i in range(10):
            self.assertEqual(sum(1 for l in lines if "path=/echo?p=%d " % i in l
                                 or log_field(l, "path") in ("/echo?p=%d" % i,)), 1,
                             "request %d logged once" % i)


if __name__ == "__main__":
    unittest.main()
