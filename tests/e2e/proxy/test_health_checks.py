"""Active health checks through the real binary, against a fleet of controllable upstreams: the
proxy probes GET /healthz every interval; unhealthy_threshold failed probes (a non-2xx status, a
timeout, a refused connection) take an endpoint out of load balancing and healthy_threshold
passed ones bring it back. With no endpoint left the answer is 503 UH, unless panic_threshold
sends traffic to every endpoint anyway. One worker and round robin keep the picks known."""

import time
import unittest

from fleet import fleet
from misbehaving import ProxyCase, cluster_endpoints, closed_port, get, start_proxy
from misbehaving import prometheus_sample as metric

ROUTES = "- { match: { path_prefix: /f/ }, cluster: fleet }\n"
# The timeout is as long as the interval allows: a healthy probe answered late by a busy
# (sanitizer-built, two-core CI) machine must not count as failed.
CHECK = ("path: /healthz, interval: 200ms, timeout: 200ms, unhealthy_threshold: 2, "
         "healthy_threshold: 2")


def start_fleet_proxy(case, members, check=CHECK, extra="", name="proxy"):
    endpoints = ", ".join('"%s"' % m.address for m in members)
    clusters = ("- name: fleet\n"
                "  endpoints: [ %s ]\n"
                "  lb_policy: round_robin\n"
                "  health_check: { %s }\n%s" % (endpoints, check, extra))
    return start_proxy(case, closed_port(), name=name, extra_routes=ROUTES,
                       extra_clusters=clusters, workers=1)


def endpoints(proxy):
    return cluster_endpoints(proxy, "fleet")


class HealthChecks(ProxyCase):
    def wait_health(self, proxy, member, health, within):
        """Polls /clusters until member's health is `health`; returns the seconds it took."""
        started = time.monotonic()
        while True:
            state = endpoints(proxy)[member.address]
            if state["health"] == health:
                self.assertEqual(state["available"], health == "healthy", state)
                return time.monotonic() - started
            if time.monotonic() - started > within:
                self.fail("%s not %s after %.1f s: %s" % (member.name, health, within, state))
            time.sleep(0.02)

    def traffic(self, proxy, members, requests=30):
        """Sends requests through the proxy; returns {name: requests it got}. All must be 200."""
        before = {m.name: m.stats()["requests"] for m in members}
        statuses = [get(proxy.port, "/f/x").status for _ in range(requests)]
        self.assertEqual(statuses, [200] * requests)
        return {m.name: m.stats()["requests"] - before[m.name] for m in members}

    def assertSpread(self, got, expected, slack=2):
        """Round robin's counts: exactly 0 where expected 0, else within slack (the smooth
        round robin's state carries over when the set of available endpoints changes)."""
        self.assertEqual(set(got), set(expected))
        for name, want in expected.items():
            if want == 0:
                self.assertEqual(got[name], 0, "%s got traffic: %s" % (name, got))
            else:
                self.assertLessEqual(abs(got[name] - want), slack, "%s vs %s" % (got, expected))

    def test_a_failing_check_takes_an_endpoint_out_and_passing_ones_bring_it_back(self):
        a, b, c = fleet(self, "a", "b", "c")
        proxy = start_fleet_proxy(self, [a, b, c])
        self.assertSpread(self.traffic(proxy, [a, b, c]), {"a": 10, "b": 10, "c": 10})

        # Probes go out at the configured interval: ~10 in 2 s at 200 ms (±10 % jitter).
        checks, started = b.stats()["health_checks"], time.monotonic()
        time.sleep(2.0)
        sent, elapsed = b.stats()["health_checks"] - checks, time.monotonic() - started
        expected = elapsed / 0.2  # ~10 (more when the sleep overran on a busy machine)
        self.assertGreaterEqual(sent, 0.7 * expected, "only %d health checks in %.1f s" %
                                (sent, elapsed))
        self.assertLessEqual(sent, 1.3 * expected + 1, "%d health checks in %.1f s" %
                             (sent, elapsed))
        self.assertEqual(b.stats()["requests"], 10, "health checks counted as traffic")
        self.assertEqual(b.stats().get("health_host"), "fleet")  # the cluster name by default

        b.set_mode(health=503)
        took = self.wait_health(proxy, b, "unhealthy", within=3.0)
        self.assertLess(took, 1.0)
        self.wait_stderr(proxy, b.address, "unhealthy", "status 503")
        got = self.traffic(proxy, [a, b, c])
        self.assertSpread(got, {"a": 15, "b": 0, "c": 15})

        b.set_mode()
        took = self.wait_health(proxy, b, "healthy", within=3.0)
        self.assertLess(took, 1.0)
        self.wait_stderr(proxy, b.address, "healthy again")
        # Probes go on while the metrics are scraped: the upstreams' counts read before and
        # after the scrapes bound the proxy's (a probe is counted by the upstream when it
        # arrives, by the proxy when it is judged; one at most in flight per endpoint).
        sent_before = sum(m.stats()["health_checks"] for m in (a, b, c))
        passed = metric(proxy, "pillion_cluster_health_checks_total", cluster="fleet",
                        result="passed")
        failed = metric(proxy, "pillion_cluster_health_checks_total", cluster="fleet",
                        result="failed")
        self.assertGreaterEqual(failed, 2)
        self.assertGreaterEqual(passed, 20)
        sent_after = sum(m.stats()["health_checks"] for m in (a, b, c))
        self.assertLessEqual(passed + failed, sent_after)
        self.assertGreaterEqual(passed + failed, sent_before - 3)  # those in flight
        self.assertSpread(self.traffic(proxy, [a, b, c]), {"a": 10, "b": 10, "c": 10})

    def test_path_and_host_are_configurable(self):
        a, b = fleet(self, "a", "b")
        start_fleet_proxy(self, [b], name="by-host",
                          check="host: probe.local, interval: 200ms, timeout: 100ms")
        proxy = start_fleet_proxy(self, [a], check="path: /other, "
                                  "interval: 200ms, timeout: 100ms, unhealthy_threshold: 2")
        # The fleet answers /other as traffic: 200, so a stays healthy; it saw the probes.
        deadline = time.monotonic() + 2.0
        while a.stats().get("paths", {}).get("/other", 0) < 2:
            self.assertLess(time.monotonic(), deadline, a.stats())
            time.sleep(0.05)
        self.assertEqual(a.stats()["health_checks"], 0)
        self.assertEqual(endpoints(proxy)[a.address]["health"], "healthy")
        # Traffic status 503 fails the probe of /other too.
        a.set_mode(status=503)
        self.wait_health(proxy, a, "unhealthy", within=3.0)
        self.assertEqual(b.stats().get("health_host"), "probe.local")

    def test_a_check_that_times_out_fails(self):
        a, b = fleet(self, "a", "b")
        # A 300 ms timeout: a 2 s answer is far past it, a 50 ms one far within it.
        proxy = start_fleet_proxy(self, [a, b], check=(
            "path: /healthz, interval: 300ms, timeout: 300ms, unhealthy_threshold: 2, "
            "healthy_threshold: 2"))
        time.sleep(0.5)
        self.assertEqual(endpoints(proxy)[b.address]["health"], "healthy")
        b.set_mode(health_delay_ms=2000)  # a 200 answer, but long after the timeout
        self.wait_health(proxy, b, "unhealthy", within=4.0)
        self.wait_stderr(proxy, b.address, "unhealthy", "timeout")
        self.assertSpread(self.traffic(proxy, [a, b], requests=10), {"a": 10, "b": 0})
        b.set_mode(health_delay_ms=50)  # slow, but within the timeout
        self.wait_health(proxy, b, "healthy", within=4.0)
        self.assertSpread(self.traffic(proxy, [a, b], requests=10), {"a": 5, "b": 5})

    def test_no_healthy_endpoint_is_503_uh(self):
        a, b = fleet(self, "a", "b")
        proxy = start_fleet_proxy(self, [a, b])
        for member in (a, b):
            member.set_mode(health=503)
        for member in (a, b):
            self.wait_health(proxy, member, "unhealthy", within=3.0)
        before = a.stats()["requests"] + b.stats()["requests"]
        for _ in range(3):
            resp = get(proxy.port, "/f/x")
            self.assertLocalReply(proxy, resp, 503, "UH", ["no healthy endpoint", "fleet"])
        self.assertEqual(a.stats()["requests"] + b.stats()["requests"], before)
        # One healthy again: served by it.
        a.set_mode()
        self.wait_health(proxy, a, "healthy", within=3.0)
        self.assertSpread(self.traffic(proxy, [a, b], requests=6), {"a": 6, "b": 0})

    def test_panic_threshold_sends_to_every_endpoint(self):
        a, b, c = fleet(self, "a", "b", "c")
        proxy = start_fleet_proxy(self, [a, b, c], extra="  panic_threshold: 50\n")
        # One of three out: 67 % available is above 50 %, no panic.
        c.set_mode(health=503)
        self.wait_health(proxy, c, "unhealthy", within=3.0)
        self.assertSpread(self.traffic(proxy, [a, b, c]), {"a": 15, "b": 15, "c": 0})
        # Two of three out: 33 % is below 50 %, every endpoint takes traffic.
        b.set_mode(health=503)
        self.wait_health(proxy, b, "unhealthy", within=3.0)
        self.assertSpread(self.traffic(proxy, [a, b, c]), {"a": 10, "b": 10, "c": 10})
        # All out: still served, by all.
        a.set_mode(health=503)
        self.wait_health(proxy, a, "unhealthy", within=3.0)
        self.assertSpread(self.traffic(proxy, [a, b, c]), {"a": 10, "b": 10, "c": 10})

    def test_a_stopped_endpoint_goes_unhealthy_without_traffic(self):
        a, b = fleet(self, "a", "b")
        proxy = start_fleet_proxy(self, [a, b])
        time.sleep(0.5)
        self.assertEqual(endpoints(proxy)[b.address]["health"], "healthy")
        b.stop()
        took = self.wait_health(proxy, b, "unhealthy", within=3.0)
        self.assertLess(took, 1.0)
        self.wait_stderr(proxy, b.address, "unhealthy", "refused")
        # Nothing went through the proxy; the first requests already avoid b.
        self.assertSpread(self.traffic(proxy, [a], requests=10), {"a": 10})
        b.start()
        self.wait_health(proxy, b, "healthy", within=3.0)
        self.assertSpread(self.traffic(proxy, [a, b], requests=10), {"a": 5, "b": 5})


if __name__ == "__main__":
    unittest.main()
