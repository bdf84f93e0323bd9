"""pillion bench against a real nginx: counts at a fixed rate, connect errors, the two-URL
difference, and agreement with wrk at low load."""

import json
import os
import re
import shutil
import subprocess
import unittest

from harness import PILLION, ProcessTestCase, free_port
from nginx import start_nginx

PERCENTILES = ["p50", "p90", "p99", "p99.9", "max"]


def run_bench(*args, timeout=60):
    return subprocess.run([PILLION, "bench", *args], capture_output=True, text=True,
                          timeout=timeout)


def parse_wrk_latency(text, percent="50%"):
    """Microseconds of a percentile line of `wrk --latency`, e.g. '     50%   15.00us'."""
    match = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(percent), text, re.M)
    if not match:
        raise AssertionError("no %s line in wrk output:\n%s" % (percent, text))
    scale = {"us": 1.0, "ms": 1e3, "s": 1e6}[match.group(2)]
    return float(match.group(1)) * scale


class BenchTest(ProcessTestCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        start_nginx(self, self.port)
        self.url = "http://127.0.0.1:%d/" % self.port

    def test_fixed_rate_completes_rate_times_duration(self):
        result = run_bench(self.url, "--rate", "200", "--duration", "2s", "--connections", "4",
                           "--warmup", "200ms", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        for key in ["rate", "connections", "duration_s", "warmup_s", "rounds", "targets"]:
            self.assertIn(key, report)
        self.assertEqual(len(report["targets"]), 1)
        target = report["targets"][0]
        for key in ["url", "scheduled", "sent", "completed", "achieved_rate", "errors",
                    "latency_us", "send_delay_us"]:
            self.assertIn(key, target)
        self.assertEqual(target["scheduled"], 400)
        self.assertAlmostEqual(target["completed"], 400, delta=40)
        self.assertAlmostEqual(target["achieved_rate"], 200, delta=20)
        self.assertEqual(target["errors"],
                         {"connect": 0, "read": 0, "timeout": 0, "status": 0, "total": 0})
        latency = target["latency_us"]
        for p in PERCENTILES + ["mean", "min"]:
            self.assertIn(p, latency)
        values = [latency[p] for p in PERCENTILES]
        self.assertEqual(values, sorted(values))
        self.assertGreater(latency["p50"], 0)

    def test_non_2xx_counts_as_status_error_and_head_has_no_body(self):
        port = free_port()
        start_nginx(self, port, extra_server_conf="location = /missing { return 404; }")
        result = run_bench("http://127.0.0.1:%d/missing" % port, "--rate", "50", "--duration",
                           "1s", "--header", "X-Bench: 1", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        target = json.loads(result.stdout)["targets"][0]
        self.assertEqual(target["completed"], 50)
        self.assertEqual(target["errors"]["status"], 50)
        # A HEAD response announces a Content-Length but carries no body: still framed right.
        result = run_bench(self.url, "--rate", "50", "--duration", "1s", "--method", "HEAD",
                           "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        target = json.loads(result.stdout)["targets"][0]
        self.assertEqual(target["completed"], 50)
        self.assertEqual(target["errors"]["total"], 0)

    def test_chunked_responses_keep_the_connection_in_step(self):
        # nginx gzips on the fly and so sends the body chunked; a misframed response would
        # break the next one on the same keep-alive connection.
        port = free_port()
        start_nginx(self, port,
                    extra_http_conf="gzip on; gzip_types text/plain; gzip_min_length 0;")
        result = run_bench("http://127.0.0.1:%d/" % port, "--rate", "200", "--duration", "1s",
                           "--connections", "2", "--header", "Accept-Encoding: gzip", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        target = json.loads(result.stdout)["targets"][0]
        self.assertEqual(target["completed"], 200)
        self.assertEqual(target["errors"]["total"], 0)

    def test_refused_port_counts_connect_errors(self):
        closed = free_port()
        result = run_bench("http://127.0.0.1:%d/" % closed, "--rate", "100", "--duration", "1s",
                           "--connections", "4", "--json", timeout=30)
        self.assertEqual(result.returncode, 1, result.stderr)  # nothing completed
        target = json.loads(result.stdout)["targets"][0]
        self.assertEqual(target["scheduled"], 100)
        self.assertEqual(target["errors"]["connect"], 100)
        self.assertEqual(target["completed"], 0)

    def test_two_urls_print_added_latency_per_percentile(self):
        # The second path goes through a reverse proxy, like an app through its sidecar.
        proxy_port = free_port()
        start_nginx(self, proxy_port,
                    location_conf="proxy_pass http://127.0.0.1:%d;" % self.port)
        proxy_url = "http://127.0.0.1:%d/" % proxy_port
        result = run_bench(self.url, proxy_url, "--rate", "200", "--duration", "1s")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("[1] " + self.url, result.stdout)
        self.assertIn("[2] " + proxy_url, result.stdout)
        self.assertRegex(result.stdout, r"\badded\b")
        for p in PERCENTILES:
            self.assertRegex(result.stdout, r"(?m)^%s\s+\S+\s+\S+\s+[+-][\d.]+(us|ms|s)$"
                             % re.escape(p))

        result = run_bench(self.url, proxy_url, "--rate", "200", "--duration", "500ms",
                           "--rounds", "2", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual([t["scheduled"] for t in report["targets"]], [200, 200])
        for p in PERCENTILES:
            first = report["targets"][0]["latency_us"][p]
            second = report["targets"][1]["latency_us"][p]
            self.assertAlmostEqual(report["added_us"][p], second - first, places=3)

    @unittest.skipUnless(shutil.which("wrk"), "wrk not installed")
    def test_agrees_with_wrk_at_low_load(self):
        wrk = subprocess.run(["wrk", "-t1", "-c1", "-d2s", "--latency", self.url],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(wrk.returncode, 0, wrk.stderr)
        wrk_p50 = parse_wrk_latency(wrk.stdout)
        result = run_bench(self.url, "--rate", "200", "--connections", "1", "--duration", "2s",
                           "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        ours = json.loads(result.stdout)["targets"][0]["latency_us"]["p50"]
        # wrk runs closed loop (a busy CPU answers faster than one waking from idle), so only
        # the order of magnitude must agree.
        self.assertLess(wrk_p50, 5000)
        self.assertLess(ours, 5000)
        # Under ASan every request costs the generator a few hundred microseconds more.
        slack = 2000 if os.environ.get("PILLION_SANITIZED") == "1" else 300
        self.assertLess(ours, 3 * wrk_p50 + slack, "pillion p50 %.1fus, wrk %.1fus" % (ours, wrk_p50))
        self.assertLess(wrk_p50, 3 * ours + slack, "pillion p50 %.1fus, wrk %.1fus" % (ours, wrk_p50))

    def test_rejects_bad_flags(self):
        result = run_bench(self.url, "--rate", "10", "--duration", "soon")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--duration", result.stderr)
        result = run_bench("https://127.0.0.1/", "--rate", "10")
        self.assertEqual(result.returncode, 2)
        self.assertIn("http://", result.stderr)


if __name__ == "__main__":
    unittest.main()
