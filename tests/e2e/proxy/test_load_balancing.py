"""Load balancing and DNS re-resolution through the real binary, against fleet upstreams.

- round_robin is nginx's smooth weighted round robin: weights 1,1,2 give exactly 100/100/200
  of 400 requests, spread (every block of four holds a, b and c twice), not bunched.
- random follows the weights (1:3 within a few percent over 4,000 requests).
- least_request (the default, power of two choices) steers away from a busy endpoint, where
  round_robin in the same setup keeps splitting evenly; with sequential load (no endpoint busy)
  it follows the weights.
- An endpoint given by DNS name is resolved again every dns_refresh: a new address is used
  within a few refreshes while a request in flight on the old one completes, in the same
  process; a name that stops resolving keeps the old set and logs a warning once.
  The name is controlled through /etc/hosts, bind-mounted from a file of the test in a private
  mount namespace of the proxy (`unshare --mount`; needs root), resolved with `hosts: files`
  only so no real DNS server is asked.
- /clusters shows each endpoint's weight and the cluster's lb_policy.
"""

import collections
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unittest

from fleet import Member, fleet
from harness import PILLION, free_port, wait_port
from misbehaving import Proxy, ProxyCase, closed_port, get, start_proxy, yaml_config


def endpoint(member, weight=None):
    if weight is None:
        return '"%s"' % member.address
    return "{ address: \"%s\", weight: %d }" % (member.address, weight)


def cluster_yaml(name, endpoints, policy=None, extra=""):
    return "- { name: %s, endpoints: [ %s ]%s%s }\n" % (
        name, ", ".join(endpoints), ", lb_policy: %s" % policy if policy else "",
        ", " + extra if extra else "")


def route_yaml(prefix, cluster):
    return "- { match: { path_prefix: %s }, cluster: %s }\n" % (prefix, cluster)


def send_sequential(port, path, count):
    """`count` GETs one after the other on one keep-alive connection; the x-upstream names."""
    names = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(count):
            conn.request("GET", path, headers={"Host": "svc"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise AssertionError("status %d from %s" % (resp.status, path))
            names.append(resp.getheader("x-upstream"))
    finally:
        conn.close()
    return names


def clusters_json(proxy):
    status, text = proxy.admin("/clusters")
    assert status == 200, text
    return {c["name"]: c for c in json.loads(text)["clusters"]}


def request_counts(members):
    return {m.name: m.stats()["requests"] for m in members}


class LoadBalancing(ProxyCase):
    def test_round_robin_weights_1_1_2_exact_and_smooth(self):
        a, b, c = fleet(self, "a", "b", "c")
        clusters = cluster_yaml("lb", [endpoint(a, 1), endpoint(b, 1), endpoint(c, 2)],
                                "round_robin")
        proxy = start_proxy(self, closed_port(), extra_routes=route_yaml("/lb/", "lb"),
                            extra_clusters=clusters, workers=1)
        names = send_sequential(proxy.port, "/lb/x", 400)
        self.assertEqual(collections.Counter(names), {"a": 100, "b": 100, "c": 200})
        self.assertEqual(request_counts([a, b, c]), {"a": 100, "b": 100, "c": 200})
        # Smooth: every aligned block of four is a, b and c twice (the order is c a b c).
        for i in range(0, 400, 4):
            self.assertEqual(collections.Counter(names[i:i + 4]), {"a": 1, "b": 1, "c": 2},
                             "block %d: %s" % (i // 4, names[i:i + 4]))
        # The highest weight never takes three in a row.
        self.assertNotIn("c,c,c", ",".join(names))

    def test_random_weights_1_3(self):
        a, b = fleet(self, "a", "b")
        clusters = cluster_yaml("lb", [endpoint(a, 1), endpoint(b, 3)], "random")
        proxy = start_proxy(self, closed_port(), extra_routes=route_yaml("/lb/", "lb"),
                            extra_clusters=clusters, workers=1)
        # 1,000 requests/s: a rate a sanitizer-built proxy on a busy two-core machine serves
        # without a timeout (every request must succeed).
        total = 5000
        run = subprocess.run([PILLION, "bench", "http://127.0.0.1:%d/lb/x" % proxy.port,
                              "--rate", "1000", "--duration", "5s", "--connections", "8",
                              "--timeout", "5s", "--json"],
                             capture_output=True, text=True, timeout=90)
        self.assertEqual(run.returncode, 0, run.stderr)
        result = json.loads(run.stdout)["targets"][0]
        self.assertEqual(result["errors"]["total"], 0, result["errors"])
        self.assertEqual(result["completed"], total)
        counts = request_counts([a, b])
        self.assertEqual(sum(counts.values()), total, counts)
        # p = 0.25 over 5,000: a standard deviation of 0.61 points; 4 points is 6.5 sigma.
        self.assertAlmostEqual(counts["a"] / total, 0.25, delta=0.04, msg=counts)
        self.assertAlmostEqual(counts["b"] / total, 0.75, delta=0.04, msg=counts)

    def run_open_loop(self, port, path, count, interval):
        """`count` GETs started `interval` seconds apart, each on its own connection and
        thread, whatever the answers' latency; returns the Counter of x-upstream names and
        the errors."""
        names, errors = [], []
        lock = threading.Lock()

        def one():
            try:
                name = send_sequential(port, path, 1)[0]
                with lock:
                    names.append(name)
            except Exception as e:  # noqa: BLE001 (reported by the test)
                with lock:
                    errors.append(repr(e))

        threads = []
        start = time.monotonic()
        for i in range(count):
            wait = start + i * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            thread = threading.Thread(target=one)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=15)
        return collections.Counter(names), errors

    def test_least_request_prefers_the_idle_endpoint_round_robin_does_not(self):
        slow, fast = fleet(self, "slow", "fast")
        slow.set_mode(delay_ms=500)
        clusters = (cluster_yaml("lr", [endpoint(slow), endpoint(fast)]) +
                    cluster_yaml("rr", [endpoint(slow), endpoint(fast)], "round_robin"))
        routes = route_yaml("/lr/", "lr") + route_yaml("/rr/", "rr")
        proxy = start_proxy(self, closed_port(), extra_routes=routes, extra_clusters=clusters,
                            workers=1)
        self.assertEqual(clusters_json(proxy)["lr"]["lb_policy"], "least_request")

        # While the slow endpoint holds requests, /clusters shows them in flight.
        busy = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                for e in clusters_json(proxy)["lr"]["endpoints"]:
                    if e["address"] == slow.address:
                        busy.append(e["active_requests"])
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            # A request every 10 ms: the slow endpoint (500 ms) always has several in flight,
            # the fast one (a few ms) rarely any.
            lr, lr_errors = self.run_open_loop(proxy.port, "/lr/x", 150, 0.01)
        finally:
            stop.set()
            watcher.join()
        rr, rr_errors = self.run_open_loop(proxy.port, "/rr/x", 150, 0.01)
        self.assertEqual(lr_errors + rr_errors, [])
        self.assertEqual(sum(lr.values()), 150, lr)
        self.assertEqual(sum(rr.values()), 150, rr)
        # Round robin alternates whatever the load: the slow endpoint gets every other pick.
        self.assertEqual(rr, {"fast": 75, "slow": 75})
        # Power of two choices: the busier slow endpoint wins only when both draws land on it
        # (1/4 of the picks: they are drawn with replacement), so the fast one gets ~75 %;
        # 60 % is over 4 standard deviations (3.5 points at 150 requests) below that.
        self.assertGreater(lr["fast"] / 150, 0.60, lr)
        self.assertGreater(max(busy, default=0), 1, "the slow endpoint never looked busy")

    def test_least_request_follows_weights_under_sequential_load(self):
        a, b = fleet(self, "a", "b")
        clusters = cluster_yaml("lb", [endpoint(a, 1), endpoint(b, 4)])  # least_request
        proxy = start_proxy(self, closed_port(), extra_routes=route_yaml("/lb/", "lb"),
                            extra_clusters=clusters, workers=1)
        names = send_sequential(proxy.port, "/lb/x", 1500)
        counts = collections.Counter(names)
        self.assertEqual(set(counts), {"a", "b"}, counts)
        # p = 0.2 over 1,500: a standard deviation of 1 point; 6 points is ~6 sigma.
        self.assertAlmostEqual(counts["a"] / 1500, 0.20, delta=0.06, msg=counts)
        self.assertEqual(request_counts([a, b]), dict(counts))

    def test_clusters_shows_weights_and_policy(self):
        a, b, c = fleet(self, "a", "b", "c")
        clusters = (cluster_yaml("rr", [endpoint(a, 1), endpoint(b, 1), endpoint(c, 2)],
                                 "round_robin") +
                    cluster_yaml("rnd", [endpoint(a, 7), endpoint(b)], "random") +
                    cluster_yaml("lr", [endpoint(a), endpoint(c, 1000)]))
        routes = route_yaml("/rr/", "rr") + route_yaml("/rnd/", "rnd") + route_yaml("/lr/", "lr")
        proxy = start_proxy(self, closed_port(), extra_routes=routes, extra_clusters=clusters)
        view = clusters_json(proxy)
        expected = {
            "rr": ("round_robin", {a.address: 1, b.address: 1, c.address: 2}),
            "rnd": ("random", {a.address: 7, b.address: 1}),
            "lr": ("least_request", {a.address: 1, c.address: 1000}),
        }
        for name, (policy, weights) in expected.items():
            self.assertEqual(view[name]["lb_policy"], policy, view[name])
            endpoints = view[name]["endpoints"]
            self.assertEqual({e["address"]: e["weight"] for e in endpoints}, weights)
            for e in endpoints:
                self.assertEqual(e["authority"], e["address"], e)
                self.assertEqual((e["health"], e["ejected"], e["available"]),
                                 ("healthy", False, True), e)
                self.assertEqual(e["active_requests"], 0, e)
        self.assertEqual(get(proxy.port, "/rnd/x").status, 200)


def namespaces_work():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    run = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                         capture_output=True, timeout=10)
    return run.returncode == 0


class DnsRefresh(ProxyCase):
    """The cluster's endpoint is `svc.test:PORT`; a = 127.0.0.2, b = 127.0.0.3 on that port."""

    def setUp(self):
        super().setUp()
        if not namespaces_work():
            self.skipTest("needs root and unshare --mount")
        self.a = Member(self, "a", host="127.0.0.2")
        port = self.a.port
        self.b = Member(self, "b", port=port, host="127.0.0.3")
        self.name = "svc.test:%d" % port
        self.hosts = self.path("hosts")
        self.write_hosts("127.0.0.2")
        nsswitch = self.path("nsswitch.conf")
        with open(nsswitch, "w") as f:
            f.write("hosts: files\n")
        self.proxy = self.start_namespaced_proxy(nsswitch)

    def write_hosts(self, *svc_addresses):
        """Rewrites the hosts file in place (a rename would not be seen through the bind
        mount): the new bytes first, then the truncation, so no reader sees it empty."""
        text = "127.0.0.1 localhost\n"
        for address in svc_addresses:
            text += "%s svc.test\n" % address
        text += "# %s\n" % ("-" * 20)
        mode = "r+" if os.path.exists(self.hosts) else "w"
        with open(self.hosts, mode) as f:
            f.write(text)
            f.truncate()

    def start_namespaced_proxy(self, nsswitch):
        port, admin_port = free_port(), free_port()
        log_path = self.path("proxy.access.log")
        config_path = self.path("proxy.yaml")
        clusters = cluster_yaml("svc", ['"%s"' % self.name], "round_robin",
                                extra="dns_refresh: 200ms")
        with open(config_path, "w") as f:
            f.write(yaml_config(port, admin_port, closed_port(), log_path,
                                extra_routes=route_yaml("/svc/", "svc"),
                                extra_clusters=clusters, workers=2))
        stderr_path = self.path("proxy.stderr")
        err = open(stderr_path, "w")
        self.addCleanup(err.close)
        # unshare and sh exec: the PID is pillion's own, the namespace's only process, so
        # the harness killing it by PID ends the namespace too.
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf && '
                  'exec "$3" proxy -c "$4"')
        proc = self.start(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", self.hosts, nsswitch, PILLION, config_path],
                          stdout=err, stderr=subprocess.STDOUT)
        wait_port(port, proc=proc)
        wait_port(admin_port, proc=proc)
        self.assertEqual(os.path.realpath("/proc/%d/exe" % proc.pid), os.path.realpath(PILLION))
        return Proxy(proc, port, admin_port, log_path, config_path, stderr_path)

    def dns_refreshes(self, result):
        status, text = self.proxy.admin("/stats/prometheus")
        self.assertEqual(status, 200, text)
        pattern = (r'^pillion_cluster_dns_refreshes_total\{cluster="svc",result="%s"\} (\d+)$' %
                   result)
        found = re.findall(pattern, text, re.M)
        self.assertEqual(len(found), 1, text)
        return int(found[0])

    def addresses(self):
        return [e["address"] for e in clusters_json(self.proxy)["svc"]["endpoints"]]

    def served_by(self, extra=""):
        resp = get(self.proxy.port, "/svc/x", extra=extra)
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200, resp.raw)
        return resp.header("x-upstream")

    def wait_addresses(self, expected, timeout=2.5):
        deadline = time.monotonic() + timeout
        while self.addresses() != expected:
            self.assertLess(time.monotonic(), deadline, self.addresses())
            time.sleep(0.02)

    def wait_served_by(self, name, timeout):
        start = time.monotonic()
        seen = []
        while time.monotonic() - start < timeout:
            seen.append(self.served_by())
            if seen[-1] == name:
                return time.monotonic() - start
            time.sleep(0.02)
        self.fail("not served by %s within %.1fs: %s" % (name, timeout, seen[-10:]))

    def test_new_address_applied_without_dropping_in_flight_requests(self):
        pid = self.proxy.proc.pid
        self.assertEqual([self.served_by() for _ in range(6)], ["a"] * 6)
        self.assertEqual(self.addresses(), ["127.0.0.2:%d" % self.a.port])
        self.assertEqual(clusters_json(self.proxy)["svc"]["endpoints"][0]["authority"],
                         self.name)

        slow = {}

        def slow_request():
            start = time.monotonic()
            slow["resp"] = get(self.proxy.port, "/svc/slow", extra="x-delay-ms: 1500\r\n")
            slow["seconds"] = time.monotonic() - start

        thread = threading.Thread(target=slow_request)
        thread.start()
        deadline = time.monotonic() + 5
        while self.a.stats()["active"] < 1:
            self.assertLess(time.monotonic(), deadline, "the slow request never reached a")
            time.sleep(0.02)

        self.write_hosts("127.0.0.3")
        took = self.wait_served_by("b", timeout=2.5)
        self.assertEqual([self.served_by() for _ in range(10)], ["b"] * 10)
        self.assertEqual(self.addresses(), ["127.0.0.3:%d" % self.a.port])

        thread.join(timeout=10)
        resp = slow.get("resp")
        self.assertIsNotNone(resp, "the in-flight request got no response")
        self.assertEqual((resp.status, resp.header("x-upstream")), (200, "a"), resp.raw)
        self.assertGreaterEqual(slow["seconds"], 1.4)
        self.assertLess(took, 2.5)
        # The switch was made by the running process, not a restart.
        self.assertIsNone(self.proxy.proc.poll())
        self.assertEqual(self.proxy.proc.pid, pid)
        # wait_served_by stopped at the first answer of b, then ten more.
        self.assertEqual(self.b.stats()["requests"], 11)
        self.assertIn("127.0.0.3:%d" % self.a.port, self.proxy.stderr())
        self.assertGreaterEqual(self.dns_refreshes("ok"), 1)

    def test_name_that_stops_resolving_keeps_the_old_set(self):
        self.assertEqual(self.served_by(), "a")
        self.write_hosts()
        deadline = time.monotonic() + 3
        while "cannot resolve" not in self.proxy.stderr():
            self.assertLess(time.monotonic(), deadline, self.proxy.stderr())
            time.sleep(0.05)
        warning = [line for line in self.proxy.stderr().splitlines()
                   if "cannot resolve" in line]
        self.assertIn(self.name, warning[0])
        self.assertIn("warn", warning[0].lower())
        self.assertIn("127.0.0.2:%d" % self.a.port, warning[0])  # the endpoints it keeps
        # Five failed refreshes (one every 200 ms), each keeping the old set.
        deadline = time.monotonic() + 5
        while self.dns_refreshes("failed") < 5:
            self.assertLess(time.monotonic(), deadline, "fewer than 5 failed DNS refreshes")
            time.sleep(0.05)
        self.assertEqual([self.served_by() for _ in range(10)], ["a"] * 10)
        self.assertEqual(self.addresses(), ["127.0.0.2:%d" % self.a.port])
        # A repeated failure is logged once, not every 200 ms.
        self.assertEqual(sum("cannot resolve" in line
                             for line in self.proxy.stderr().splitlines()), 1)

        # Resolving again, to a new address: applied as usual.
        self.write_hosts("127.0.0.3")
        self.wait_served_by("b", timeout=2.5)
        self.assertEqual(self.addresses(), ["127.0.0.3:%d" % self.a.port])
        self.assertIsNone(self.proxy.proc.poll())
        self.assertIn("DNS resolves again", self.proxy.stderr())


    def test_a_name_with_more_addresses_grows_and_shrinks_the_set(self):
        port = self.a.port
        self.write_hosts("127.0.0.2", "127.0.0.3")
        self.wait_addresses(["127.0.0.2:%d" % port, "127.0.0.3:%d" % port])
        for e in clusters_json(self.proxy)["svc"]["endpoints"]:
            self.assertEqual((e["authority"], e["weight"]), (self.name, 1), e)
        # round_robin over the new set, on one connection (one worker): strict alternation.
        names = send_sequential(self.proxy.port, "/svc/x", 10)
        self.assertEqual(collections.Counter(names), {"a": 5, "b": 5}, names)
        self.assertNotIn("a,a", ",".join(names))

        self.write_hosts("127.0.0.3")
        self.wait_addresses(["127.0.0.3:%d" % port])
        self.assertEqual(send_sequential(self.proxy.port, "/svc/x", 6), ["b"] * 6)
        self.assertNotIn("cannot resolve", self.proxy.stderr())


if __name__ == "__main__":
    unittest.main()
