"""Outlier detection through the real binary, against a fleet of controllable upstreams: an
endpoint with N consecutive 5xx answers or connect failures is ejected (seen in /clusters and a
warning on stderr) and gets no request while ejected; it returns after base_ejection_time, and a
second ejection lasts about twice as long; max_ejection_percent bounds how many are out at once;
a success ends a run of failures. One worker and round robin keep the order of picks known."""

import time
import unittest

from fleet import fleet
from misbehaving import (ProxyCase, closed_port, cluster_endpoints, get, parse_log_line,
                         start_proxy)
from misbehaving import prometheus_sample as metric

ROUTES = "- { match: { path_prefix: /f/ }, cluster: fleet }\n"


def start_fleet_proxy(case, members, outlier, lb="round_robin", workers=1, route=""):
    endpoints = ", ".join('"%s"' % m.address for m in members)
    clusters = ("- name: fleet\n"
                "  endpoints: [ %s ]\n"
                "  lb_policy: %s\n"
                "  outlier_detection: { %s }\n" % (endpoints, lb, outlier))
    routes = ROUTES.replace("cluster: fleet", "cluster: fleet" + route)
    return start_proxy(case, closed_port(), extra_routes=routes, extra_clusters=clusters,
                       workers=workers)


def endpoints(proxy):
    return cluster_endpoints(proxy, "fleet")


def recent_upstreams(proxy, count=40):
    """The last access-log lines' upstream:status, for failure messages."""
    time.sleep(0.2)  # the access log is written in batches
    entries = [parse_log_line(line) for line in proxy.log_lines()][-count:]
    return " ".join("%s:%s" % (e.get("upstream", "-").rpartition(":")[2], e.get("status"))
                    for e in entries)


def settled(proxy):
    """endpoints(), once no try is in flight: a try ends (and outlier detection hears of it)
    just after its response went to the client, so a look right after may be early."""
    deadline = time.monotonic() + 1.0
    while True:
        state = endpoints(proxy)
        if time.monotonic() > deadline or all(e["active_requests"] == 0
                                              for e in state.values()):
            return state
        time.sleep(0.005)


class Outliers(ProxyCase):
    def send_until_ejected(self, proxy, member, limit=30):
        """Sends requests until member is ejected; returns (requests sent, time of the request
        that ejected it, statuses seen)."""
        statuses = []
        for _ in range(limit):
            started = time.monotonic()
            resp = get(proxy.port, "/f/x")
            self.assertIsNotNone(resp)
            statuses.append(resp.status)
            if settled(proxy)[member.address]["ejected"]:
                return len(statuses), started, statuses
        self.fail("%s never ejected after %d requests (%s); /clusters: %s" %
                  (member.name, limit, statuses, endpoints(proxy)))

    def wait_until_back(self, proxy, member, timeout=6.0):
        """Polls /clusters until member is no longer ejected; returns the time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not endpoints(proxy)[member.address]["ejected"]:
                seen = time.monotonic()
                # Workers read a clock refreshed every 50 ms tick: /clusters may see the
                # ejection end that much earlier than the load balancer does.
                time.sleep(0.1)
                return seen
            time.sleep(0.02)
        self.fail("%s still ejected after %.1f s: %s" % (member.name, timeout,
                                                         endpoints(proxy)[member.address]))

    def assert_frozen(self, proxy, member, requests=50):
        """`requests` requests all succeed on the others, and none reaches member."""
        before = member.stats()["requests"]
        statuses = [get(proxy.port, "/f/x").status for _ in range(requests)]
        self.assertEqual(statuses, [200] * requests)
        self.assertEqual(member.stats()["requests"], before,
                         "%s got traffic while ejected" % member.name)

    def test_503s_eject_then_return_and_a_second_ejection_lasts_twice_as_long(self):
        a, b, c = fleet(self, "a", "b", "c")
        c.set_mode(status=503)
        # Ejections of 2 s, then 4 s: long enough that a loaded machine (ASan, two cores) still
        # tells "ejected for base × times" from "back at once" or "never back".
        proxy = start_fleet_proxy(self, [a, b, c], "consecutive_failures: 3, "
                                  "base_ejection_time: 2s, max_ejection_percent: 50")
        sent, ejected_at, statuses = self.send_until_ejected(proxy, c)
        # Round robin over three: c's third failure comes by the ninth request.
        self.assertLessEqual(sent, 9, statuses)
        self.assertEqual(statuses.count(503), 3, statuses)
        state = settled(proxy)
        self.assertEqual(state[c.address]["times_ejected"], 1, state)
        self.assertFalse(state[c.address]["available"], state)
        for other in (a, b):
            self.assertFalse(state[other.address]["ejected"], state)
            self.assertEqual(state[other.address]["times_ejected"], 0, state)
        lines = self.wait_stderr(proxy, c.address, "ejected")
        self.assertIn("fleet", lines[0])
        self.assert_frozen(proxy, c)
        self.assertLess(time.monotonic() - ejected_at, 2.0, "the check took too long to count")

        # It comes back after base_ejection_time, healthy now, and gets traffic again.
        c.set_mode()
        back_at = self.wait_until_back(proxy, c)
        first = back_at - ejected_at
        self.assertGreater(first, 1.8, "first ejection lasted only %.2f s" % first)
        self.assertLess(first, 2.8, "first ejection lasted %.2f s" % first)
        before = c.stats()["requests"]
        statuses = [get(proxy.port, "/f/x").status for _ in range(30)]
        self.assertEqual(statuses, [200] * 30)
        got = c.stats()["requests"] - before
        self.assertGreaterEqual(got, 8, "%s (port %d) got %d of 30 after its return: %s" %
                                (c.name, c.port, got, recent_upstreams(proxy)))

        # Failing again: ejected a second time, for base × 2.
        c.set_mode(status=503)
        _, ejected_at, _ = self.send_until_ejected(proxy, c)
        self.assertEqual(endpoints(proxy)[c.address]["times_ejected"], 2)
        self.assert_frozen(proxy, c, requests=20)
        self.wait_stderr(proxy, c.address, "ejection 2")
        c.set_mode()
        second = self.wait_until_back(proxy, c, timeout=8.0) - ejected_at
        self.assertGreater(second, 3.7, "second ejection lasted only %.2f s" % second)
        self.assertLess(second, 5.0, "second ejection lasted %.2f s" % second)

    def test_max_ejection_time_caps_a_repeated_ejection(self):
        a, b = fleet(self, "a", "b")
        b.set_mode(status=503)
        proxy = start_fleet_proxy(self, [a, b], "consecutive_failures: 2, "
                                  "base_ejection_time: 1s, max_ejection_time: 1200ms, "
                                  "max_ejection_percent: 50")
        lasted = []
        for _ in range(3):
            _, ejected_at, _ = self.send_until_ejected(proxy, b)
            lasted.append(self.wait_until_back(proxy, b) - ejected_at)
        self.assertEqual(endpoints(proxy)[b.address]["times_ejected"], 3)
        # 1 s, then min(2 s, 1.2 s), min(3 s, 1.2 s).
        self.assertLess(lasted[0], 1.5, lasted)
        for seconds in lasted[1:]:
            self.assertGreater(seconds, 1.1, lasted)
            self.assertLess(seconds, 1.8, lasted)

    def test_connect_failures_eject_and_a_restarted_endpoint_returns(self):
        a, b, c = fleet(self, "a", "b", "c")
        proxy = start_fleet_proxy(self, [a, b, c], "consecutive_failures: 3, "
                                  "base_ejection_time: 1s, max_ejection_percent: 50")
        for _ in range(6):  # c has served, so the pool may hold a connection to it
            self.assertEqual(get(proxy.port, "/f/x").status, 200)
        c.stop()
        sent, ejected_at, statuses = self.send_until_ejected(proxy, c)
        self.assertEqual(statuses.count(502), 3, statuses)
        self.assertEqual(statuses.count(200), sent - 3, statuses)
        self.assertEqual(endpoints(proxy)[c.address]["times_ejected"], 1)
        self.wait_stderr(proxy, c.address, "ejected")
        statuses = [get(proxy.port, "/f/x").status for _ in range(30)]
        self.assertEqual(statuses, [200] * 30, "a request still went to the stopped endpoint")
        c.start()
        self.wait_until_back(proxy, c)
        self.assertGreater(time.monotonic() - ejected_at, 0.8)
        statuses = [get(proxy.port, "/f/x").status for _ in range(30)]
        self.assertEqual(statuses, [200] * 30)
        got = c.stats()["requests"]
        self.assertGreaterEqual(got, 8, "%s (port %d) got %d of 30 after its return: %s" %
                                (c.name, c.port, got, recent_upstreams(proxy)))

    def test_resets_and_timeouts_eject_too(self):
        a, b, c = fleet(self, "a", "b", "c")
        proxy = start_fleet_proxy(self, [a, b, c], "consecutive_failures: 3, "
                                  "base_ejection_time: 5s, max_ejection_percent: 70",
                                  route=", timeout: 300ms")
        b.set_mode(fail="reset")
        c.set_mode(delay_ms=1000)  # past the route timeout
        self.send_until_ejected(proxy, b)
        _, _, statuses = self.send_until_ejected(proxy, c)
        self.assertIn(504, statuses)
        state = settled(proxy)
        self.assertEqual((state[b.address]["times_ejected"], state[c.address]["times_ejected"]),
                         (1, 1), state)
        statuses = [get(proxy.port, "/f/x").status for _ in range(10)]
        self.assertEqual(statuses, [200] * 10)

    def test_max_ejection_percent_keeps_all_but_one_of_three_failing_endpoints(self):
        a, b, c, d = fleet(self, "a", "b", "c", "d")
        for member in (b, c, d):
            member.set_mode(status=503)
        proxy = start_fleet_proxy(self, [a, b, c, d], "consecutive_failures: 3, "
                                  "base_ejection_time: 1s, max_ejection_percent: 25")
        failing = {m.address for m in (b, c, d)}
        most = 0
        ever = set()
        deadline = time.monotonic() + 3.5  # long enough for the first ejection to end
        sent = 0
        while time.monotonic() < deadline:
            get(proxy.port, "/f/x")
            sent += 1
            state = settled(proxy)
            out = {address for address, e in state.items() if e["ejected"]}
            self.assertLessEqual(len(out), 1, "more than 25 %% ejected at once: %s" % state)
            self.assertTrue(out <= failing, state)
            ever |= out
            most = max(most, len(out))
        state = endpoints(proxy)
        self.assertEqual(most, 1, "nothing was ever ejected: %s" % state)
        self.assertFalse(state[a.address]["ejected"])
        # When an ejection ends, another endpoint past its threshold takes the one slot.
        self.assertGreaterEqual(sum(e["times_ejected"] for e in state.values()), 2, state)
        self.assertGreaterEqual(len(ever), 2, state)
        ejected = metric(proxy, "pillion_cluster_ejections_total", cluster="fleet",
                         result="ejected")
        self.assertEqual(ejected, sum(e["times_ejected"] for e in state.values()))
        skipped = metric(proxy, "pillion_cluster_ejections_total", cluster="fleet",
                         result="skipped")
        self.assertGreater(skipped, 0)
        # Those kept in stay at or past their threshold: refused, not forgotten.
        kept = [e for address, e in state.items() if address in failing and not e["ejected"]]
        self.assertTrue(all(e["consecutive_failures"] >= 3 for e in kept), state)

    def test_an_ejection_holds_for_every_worker(self):
        a, b, c = fleet(self, "a", "b", "c")
        c.set_mode(status=503)
        proxy = start_fleet_proxy(self, [a, b, c], "consecutive_failures: 3, "
                                  "base_ejection_time: 5s, max_ejection_percent: 50",
                                  lb="least_request", workers=2)
        self.send_until_ejected(proxy, c, limit=60)
        # New connections land on either worker: none of them picks c any more.
        self.assert_frozen(proxy, c, requests=60)
        self.assertEqual(endpoints(proxy)[c.address]["times_ejected"], 1)

    def test_all_ejected_is_503_uh(self):
        a, b = fleet(self, "a", "b")
        for member in (a, b):
            member.set_mode(status=503)
        proxy = start_fleet_proxy(self, [a, b], "consecutive_failures: 2, "
                                  "base_ejection_time: 5s, max_ejection_percent: 100")
        statuses = [get(proxy.port, "/f/x").status for _ in range(4)]
        self.assertEqual(statuses, [503] * 4)
        state = settled(proxy)
        self.assertTrue(all(e["ejected"] for e in state.values()), state)
        before = a.stats()["requests"] + b.stats()["requests"]
        resp = get(proxy.port, "/f/x")
        self.assertLocalReply(proxy, resp, 503, "UH", ["no healthy endpoint", "fleet"])
        self.assertEqual(a.stats()["requests"] + b.stats()["requests"], before)

    def test_a_success_ends_the_run_of_failures(self):
        a, b, c = fleet(self, "a", "b", "c")
        # c fails two, answers two, fails two, ...: never three failures in a row.
        c.set_mode(status=503, flap=2)
        proxy = start_fleet_proxy(self, [a, b, c], "consecutive_failures: 3, "
                                  "base_ejection_time: 10s, max_ejection_percent: 50")
        statuses = []
        for _ in range(60):
            statuses.append(get(proxy.port, "/f/x").status)
            self.assertFalse(settled(proxy)[c.address]["ejected"], statuses)
        self.assertEqual(statuses.count(503), 10, statuses)  # c's 20 requests, half failed
        self.assertEqual(c.stats()["requests"], 20)
        state = endpoints(proxy)[c.address]
        self.assertEqual(state["times_ejected"], 0, state)
        self.assertLess(state["consecutive_failures"], 3, state)

        # Three in a row do eject (the same proxy, so the threshold really is 3).
        c.set_mode(status=503)
        self.send_until_ejected(proxy, c, limit=12)


if __name__ == "__main__":
    unittest.main()
