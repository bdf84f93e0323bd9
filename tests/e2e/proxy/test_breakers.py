"""A cluster's circuit breakers through the real binary: over max_requests, max_connections or
max_pending_requests a request gets 503 with `x-pillion-overloaded: true` and flag UO at once
(nothing queues), only the allowed number reach the upstream, the breaker recovers when the
load goes, and /clusters shows each breaker's active count, limit and overflows."""

import json
import socket
import threading
import time
import unittest

from fleet import fleet
from misbehaving import ProxyCase, closed_port, get, start_proxy


def cluster(name, *addresses, extra=""):
    return "- name: %s\n  endpoints: [%s]\n%s" % (
        name, ", ".join('"%s"' % a for a in addresses),
        "".join("  %s\n" % line for line in extra.strip("\n").splitlines()))


def blackhole():
    """A loopback listener whose accept queue is full: a further connect to it gets no SYN-ACK
    and hangs until the connector's own timeout (the SYN is dropped, not refused). Returns
    (address, sockets to close)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = [server]
    # Fill the accept queue (backlog 0 still queues one; a few more for slack).
    for _ in range(3):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(c)
    time.sleep(0.2)
    return "127.0.0.1:%d" % port, held


def connects_hang(address, timeout=0.5):
    host, port = address.rsplit(":", 1)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect((host, int(port)))
        return False
    except socket.timeout:
        return True
    except OSError:
        return False
    finally:
        probe.close()


class BreakerCase(ProxyCase):
    def proxy_for(self, clusters, routes, **config):
        config.setdefault("workers", 1)
        self.proxy = start_proxy(self, closed_port(), extra_routes=routes,
                                 extra_clusters=clusters, **config)
        return self.proxy

    def timed_get(self, path, results, i, barrier=None):
        if barrier is not None:
            barrier.wait()
        started = time.monotonic()
        try:
            resp = get(self.proxy.port, path)
        except Exception as e:  # noqa: BLE001 - reported by the test
            resp = e
        results[i] = (resp, time.monotonic() - started)

    def concurrently(self, path, count, stagger=0.0):
        results = [None] * count
        barrier = threading.Barrier(count) if not stagger else None
        threads = []
        for i in range(count):
            t = threading.Thread(target=self.timed_get, args=(path, results, i, barrier))
            t.start()
            threads.append(t)
            if stagger:
                time.sleep(stagger)
        return threads, results

    def first_then_rest(self, path, count, holds, timeout=5.0):
        """Starts one request alone, waits until holds() says it occupies what the breaker
        guards, then starts the count - 1 others together."""
        results = [None] * count
        first = threading.Thread(target=self.timed_get, args=(path, results, 0))
        first.start()
        threads = [first]
        deadline = time.monotonic() + timeout
        while not holds():
            self.assertLess(time.monotonic(), deadline, "the first request never held its slot")
            time.sleep(0.02)
        barrier = threading.Barrier(count - 1) if count > 2 else None
        for i in range(1, count):
            t = threading.Thread(target=self.timed_get, args=(path, results, i, barrier))
            t.start()
            threads.append(t)
        return threads, results

    def join(self, threads):
        for t in threads:
            t.join(20)

    def assertOverloaded(self, resp, took, limit_name, picked_endpoint=False, held=1.0):
        self.assertFalse(isinstance(resp, Exception), resp)
        self.assertEqual(resp.status, 503, resp.raw)
        self.assertEqual(resp.header("x-pillion-overloaded"), "true", resp.raw)
        # The held requests last `held` s: anything well under that was not queued behind them.
        self.assertLess(took, held / 2)
        self.assertIn(limit_name, resp.body.decode())
        entry = self.proxy.log_entry(resp.header("x-request-id"))
        self.assertIn("UO", entry["flags"].split(","), entry)
        if not picked_endpoint:  # max_requests trips before an endpoint is picked
            self.assertEqual(entry["upstream"], "-", entry)

    def breakers(self, name):
        status, text = self.proxy.admin("/clusters")
        self.assertEqual(status, 200, text)
        for item in json.loads(text)["clusters"]:
            if item["name"] == name:
                return item["circuit_breakers"]
        self.fail("cluster %s not in /clusters: %s" % (name, text))


class MaxRequests(BreakerCase):
    def setUp(self):
        super().setUp()
        self.a, = fleet(self, "a")
        self.proxy_for(cluster("guarded", self.a.address,
                               extra="circuit_breakers: { max_requests: 2 }"),
                       "- { match: { path_prefix: /g/ }, cluster: guarded }")

    def test_trips_sheds_at_once_and_recovers(self):
        self.a.set_mode(delay_ms=1000)
        before = self.proxy.stats().get("upstream_rq_overflow", 0)
        threads, results = self.concurrently("/g/x", 6)
        # While the two admitted requests wait on the upstream, /clusters shows the breaker
        # full.
        deadline = time.monotonic() + 0.8
        breakers = self.breakers("guarded")
        while breakers["requests"]["active"] != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            breakers = self.breakers("guarded")
        self.assertEqual(breakers["requests"]["active"], 2, breakers)
        self.assertEqual(breakers["requests"]["limit"], 2, breakers)
        self.join(threads)
        ok = [(r, t) for r, t in results if getattr(r, "status", None) == 200]
        shed = [(r, t) for r, t in results if getattr(r, "status", None) != 200]
        self.assertEqual(len(ok), 2, results)
        self.assertEqual(len(shed), 4, results)
        for resp, took in shed:
            self.assertOverloaded(resp, took, "max_requests")
        for resp, took in ok:
            self.assertGreaterEqual(took, 0.95)
        stats = self.a.stats()
        self.assertEqual(stats["requests"], 2, stats)
        self.assertEqual(stats["max_active"], 2, stats)
        self.assertEqual(self.proxy.stats()["upstream_rq_overflow"] - before, 4)
        breakers = self.breakers("guarded")
        self.assertEqual(breakers["requests"]["active"], 0, breakers)
        self.assertEqual(breakers["requests"]["overflows"], 4, breakers)
        self.assertEqual(breakers["connections"]["overflows"], 0, breakers)
        # It recovers: with the load gone, requests pass again.
        self.a.set_mode()
        for _ in range(3):
            self.assertEqual(get(self.proxy.port, "/g/x").status, 200)

    def test_abandoned_requests_give_their_slots_back(self):
        self.a.set_mode(delay_ms=1000)
        socks = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", self.proxy.port))
            s.sendall(b"GET /g/x HTTP/1.1\r\nHost: svc\r\n\r\n")
            socks.append(s)
        deadline = time.monotonic() + 2
        while self.breakers("guarded")["requests"]["active"] != 2:
            self.assertLess(time.monotonic(), deadline, self.breakers("guarded"))
            time.sleep(0.02)
        for s in socks:
            s.close()  # the clients give up while their requests wait on the upstream
        deadline = time.monotonic() + 3
        while self.breakers("guarded")["requests"]["active"] != 0:
            self.assertLess(time.monotonic(), deadline, self.breakers("guarded"))
            time.sleep(0.05)
        self.a.set_mode()
        self.assertEqual(get(self.proxy.port, "/g/x").status, 200)
        self.assertEqual(get(self.proxy.port, "/g/x").status, 200)

    def test_sequential_load_never_trips(self):
        for _ in range(20):
            self.assertEqual(get(self.proxy.port, "/g/x").status, 200)
        self.assertEqual(self.breakers("guarded")["requests"]["overflows"], 0)


class MaxConnections(BreakerCase):
    def test_second_connection_is_refused_while_the_first_is_busy(self):
        a, = fleet(self, "a")
        a.set_mode(delay_ms=2000)
        self.proxy_for(cluster("one", a.address, extra="circuit_breakers: { max_connections: 1 }"),
                       "- { match: { path_prefix: /c/ }, cluster: one }")
        # The second starts once the first is at the upstream, holding the one connection.
        threads, results = self.first_then_rest("/c/x", 2, lambda: a.stats()["active"] == 1)
        self.join(threads)
        (first, first_took), (second, second_took) = results
        self.assertEqual(first.status, 200, first.raw)
        self.assertGreaterEqual(first_took, 1.95)
        self.assertOverloaded(second, second_took, "max_connections", True, held=2.0)
        self.assertEqual(a.stats()["requests"], 1)
        breakers = self.breakers("one")
        self.assertEqual(breakers["connections"]["limit"], 1)
        self.assertEqual(breakers["connections"]["overflows"], 1, breakers)
        # The first connection, now idle in the pool, serves the next request.
        a.set_mode()
        self.assertEqual(get(self.proxy.port, "/c/x").status, 200)

    # FINDING (upstream_pool.cc / Session::connect): an idle pooled connection keeps its
    # max_connections slot until idle_timeout (60 s), so with max_connections: 1 a request to
    # another endpoint (or from another worker) is refused with UO although nothing is in
    # flight. Temporarily expected to fail until the lead decides.
    def test_idle_pooled_connection_does_not_block_other_endpoints(self):
        a, b = fleet(self, "a", "b")
        self.proxy_for(cluster("pair", a.address, b.address,
                               extra="lb_policy: round_robin\n"
                                     "circuit_breakers: { max_connections: 1 }"),
                       "- { match: { path_prefix: /p/ }, cluster: pair }")
        statuses = [get(self.proxy.port, "/p/x").status for _ in range(4)]
        self.assertEqual(statuses, [200] * 4)


class MaxPending(BreakerCase):
    def test_requests_waiting_for_a_connection_are_capped(self):
        address, held = blackhole()
        for s in held:
            self.addCleanup(s.close)
        if not connects_hang(address):
            self.skipTest("a full accept queue does not stall connects on this kernel")
        self.proxy_for(cluster("stuck", address,
                               extra="connect_timeout: 3s\n"
                                     "circuit_breakers: { max_pending_requests: 1 }"),
                       "- { match: { path_prefix: /s/ }, cluster: stuck }")
        # The first request is still connecting: one pending, the limit. The others come then.
        threads, results = self.first_then_rest(
            "/s/x", 3, lambda: self.breakers("stuck")["pending_requests"]["active"] == 1,
            timeout=2.5)
        breakers = self.breakers("stuck")
        self.assertEqual(breakers["pending_requests"]["limit"], 1, breakers)
        self.join(threads)
        (first, first_took) = results[0]
        self.assertEqual(first.status, 502, first.raw)  # its connect timed out
        self.assertGreaterEqual(first_took, 2.9)
        self.assertIn(b"connect timeout", first.body)
        for resp, took in results[1:]:
            self.assertOverloaded(resp, took, "max_pending_requests", True, held=3.0)
        breakers = self.breakers("stuck")
        self.assertEqual(breakers["pending_requests"]["active"], 0, breakers)
        self.assertEqual(breakers["pending_requests"]["overflows"], 2, breakers)
        self.assertEqual(breakers["connections"]["active"], 0, breakers)


class MaxRetries(BreakerCase):
    def test_retries_in_flight_are_capped(self):
        a, = fleet(self, "a")
        # Every try takes 1.5 s: the four first tries (started together) all end, and want their
        # retry, while the one admitted retry is still in flight.
        a.set_mode(status=503, delay_ms=1500)
        self.proxy_for(cluster("sick", a.address,
                               extra="circuit_breakers: { max_retries: 1 }\n"
                                     "retry_budget: { percent: 100, min_concurrency: 100 }"),
                       "- match: { path_prefix: /r/ }\n  cluster: sick\n"
                       "  retry: { on: [5xx], attempts: 2, backoff: { base: 1ms, max: 1ms } }")
        threads, results = self.concurrently("/r/x", 4)
        self.join(threads)
        self.assertEqual([getattr(r, "status", r) for r, _ in results], [503] * 4)
        # One retry at a time: 4 first tries, and only the one retry admitted.
        self.assertEqual(a.stats()["requests"], 5)
        self.assertEqual(self.breakers("sick")["retries"]["overflows"], 3)
        entries = [self.proxy.log_entry(r.header("x-request-id")) for r, _ in results]
        self.assertEqual(sorted(e["attempts"] for e in entries), ["1", "1", "1", "2"])
        self.assertTrue(all("URX" in e["flags"].split(",") for e in entries), entries)


if __name__ == "__main__":
    unittest.main()
