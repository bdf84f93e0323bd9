"""A route's retry policy through the real binary, against fleet upstreams told to fail: which
failures are retried (`on`), how many tries (`attempts`, access-log `attempts`, flag URX when
they run out), which requests may be replayed (idempotent methods, Idempotency-Key,
replay_non_idempotent, buffer_limit, the full body sent again), per-try timeouts, Retry-After,
backoff, never a retry after response bytes went downstream, and the cluster's retry budget
capping a retry storm."""

import itertools
import json
import re
import threading
import time
import unittest

from fleet import fleet
from misbehaving import (ProxyCase, closed_port, connect, parse_log_line, request,
                         start_proxy, start_upstream)

_KEYS = itertools.count()


def fail_key():
    return "k%d-%d" % (time.monotonic_ns(), next(_KEYS))


def raw_request(path, method="GET", headers=None, body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: svc"]
    for name, value in (headers or {}).items():
        lines.append("%s: %s" % (name, value))
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def failing(times, how="503", **more):
    """Headers that make a fleet member fail the first `times` tries of this request."""
    headers = {"x-fail-first": str(times), "x-fail-key": fail_key(), "x-fail-how": how}
    headers.update(more)
    return headers


def cluster(name, *addresses, extra=""):
    return "- name: %s\n  endpoints: [%s]\n%s" % (
        name, ", ".join('"%s"' % a for a in addresses),
        "".join("  %s\n" % line for line in extra.strip("\n").splitlines()))


class RetryCase(ProxyCase):
    def proxy_for(self, routes, clusters, **config):
        config.setdefault("workers", 1)
        # `app` (the catch-all route's cluster) is never used by these tests.
        self.proxy = start_proxy(self, closed_port(), extra_routes=routes,
                                 extra_clusters=clusters, **config)
        return self.proxy

    def send(self, path, method="GET", headers=None, body=b"", timeout=10.0):
        started = time.monotonic()
        resp = request(self.proxy.port, raw_request(path, method, headers, body), timeout=timeout)
        self.assertIsNotNone(resp, "connection closed without a response")
        return resp, time.monotonic() - started

    def entry(self, resp):
        return self.proxy.log_entry(resp.header("x-request-id"))

    def flags(self, entry):
        return entry.get("flags", "-").split(",")

    def prometheus(self, name):
        status, text = self.proxy.admin("/stats/prometheus")
        self.assertEqual(status, 200)
        total = 0
        found = False
        for line in text.splitlines():
            m = re.match(r"^%s(\{[^}]*\})?\s+([0-9.e+]+)$" % re.escape(name), line)
            if m:
                total += float(m.group(2))
                found = True
        self.assertTrue(found, "metric %s not in /stats/prometheus" % name)
        return total


class RetryOn(RetryCase):
    """Which failures are retried, and how many tries a request gets."""

    def setUp(self):
        super().setUp()
        self.a, = fleet(self, "a")
        fast = "backoff: { base: 5ms, max: 5ms }"
        routes = """\
- match: { path_prefix: /5xx/ }
  cluster: one
  retry: { on: [5xx], attempts: 3, %(fast)s }
- match: { path_prefix: /reset/ }
  cluster: one
  retry: { on: [reset], attempts: 2, %(fast)s }
- match: { path_prefix: /connect-only/ }
  cluster: one
  retry: { on: [connect-failure], attempts: 3, %(fast)s }
- match: { path_prefix: /codes/ }
  cluster: one
  retry: { on: [retriable-status-codes], retriable_status_codes: [409], attempts: 2, %(fast)s }
- match: { path_prefix: /gateway/ }
  cluster: one
  retry: { on: [gateway-error], attempts: 2, %(fast)s }
- match: { path_prefix: /none/ }
  cluster: one
""" % {"fast": fast}
        self.proxy_for(routes, cluster("one", self.a.address))

    def test_5xx_retried_until_success(self):
        before = self.proxy.stats().get("upstream_rq_retry", 0)
        before_prom = self.prometheus("pillion_upstream_retries_total")
        resp, _ = self.send("/5xx/x", headers=failing(2))
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(resp.body, b"a\n")
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "3", entry)
        self.assertEqual(self.flags(entry), ["-"], entry)
        self.assertEqual(self.proxy.stats()["upstream_rq_retry"] - before, 2)
        self.assertEqual(self.prometheus("pillion_upstream_retries_total") - before_prom, 2)
        self.assertEqual(self.a.stats()["requests"], 3)

    def test_5xx_out_of_attempts_passes_the_upstream_answer(self):
        resp, _ = self.send("/5xx/x", headers=failing(5))
        self.assertEqual(resp.status, 503, resp.raw)
        # The upstream's own answer, not a proxy-generated one.
        self.assertEqual(resp.header("x-upstream"), "a")
        self.assertEqual(resp.body, b"a\n")
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "3", entry)
        self.assertIn("URX", self.flags(entry), entry)
        self.assertEqual(self.a.stats()["requests"], 3)
        # The connection stays usable afterwards.
        resp, _ = self.send("/5xx/x")
        self.assertEqual(resp.status, 200)

    def test_no_retry_policy_means_one_try(self):
        resp, _ = self.send("/none/x", headers=failing(1))
        self.assertEqual(resp.status, 503)
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "1", entry)
        self.assertNotIn("URX", self.flags(entry))

    def test_reset_before_response_retried_under_reset(self):
        for how in ("reset", "close"):
            resp, _ = self.send("/reset/x", headers=failing(1, how))
            self.assertEqual(resp.status, 200, (how, resp.raw))
            self.assertEqual(self.entry(resp)["attempts"], "2", how)

    def test_reset_not_retried_when_on_lacks_it(self):
        resp, _ = self.send("/connect-only/x", headers=failing(1, "reset"))
        self.assertLocalReply(self.proxy, resp, 502, "UR", ["reset"])
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "1", entry)
        # A 503 is no connect failure either.
        resp, _ = self.send("/connect-only/x", headers=failing(1))
        self.assertEqual(resp.status, 503)
        self.assertEqual(self.entry(resp)["attempts"], "1")

    def test_5xx_covers_resets(self):
        resp, _ = self.send("/5xx/x", headers=failing(2, "reset"))
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(self.entry(resp)["attempts"], "3")

    def test_retriable_status_codes(self):
        resp, _ = self.send("/codes/x", headers=failing(1, "409"))
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(self.entry(resp)["attempts"], "2")
        # Only the listed codes: a 503 passes through after one try.
        resp, _ = self.send("/codes/x", headers=failing(1, "503"))
        self.assertEqual(resp.status, 503)
        self.assertEqual(self.entry(resp)["attempts"], "1")
        # Out of attempts: the upstream's 409, flag URX.
        resp, _ = self.send("/codes/x", headers=failing(2, "409"))
        self.assertEqual(resp.status, 409)
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "2")
        self.assertIn("URX", self.flags(entry))

    def test_gateway_error_is_502_503_504_only(self):
        for status, retried in (("502", True), ("503", True), ("504", True), ("500", False)):
            resp, _ = self.send("/gateway/x", headers=failing(1, status))
            self.assertEqual(resp.status, 200 if retried else int(status), status)
            self.assertEqual(self.entry(resp)["attempts"], "2" if retried else "1", status)


class ConnectFailure(RetryCase):
    def test_dead_endpoint_is_skipped_by_the_retry(self):
        live, = fleet(self, "live")
        dead = "127.0.0.1:%d" % closed_port()
        routes = """\
- match: { path_prefix: /retry/ }
  cluster: mixed
  retry: { on: [connect-failure], backoff: { base: 5ms, max: 5ms } }
- match: { path_prefix: /plain/ }
  cluster: mixed
"""
        self.proxy_for(routes, cluster("mixed", dead, live.address,
                                       extra="lb_policy: round_robin"))
        attempts = []
        for _ in range(10):
            resp, _ = self.send("/retry/x")
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertEqual(resp.body, b"live\n")
            entry = self.entry(resp)
            self.assertIn(live.address, entry["upstream"])
            attempts.append(entry["attempts"])
        # Round robin sends every other first try to the dead endpoint: those take two tries.
        self.assertGreaterEqual(attempts.count("2"), 3, attempts)
        self.assertEqual(set(attempts), {"1", "2"}, attempts)
        self.assertGreaterEqual(self.proxy.stats().get("upstream_cx_connect_fail", 0),
                                attempts.count("2"))
        # The same cluster without a retry policy: the dead endpoint's share fails (502 UF).
        statuses = [self.send("/plain/x")[0].status for _ in range(6)]
        self.assertIn(502, statuses)
        self.assertIn(200, statuses)


    def test_chunked_body_is_replayed_whole(self):
        live = start_upstream(self)  # misbehaving.py: reads chunked bodies, echoes their size
        dead = "127.0.0.1:%d" % closed_port()
        routes = """\
- match: { path_prefix: /retry/ }
  cluster: mixed
  retry: { on: [connect-failure], backoff: { base: 5ms, max: 5ms } }
"""
        self.proxy_for(routes, cluster("mixed", dead, "127.0.0.1:%d" % live,
                                       extra="lb_policy: round_robin"))
        chunked = (b"PUT /retry/chunked HTTP/1.1\r\nHost: svc\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        attempts = []
        for _ in range(4):
            resp = request(self.proxy.port, chunked)
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertEqual(resp.header("x-body-bytes"), "11")
            attempts.append(self.entry(resp)["attempts"])
        self.assertIn("2", attempts)


class Replay(RetryCase):
    """Which requests may be sent again, and that a retry carries the whole body."""

    def setUp(self):
        super().setUp()
        self.a, = fleet(self, "a")
        fast = "backoff: { base: 5ms, max: 5ms }"
        routes = """\
- match: { path_prefix: /default/ }
  cluster: one
  retry: { on: [5xx], attempts: 2, buffer_limit: 2KiB, %(fast)s }
- match: { path_prefix: /replay/ }
  cluster: one
  retry: { on: [5xx], attempts: 2, replay_non_idempotent: true, %(fast)s }
""" % {"fast": fast}
        self.proxy_for(routes, cluster("one", self.a.address))

    def test_post_not_retried_by_default(self):
        body = b"p" * 1000
        resp, _ = self.send("/default/x", "POST", failing(1), body)
        self.assertEqual(resp.status, 503)
        self.assertEqual(resp.header("x-upstream"), "a")
        self.assertEqual(resp.header("x-body-bytes"), "1000")
        self.assertEqual(self.entry(resp)["attempts"], "1")
        self.assertEqual(self.a.stats()["requests"], 1)

    def test_put_is_retried_with_its_body(self):
        body = b"u" * 1500
        resp, _ = self.send("/default/x", "PUT", failing(1), body)
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(resp.header("x-body-bytes"), "1500")
        self.assertEqual(self.entry(resp)["attempts"], "2")

    def test_post_with_idempotency_key_is_retried_with_its_body(self):
        body = bytes(range(256)) * 7  # 1792 bytes, within buffer_limit
        headers = failing(1)
        headers["Idempotency-Key"] = "order-42"
        resp, _ = self.send("/default/x", "POST", headers, body)
        self.assertEqual(resp.status, 200, resp.raw)
        # The second try, which answered, got the whole body again.
        self.assertEqual(resp.header("x-body-bytes"), str(len(body)))
        self.assertEqual(self.entry(resp)["attempts"], "2")
        self.assertEqual(self.a.stats()["requests"], 2)

    def test_post_replayed_when_the_route_says_so(self):
        body = b"r" * 30000
        resp, _ = self.send("/replay/x", "POST", failing(1), body)
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(resp.header("x-body-bytes"), "30000")
        self.assertEqual(self.entry(resp)["attempts"], "2")

    def test_body_far_over_buffer_limit_is_not_replayed(self):
        body = b"x" * 300000  # far over the route's 2KiB: it must stream
        headers = failing(1)
        headers["Idempotency-Key"] = "big"
        resp, _ = self.send("/default/x", "POST", headers, body)
        self.assertEqual(resp.status, 503, resp.raw)
        # It still reached the upstream whole, once.
        self.assertEqual(resp.header("x-body-bytes"), "300000")
        self.assertEqual(self.entry(resp)["attempts"], "1")
        self.assertEqual(self.a.stats()["requests"], 1)

    # BUG (session.cc, Session::buffer_request_body): the buffer_limit check runs only after a
    # read that did not finish the body, so a body over the limit that completes within one
    # read (here 5000 bytes sent with the head) is kept and replayed anyway. Temporarily
    # expected to fail until the lead fixes it.
    def test_body_just_over_buffer_limit_is_not_replayed(self):
        body = b"x" * 5000  # over the route's 2KiB, but within one read
        headers = failing(1)
        headers["Idempotency-Key"] = "big"
        resp, _ = self.send("/default/x", "POST", headers, body)
        self.assertEqual(resp.status, 503, resp.raw)
        self.assertEqual(resp.header("x-body-bytes"), "5000")
        self.assertEqual(self.entry(resp)["attempts"], "1")
        # Same for an idempotent method.
        resp, _ = self.send("/default/x", "PUT", failing(1), body)
        self.assertEqual(resp.status, 503, resp.raw)
        self.assertEqual(self.entry(resp)["attempts"], "1")

    def test_body_at_buffer_limit_is_replayed(self):
        body = b"y" * 2048
        resp, _ = self.send("/default/x", "PUT", failing(1), body)
        self.assertEqual(resp.status, 200, resp.raw)
        self.assertEqual(resp.header("x-body-bytes"), "2048")
        self.assertEqual(self.entry(resp)["attempts"], "2")


class Timing(RetryCase):
    """Per-try timeouts, Retry-After and backoff: how long a retried request takes."""

    def test_per_try_timeout_moves_on_to_a_fast_endpoint(self):
        slow, fast = fleet(self, "slow", "fast")
        slow.set_mode(delay_ms=1000)
        routes = """\
- match: { path_prefix: /t/ }
  cluster: pair
  timeout: 3s
  retry: { on: [5xx], attempts: 2, per_try_timeout: 200ms, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("pair", slow.address, fast.address,
                                       extra="lb_policy: round_robin"))
        retried = 0
        for _ in range(4):
            resp, took = self.send("/t/x")
            self.assertEqual(resp.status, 200, resp.raw)
            self.assertEqual(resp.body, b"fast\n")
            entry = self.entry(resp)
            if entry["attempts"] == "2":
                retried += 1
                self.assertGreaterEqual(took, 0.19)
                self.assertLess(took, 0.9)  # the slow endpoint takes 1 s
            else:
                self.assertEqual(entry["attempts"], "1")
                self.assertLess(took, 0.9)
        self.assertGreaterEqual(retried, 1)

    def test_per_try_timeouts_on_a_single_slow_endpoint(self):
        slow, = fleet(self, "slow")
        slow.set_mode(delay_ms=3000)
        routes = """\
- match: { path_prefix: /three/ }
  cluster: one
  timeout: 5s
  retry: { on: [5xx], attempts: 3, per_try_timeout: 200ms, backoff: { base: 1ms, max: 1ms } }
- match: { path_prefix: /bounded/ }
  cluster: one
  timeout: 700ms
  retry: { on: [5xx], attempts: 10, per_try_timeout: 300ms, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("one", slow.address))
        resp, took = self.send("/three/x")
        _, entry = self.assertLocalReply(self.proxy, resp, 504, "UT", ["timeout"])
        self.assertEqual(entry["attempts"], "3", entry)
        self.assertGreaterEqual(took, 0.58)
        self.assertLess(took, 2.0)  # without per-try timeouts: 3 s
        # The route timeout bounds all tries together, whatever attempts remain.
        resp, took = self.send("/bounded/x")
        _, entry = self.assertLocalReply(self.proxy, resp, 504, "UT", ["timeout"])
        self.assertGreaterEqual(took, 0.65)
        self.assertLess(took, 1.5)  # unbounded: up to 10 tries of 300 ms
        self.assertIn(entry["attempts"], ("2", "3"), entry)

    def test_retry_after_within_the_cap_is_waited_for(self):
        a, = fleet(self, "a")
        routes = """\
- match: { path_prefix: /ra/ }
  cluster: one
  retry: { on: [5xx, retriable-status-codes], retriable_status_codes: [429], attempts: 2,
           retry_after_max: 2s, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("one", a.address))
        for how in ("503", "429"):
            resp, took = self.send("/ra/x", headers=failing(1, how, **{"x-retry-after": "1"}))
            self.assertEqual(resp.status, 200, (how, resp.raw))
            self.assertEqual(self.entry(resp)["attempts"], "2")
            self.assertGreaterEqual(took, 0.95, how)
            self.assertLess(took, 1.6, how)

    def test_retry_after_over_the_cap_goes_to_the_client_at_once(self):
        a, = fleet(self, "a")
        routes = """\
- match: { path_prefix: /ra/ }
  cluster: one
  retry: { on: [5xx], attempts: 3, retry_after_max: 2s, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("one", a.address))
        resp, took = self.send("/ra/x", headers=failing(1, **{"x-retry-after": "30"}))
        self.assertEqual(resp.status, 503, resp.raw)
        self.assertEqual(resp.header("retry-after"), "30")
        self.assertEqual(resp.header("x-upstream"), "a")
        self.assertLess(took, 1.5)  # waiting would take 30 s
        entry = self.entry(resp)
        self.assertEqual(entry["attempts"], "1", entry)
        self.assertEqual(a.stats()["requests"], 1)

    def test_backoff_spaces_retries_within_its_cap(self):
        a, = fleet(self, "a")
        routes = """\
- match: { path_prefix: /b/ }
  cluster: one
  retry: { on: [5xx], attempts: 2, backoff: { base: 300ms, max: 300ms } }
- match: { path_prefix: /b3/ }
  cluster: one
  retry: { on: [5xx], attempts: 3, backoff: { base: 100ms, max: 100ms } }
"""
        self.proxy_for(routes, cluster("one", a.address))
        baseline = [self.send("/b/x")[1] for _ in range(3)]
        took = []
        for _ in range(10):
            resp, t = self.send("/b/x", headers=failing(1))
            self.assertEqual(resp.status, 200)
            self.assertEqual(self.entry(resp)["attempts"], "2")
            took.append(t)
        # Each wait is uniform in [0, 300 ms): never more, and not all ~0.
        self.assertLess(max(took), 0.3 + max(baseline) + 0.25, took)
        self.assertGreater(sum(took) / len(took), 0.05, took)
        # Two retries capped at 100 ms each.
        took3 = []
        for _ in range(5):
            resp, t = self.send("/b3/x", headers=failing(2))
            self.assertEqual(resp.status, 200)
            self.assertEqual(self.entry(resp)["attempts"], "3")
            took3.append(t)
        # Three attempts, so up to two more upstream round trips than the baseline request.
        self.assertLess(max(took3), 0.2 + 2 * max(baseline) + 0.25, (took3, baseline))


class ClientGone(RetryCase):
    # BUG (session.cc, Session::forward_with_retries): the wait before a retry (backoff or
    # Retry-After, up to retry_after_max) does not watch the client, so a client that left
    # during it still gets its retry sent upstream, the request keeps its breaker slots for the
    # whole wait, and the access log shows status 200 without DC. Temporarily expected to fail
    # until the lead fixes it.
    def test_client_gone_during_the_retry_wait_cancels_the_retry(self):
        a, = fleet(self, "a")
        routes = """\
- match: { path_prefix: /ra/ }
  cluster: one
  retry: { on: [5xx], attempts: 2, retry_after_max: 5s, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("one", a.address))
        with connect(self.proxy.port) as sock:
            sock.sendall(raw_request("/ra/x", headers=failing(1, **{"x-retry-after": "2"})))
            time.sleep(0.3)  # the first try got its 503; the proxy now waits 2 s
        time.sleep(2.4)
        self.assertEqual(a.stats()["requests"], 1)
        entry = parse_log_line(self.proxy.log_lines()[-1])
        self.assertIn("DC", entry["flags"].split(","), entry)


class NeverAfterResponseBytes(RetryCase):
    def test_reset_mid_body_is_not_retried(self):
        a, = fleet(self, "a")
        routes = """\
- match: { path_prefix: /mid/ }
  cluster: one
  retry: { on: [5xx, reset, connect-failure], attempts: 3, backoff: { base: 1ms, max: 1ms } }
"""
        self.proxy_for(routes, cluster("one", a.address))
        key = fail_key()
        with connect(self.proxy.port) as sock:
            sock.sendall(raw_request("/mid/x", headers={
                "x-fail-first": "1", "x-fail-key": key, "x-fail-how": "mid"}))
            data = b""
            sock.settimeout(5)
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), data[:200])
        self.assertIn(b"content-length: 100000", head.lower())
        # Truncated: the client sees the cut, not a second response spliced in.
        self.assertEqual(body, b"m" * 1000)
        rid = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:]
                   if ": " in line).get("x-request-id")
        entry = self.proxy.log_entry(rid)
        self.assertEqual(entry["attempts"], "1", entry)
        self.assertEqual(a.stats()["requests"], 1)


class Budget(RetryCase):
    """30 concurrent requests to a cluster whose members all answer 503 after 300 ms, on a
    route that would try each 5 times: without a budget 150 upstream requests."""

    def storm(self):
        members = fleet(self, "a", "b")
        for m in members:
            m.set_mode(status=503, delay_ms=300)
        routes = """\
- match: { path_prefix: /storm/ }
  cluster: sick
  timeout: 10s
  retry: { on: [5xx], attempts: 5, backoff: { base: 5ms, max: 5ms } }
"""
        self.proxy_for(routes, cluster(
            "sick", *[m.address for m in members],
            extra="retry_budget: { percent: 20, min_concurrency: 2 }"))
        overflow_before = self.prometheus("pillion_upstream_retry_overflow_total")
        results = [None] * 30
        barrier = threading.Barrier(30)

        def one(i):
            barrier.wait()
            try:
                results[i] = self.send("/storm/x", timeout=15)[0]
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = [getattr(r, "status", r) for r in results]
        self.assertEqual(statuses, [503] * 30, statuses)
        upstream = sum(m.stats()["requests"] for m in members)
        overflow = self.prometheus("pillion_upstream_retry_overflow_total") - overflow_before
        return upstream, overflow, [self.entry(r) for r in results]

    def test_retry_budget_bounds_a_storm(self):
        upstream, overflow, entries = self.storm()
        self.assertGreater(upstream, 30)
        self.assertLessEqual(upstream, 60, "upstream saw %d requests" % upstream)
        self.assertGreater(overflow, 0)
        urx = [e for e in entries if "URX" in self.flags(e)]
        self.assertEqual(len(urx), 30)  # every request ended wanting another try
        single = [e for e in entries if e["attempts"] == "1"]
        self.assertGreaterEqual(len(single), 20)
        # Nothing stays claimed afterwards.
        status, text = self.proxy.admin("/clusters")
        sick = [c for c in json.loads(text)["clusters"] if c["name"] == "sick"][0]
        self.assertEqual(sick["circuit_breakers"]["retries"]["active"], 0, sick)
        self.assertEqual(sick["circuit_breakers"]["requests"]["active"], 0, sick)

    # BUG (session.cc, Session::claim_retry / forward): a request claims one retry token on its
    # first retry and holds it through all its later retries, so the budget is checked once per
    # request, not per retry: 6 requests (20 % of 30) each retry 4 times, 24 extra tries (54 in
    # all), although after the first wave only those 6 requests are active (budget
    # max(2, 20 % of 6) = 2). Temporarily expected to fail until the lead fixes it.
    def test_retry_budget_is_checked_for_every_retry(self):
        upstream, _, _ = self.storm()
        # Retries in flight stay within max(2, 20 % of active requests): 6 for the first wave
        # (30 active), at most 2 for each of the 3 later waves (6 or fewer active).
        self.assertLessEqual(upstream, 30 + 6 + 3 * 2 + 2, "upstream saw %d requests" % upstream)

if __name__ == "__main__":
    unittest.main()
