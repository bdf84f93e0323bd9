"""Startup order and probes: `pillion wait` blocks until the proxy's readiness endpoint says ready
(then exits 0), fails with a clear message after --timeout, and rejects a bad URL; `--metrics`
and `--ready` move those servers so two instances can run side by side; readiness stays 200 while
every route is broken (it is never on the data path); /app-health/<name> passes kubelet's probe
to the app's own endpoint and answers with the app's status."""

import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import PILLION, ProcessTestCase, free_port, wait_port
from misbehaving import ProxyCase, closed_port, get, start_proxy, start_upstream


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Wait(ProcessTestCase):
    def start_proxy(self, ready_port, metrics_port):
        upstream = free_port()  # nothing listens there: readiness does not depend on upstreams
        return self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                           "--upstream", "http://127.0.0.1:%d" % upstream,
                           "--admin", "127.0.0.1:%d" % free_port(),
                           "--ready", "127.0.0.1:%d" % ready_port,
                           "--metrics", "127.0.0.1:%d" % metrics_port,
                           "--access-log", "off"])

    def test_wait_blocks_until_the_proxy_is_ready(self):
        ready_port, metrics_port = free_port(), free_port()
        waiter = self.start([PILLION, "wait", "--timeout", "30s", "--url",
                             "http://127.0.0.1:%d/healthz/ready" % ready_port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        self.assertIsNone(waiter.poll(), "wait returned before any proxy was running")
        proxy = self.start_proxy(ready_port, metrics_port)
        out, err = waiter.communicate(timeout=20)
        self.assertEqual(waiter.returncode, 0, err)
        self.assertIn("ready after", out)
        # It returned because the proxy is ready, and the proxy still is.
        self.assertIsNone(proxy.poll())
        self.assertEqual(http_get(ready_port, "/healthz/ready"), (200, b"ready\n"))
        wait_port(metrics_port, proc=proxy)
        status, body = http_get(metrics_port, "/stats/prometheus")
        self.assertEqual(status, 200)
        self.assertIn(b"pillion_requests_total", body)

    def test_wait_times_out_with_a_clear_message(self):
        port = free_port()
        started = time.monotonic()
        proc = subprocess.run([PILLION, "wait", "--timeout", "1s", "--url",
                               "http://127.0.0.1:%d/healthz/ready" % port],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not ready after 1s", proc.stderr)
        self.assertIn("refused", proc.stderr.lower())
        self.assertLess(time.monotonic() - started, 10)

    def test_wait_rejects_a_bad_url(self):
        proc = subprocess.run([PILLION, "wait", "--url", "ftp://x"], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--url", proc.stderr)

    def test_two_instances_side_by_side_with_their_own_ports(self):
        ports = [(free_port(), free_port()) for _ in range(2)]
        procs = [self.start_proxy(ready, metrics) for ready, metrics in ports]
        for (ready, metrics), proc in zip(ports, procs):
            wait_port(ready, proc=proc)
            wait_port(metrics, proc=proc)
            self.assertEqual(http_get(ready, "/healthz/ready")[0], 200)
            self.assertEqual(http_get(metrics, "/stats/prometheus")[0], 200)


class Probes(ProxyCase):
    def test_readiness_stays_ready_while_every_route_is_broken(self):
        ready = free_port()
        proxy = start_proxy(self, closed_port(),
                            extra_top="readiness: { address: 127.0.0.1:%d }" % ready)
        wait_port(ready, proc=proxy.proc)
        self.assertEqual(get(proxy.port).status, 502)
        self.assertEqual(http_get(ready, "/healthz/ready"), (200, b"ready\n"))

    def test_app_probes_pass_the_apps_own_status_through(self):
        app = start_upstream(self)
        ready = free_port()
        unavailable = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
        no_content = "HTTP/1.1 204 No Content\r\n\r\n"
        proxy = start_proxy(self, app, extra_top="\n".join([
            "readiness:",
            "  address: 127.0.0.1:%d" % ready,
            "  app_probes:",
            "    live: http://127.0.0.1:%d/ok" % app,
            "    sick: http://127.0.0.1:%d/raw?hex=%s&close=1" % (app,
                                                              unavailable.encode().hex()),
            "    empty: http://127.0.0.1:%d/raw?hex=%s&close=1" % (app,
                                                               no_content.encode().hex()),
            "    slow: http://127.0.0.1:%d/delay?ms=3000" % app,
            "    down: http://127.0.0.1:%d/" % closed_port(),
        ]))
        wait_port(ready, proc=proxy.proc)
        self.assertEqual(http_get(ready, "/app-health/live")[0], 200)
        self.assertEqual(http_get(ready, "/app-health/sick")[0], 503)
        self.assertEqual(http_get(ready, "/app-health/empty"), (204, b""))  # no body allowed
        started = time.monotonic()
        status, body = http_get(ready, "/app-health/slow")
        self.assertEqual(status, 503)
        self.assertIn(b"no answer within 1s", body)
        self.assertLess(time.monotonic() - started, 2.5)
        status, body = http_get(ready, "/app-health/down")
        self.assertEqual(status, 503)
        self.assertIn(b"refused", body.lower())
        self.assertEqual(http_get(ready, "/app-health/nope")[0], 404)
        # The readiness server answered its own probe meanwhile and the proxy still serves.
        self.assertEqual(http_get(ready, "/healthz/ready")[0], 200)
        self.assertEqual(get(proxy.port).status, 200)


if __name__ == "__main__":
    unittest.main()
