"""A route's local rate limit and fault injection through the real binary: over the limit a
request gets 429 with Retry-After and flag RL at once; a fault aborts with the configured status
(flag FI) for about the configured share of requests, delays them (flag DI), or does what
x-pillion-fault-* headers ask when header_control is on. Other routes are untouched."""

import time
import unittest

from misbehaving import ProxyCase, get, start_proxy, start_upstream

ROUTES = """\
- match: { path_prefix: /limited/ }
  cluster: app
  rate_limit: { requests_per_second: 0.5, burst: 5 }
- match: { path_prefix: /broken/ }
  cluster: app
  fault: { abort: { status: 503 } }
- match: { path_prefix: /flaky/ }
  cluster: app
  fault: { abort: { status: 500, percent: 50 } }
- match: { path_prefix: /slow/ }
  cluster: app
  fault: { delay: { fixed: 300ms } }
- match: { path_prefix: /chaos/ }
  cluster: app
  fault: { header_control: true }
"""


class RoutePolicy(ProxyCase):
    def setUp(self):
        super().setUp()
        self.proxy = start_proxy(self, start_upstream(self), extra_routes=ROUTES)

    def flags(self, resp):
        return self.proxy.log_entry(resp.header("x-request-id"))["flags"].split(",")

    def test_rate_limit_answers_429_with_retry_after(self):
        statuses = [get(self.proxy.port, "/limited/x") for _ in range(8)]
        self.assertEqual([r.status for r in statuses[:5]], [200] * 5)
        limited = statuses[5:]
        self.assertEqual([r.status for r in limited], [429] * 3)
        # One token every 2 s: the next one is at most 2 s away.
        self.assertIn(limited[0].header("retry-after"), ("1", "2"))
        self.assertEqual(self.flags(limited[0]), ["RL"])
        # Another route has no limit.
        self.assertEqual(get(self.proxy.port, "/other").status, 200)

    def test_abort_for_every_request(self):
        resp = get(self.proxy.port, "/broken/x")
        self.assertEqual(resp.status, 503)
        self.assertIn(b"fault injected", resp.body)
        self.assertEqual(self.flags(resp), ["FI"])
        self.assertEqual(self.proxy.stats()["upstream_rq_total"], 0)

    def test_abort_for_a_share_of_requests(self):
        statuses = [get(self.proxy.port, "/flaky/x").status for _ in range(300)]
        aborted = statuses.count(500)
        self.assertEqual(aborted + statuses.count(200), 300)
        # 50 % of 300: standard deviation 8.7; 105..195 is more than 5 sigma either way.
        self.assertGreater(aborted, 105)
        self.assertLess(aborted, 195)

    def test_fixed_delay(self):
        started = time.monotonic()
        resp = get(self.proxy.port, "/slow/x")
        self.assertEqual(resp.status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(self.flags(resp), ["DI"])

    def test_header_controlled_faults(self):
        self.assertEqual(get(self.proxy.port, "/chaos/x").status, 200)
        resp = get(self.proxy.port, "/chaos/x", extra="x-pillion-fault-abort: 418\r\n")
        self.assertEqual(resp.status, 418)
        started = time.monotonic()
        resp = get(self.proxy.port, "/chaos/x", extra="x-pillion-fault-delay-ms: 250\r\n")
        self.assertEqual(resp.status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        # Headers on a route without header_control change nothing.
        resp = get(self.proxy.port, "/other", extra="x-pillion-fault-abort: 418\r\n")
        self.assertEqual(resp.status, 200)


if __name__ == "__main__":
    unittest.main()
