"""Prometheus metrics: known traffic gives exact labelled counters and consistent histograms on
the --metrics port; the exposition passes `promtool check metrics`; a real Prometheus server
scrapes it and answers PromQL queries with the same values."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from misbehaving import (SANITIZED, ProxyCase, closed_port, free_port, get,  # noqa: E402
                         start_proxy, start_upstream)
from harness import wait_port  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".encode().hex()
LABELS = {"direction": "outbound", "listener": "main"}


def parse_samples(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, "not a sample: %r" % line
        labels = frozenset(LABEL.findall(match.group(2)[1:-1])) if match.group(2) else frozenset()
        out[(match.group(1), labels)] = float(match.group(3))
    return out


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


class Metrics(ProxyCase):
    """7 x 200 (one of them slow), 3 x 404 from the upstream, 2 x 502 to a closed port through a
    second cluster, 1 x 404 for no route."""

    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.metrics_port = free_port()
        self.started = time.time()
        self.proxy = start_proxy(
            self, self.upstream, workers=2, app_host="svc",
            extra_routes="- { match: { path_prefix: /down }, cluster: down }",
            extra_clusters=('- name: down\n  endpoints: [ "127.0.0.1:%d" ]\n'
                            '  outlier_detection: { consecutive_failures: 2 }\n'
                            '  health_check: { path: /ok, interval: 100ms, timeout: 50ms,'
                            ' unhealthy_threshold: 100 }' % closed_port()),
            extra_top="metrics: { address: 127.0.0.1:%d }" % self.metrics_port)
        wait_port(self.metrics_port, proc=self.proxy.proc)
        expected = [("/ok", "svc", 200)] * 6 + [("/delay?ms=300", "svc", 200)]
        expected += [("/raw?hex=" + NOT_FOUND, "svc", 404)] * 3
        expected += [("/down", "svc", 502)] * 2 + [("/ok", "elsewhere", 404)]
        for path, host, status in expected:
            resp = get(self.proxy.port, path, host=host)
            self.assertEqual(resp.status, status, (path, resp.raw))
        self.samples = self.wait_for_requests(13)

    def scrape(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats/prometheus" % self.metrics_port,
                                    timeout=5) as resp:
            return resp.read().decode()

    def wait_for_requests(self, count, timeout=5.0):
        """The log line (and with it the metrics) may trail the response a little."""
        deadline = time.monotonic() + timeout
        while True:
            samples = parse_samples(self.scrape())
            done = sum(v for (name, _), v in samples.items()
                       if name == "pillion_request_duration_seconds_count")
            if done == count or time.monotonic() > deadline:
                self.assertEqual(done, count)
                return samples
            time.sleep(0.05)

    def value(self, name, **labels):
        key = (name, frozenset(labels.items()))
        self.assertIn(key, self.samples, "no series %s%s" % (name, labels))
        return self.samples[key]

    def series(self, name):
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def test_requests_by_direction_listener_cluster_and_code_class(self):
        expected = {("app", "2xx"): 7, ("app", "4xx"): 3, ("down", "5xx"): 2, ("none", "4xx"): 1}
        for cluster in ("app", "down", "none"):
            for code_class in ("1xx", "2xx", "3xx", "4xx", "5xx"):
                self.assertEqual(
                    self.value("pillion_requests_total", cluster=cluster, code_class=code_class,
                               **LABELS),
                    expected.get((cluster, code_class), 0), (cluster, code_class))
        # Nothing else: one listener, its two clusters and "none", five classes each.
        self.assertEqual(len(self.series("pillion_requests_total")), 15)
        self.assertEqual(self.value("pillion_response_flags_total", flag="UF"), 2)
        self.assertEqual(self.value("pillion_response_flags_total", flag="NR"), 1)
        stats = self.proxy.stats()
        self.assertEqual((stats["downstream_rq_2xx"], stats["downstream_rq_4xx"],
                          stats["downstream_rq_5xx"]), (7, 4, 2))

    def check_histogram(self, name, cluster, count, slow):
        labels = dict(cluster=cluster, **LABELS)
        buckets = sorted((float(dict(key)["le"]), v)
                         for key, v in self.series(name + "_bucket").items()
                         if dict(key)["cluster"] == cluster)
        self.assertEqual(len(buckets), 15, buckets)  # 14 bounds and +Inf
        self.assertEqual(buckets[-1], (float("inf"), count))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))  # cumulative
        self.assertEqual(self.value(name + "_count", **labels), count)
        total = self.value(name + "_sum", **labels)
        if slow:
            # The /delay?ms=300 request is above 0.25 s; the others are local and quick.
            self.assertEqual(dict(buckets)[0.25], count - 1)
            self.assertGreaterEqual(total, 0.3)
            self.assertLess(total, 0.3 + count * 0.25)
        return total

    def test_histograms_count_every_request_with_consistent_sums(self):
        total = self.check_histogram("pillion_request_duration_seconds", "app", 10, slow=True)
        upstream = self.check_histogram("pillion_upstream_response_seconds", "app", 10, slow=True)
        self.assertLessEqual(upstream, total)  # the upstream wait is part of the request
        self.check_histogram("pillion_request_duration_seconds", "down", 2, slow=False)
        self.check_histogram("pillion_request_duration_seconds", "none", 1, slow=False)
        # A connect failure never got a response head; "none" never goes upstream at all.
        self.check_histogram("pillion_upstream_response_seconds", "down", 0, slow=False)
        self.assertNotIn(("pillion_upstream_response_seconds_count",
                          frozenset(dict(cluster="none", **LABELS).items())), self.samples)

    def test_process_and_config_gauges(self):
        pid = self.proxy.proc.pid
        rss = self.value("pillion_process_resident_memory_bytes")
        self.assertGreater(rss, 1 << 20)
        if not SANITIZED:  # ASan: more resident memory, and mallinfo2 reports 0
            self.assertLess(rss, 1 << 30)
            self.assertGreater(self.value("pillion_process_heap_allocated_bytes"), 0)
        fds = self.value("pillion_process_open_fds")
        self.assertLessEqual(abs(fds - len(os.listdir("/proc/%d/fd" % pid))), 8)
        started = self.value("pillion_process_start_time_seconds")
        self.assertGreater(started, self.started - 2)  # boot time has 1 s resolution
        self.assertLessEqual(started, time.time())
        self.assertEqual(self.value("pillion_config_version"), 1)
        self.assertEqual(self.value("pillion_workers"), 2)

    def test_cluster_state_families(self):
        """The two connect failures to `down` ejected its endpoint (outlier detection); its
        health checks fail (nothing listens) and are counted; breakers are idle again."""
        self.assertEqual(self.value("pillion_cluster_ejections_total", cluster="down",
                                    result="ejected"), 1)
        self.assertEqual(self.value("pillion_cluster_endpoints", cluster="down",
                                    state="ejected"), 1)
        self.assertEqual(self.value("pillion_cluster_endpoints", cluster="app",
                                    state="available"), 1)
        deadline = time.monotonic() + 5
        while True:
            failed = parse_samples(self.scrape()).get(
                ("pillion_cluster_health_checks_total",
                 frozenset({"cluster": "down", "result": "failed"}.items())), 0)
            if failed >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(failed, 2)
        for resource in ("connections", "pending_requests", "requests", "retries"):
            self.assertEqual(self.value("pillion_cluster_breaker_overflows_total",
                                        cluster="app", resource=resource), 0)
        self.assertEqual(self.value("pillion_cluster_breaker_active", cluster="down",
                                    resource="requests"), 0)

    def test_every_family_has_help_and_type(self):
        text = self.scrape()
        helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        self.assertEqual(helps, set(types))
        for (name, _) in parse_samples(text):
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            self.assertIn(family, types, name)
        self.assertEqual(types["pillion_request_duration_seconds"], "histogram")
        self.assertEqual(types["pillion_upstream_response_seconds"], "histogram")
        self.assertEqual(types["pillion_requests_total"], "counter")

    @unittest.skipUnless(shutil.which("promtool"), "promtool not installed (Debian: prometheus)")
    def test_promtool_check_metrics(self):
        proc = subprocess.run(["promtool", "check", "metrics"], input=self.scrape(),
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_prometheus_server_scrapes_and_queries(self):
        binary = shutil.which("prometheus")
        if binary is None:
            self.fail("prometheus not installed (Debian package prometheus; "
                      "scripts/install-deps.sh installs it)")
        port = free_port()
        config = self.path("prometheus.yml")
        with open(config, "w") as f:
            f.write("global: { scrape_interval: 1s, scrape_timeout: 1s }\n"
                    "scrape_configs:\n"
                    "  - job_name: pillion\n"
                    "    metrics_path: /stats/prometheus\n"
                    "    static_configs: [ { targets: [ '127.0.0.1:%d' ] } ]\n"
                    % self.metrics_port)
        log = open(self.path("prometheus.log"), "w")
        self.addCleanup(log.close)
        self.start([binary, "--config.file=" + config,
                    "--storage.tsdb.path=" + self.path("tsdb"),
                    "--web.listen-address=127.0.0.1:%d" % port], stdout=log,
                   stderr=subprocess.STDOUT)
        api = "http://127.0.0.1:%d/api/v1/" % port

        def query(expr):
            url = api + "query?" + urllib.parse.urlencode({"query": expr})
            result = http_json(url)["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            try:
                last = query('sum(pillion_request_duration_seconds_count{job="pillion"})')
                if last == 13:
                    break
            except OSError as error:  # not listening yet
                last = error
            time.sleep(0.25)
        if last != 13:
            with open(self.path("prometheus.log")) as f:
                self.fail("Prometheus saw %r requests, not 13; its log:\n%s" % (last,
                                                                             f.read()[-3000:]))
        targets = http_json(api + "targets")["data"]["activeTargets"]
        self.assertEqual([(t["health"], t["lastError"]) for t in targets], [("up", "")])
        self.assertEqual(query('sum(pillion_requests_total{code_class="2xx"})'), 7)
        self.assertEqual(query('pillion_requests_total{cluster="down",code_class="5xx"}'), 2)
        self.assertEqual(query('sum by (cluster) (pillion_requests_total{cluster="none"})'), 1)
        self.assertEqual(query('pillion_request_duration_seconds_count{cluster="app"}'), 10)
        self.assertEqual(query('pillion_request_duration_seconds_bucket{cluster="app",le="+Inf"}'),
                         10)
        self.assertEqual(query('pillion_response_flags_total{flag="UF"}'), 2)
        self.assertEqual(query("pillion_workers"), 2)
        self.assertGreater(query("pillion_process_resident_memory_bytes"), 0)
        # The histogram works with PromQL: the median of the app's requests is well under the
        # one slow request.
        median = query('histogram_quantile(0.5, sum by (le) '
                       '(pillion_request_duration_seconds_bucket{cluster="app"}))')
        self.assertLess(median, 0.25)


if __name__ == "__main__":
    unittest.main()
