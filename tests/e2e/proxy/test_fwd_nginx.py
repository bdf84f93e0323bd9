"""End-to-end: `pillion proxy` in front of a real nginx, driven by wrk and by keep-alive clients:
no errors under load, and every request appears exactly once in the access log (and in nginx's)."""

import http.client
import re
import subprocess
import threading
import time
import unittest

from harness import free_port
from nginx import RESPONSE_BODY, start_nginx
from test_fwd_support import UUID4, ProxyCase, log_field


def parse_wrk(text):
    m = re.search(r"(\d+) requests in", text)
    return {
        "requests": int(m.group(1)) if m else 0,
        "non2xx": int(re.search(r"Non-2xx or 3xx responses: (\d+)", text).group(1))
        if "Non-2xx" in text else 0,
        "socket_errors": "Socket errors" in text,
    }


class ThroughNginx(ProxyCase):
    def setUp(self):
        super(ProxyCase, self).setUp()  # no test upstream: nginx is the origin
        self.nginx_port = free_port()
        self.nginx_log = self.path("nginx-access.log")
        start_nginx(self, self.nginx_port, access_log=self.nginx_log)
        self.start_proxy("http://127.0.0.1:%d" % self.nginx_port)

    def test_wrk_load_has_no_errors(self):
        p = subprocess.run(["wrk", "-t1", "-c8", "-d2s", "--timeout", "5s", self.url + "/"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        result = parse_wrk(p.stdout)
        self.assertGreater(result["requests"], 500, p.stdout)
        self.assertEqual(result["non2xx"], 0, p.stdout)
        self.assertFalse(result["socket_errors"], p.stdout)
        stats = self.stats()
        self.assertGreaterEqual(stats["downstream_rq_2xx"], result["requests"])
        self.assertEqual(stats["downstream_rq_5xx"], 0)
        self.assertLessEqual(stats["upstream_cx_total"], 16,
                             "upstream connections are pooled, not one per request")
        # The proxy still answers normally after the load.
        body = self.curl(self.url + "/").stdout.decode()
        self.assertEqual(body, RESPONSE_BODY)

    def test_wrk_short_run_logged_once_per_request(self):
        p = subprocess.run(["wrk", "-t1", "-c4", "-d1s", self.url + "/short"],
                           capture_output=True, text=True, timeout=30)
        result = parse_wrk(p.stdout)
        self.assertGreater(result["requests"], 100, p.stdout)
        self.assertEqual(result["non2xx"], 0, p.stdout)
        time.sleep(0.3)
        lines = self.log_lines(at_least=result["requests"])
        ok = [l for l in lines if log_field(l, "status") == "200"]
        # wrk counts the responses it read; at most one in-flight request per connection more.
        self.assertGreaterEqual(len(ok), result["requests"])
        self.assertLessEqual(len(lines), result["requests"] + 4)
        self.assertEqual(len({log_field(l, "request_id") for l in lines}), len(lines))

    def test_every_request_logged_once(self):
        clients, per_client = 4, 50
        errors = []

        def run(k):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                for i in range(per_client):
                    conn.request("GET", "/r/%d/%d" % (k, i))
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status != 200 or body.decode() != RESPONSE_BODY:
                        errors.append((k, i, resp.status))
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append((k, repr(e)))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        total = clients * per_client
        lines = self.log_lines(at_least=total)
        paths = [log_field(l, "path") for l in lines]
        for k in range(clients):
            for i in range(per_client):
                self.assertEqual(paths.count("/r/%d/%d" % (k, i)), 1, "/r/%d/%d" % (k, i))
        self.assertEqual(len(lines), total, "no extra lines")
        ids = set()
        for line in lines:
            self.assertEqual(log_field(line, "status"), "200", line)
            self.assertEqual(log_field(line, "flags"), "-", line)
            self.assertEqual(log_field(line, "method"), "GET", line)
            self.assertEqual(log_field(line, "upstream"), "127.0.0.1:%d" % self.nginx_port, line)
            self.assertEqual(log_field(line, "bytes"), str(len(RESPONSE_BODY)), line)
            self.assertRegex(log_field(line, "request_id"), UUID4)
            ids.add(log_field(line, "request_id"))
        self.assertEqual(len(ids), total, "request ids are unique")
        # nginx saw each request exactly once too (no duplicate sends, no retries).
        with open(self.nginx_log) as f:
            nginx_lines = f.read().splitlines()
        self.assertEqual(len(nginx_lines), total)



class NginxClosesIdleConnections(ProxyCase):
    """nginx closes idle keep-alive connections after 300 ms; requests arriving around that
    moment race the close. Every one must still succeed (pool check or stale retry)."""

    def setUp(self):
        super(ProxyCase, self).setUp()
        self.nginx_port = free_port()
        start_nginx(self, self.nginx_port, extra_server_conf="keepalive_timeout 300ms;")
        self.start_proxy("http://127.0.0.1:%d" % self.nginx_port)

    def test_requests_racing_the_keepalive_timeout_succeed(self):
        statuses = []
        for i in range(24):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", "/race/%d" % i)
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
            conn.close()
            time.sleep(0.276 + 0.002 * i)  # sweep across nginx's 300 ms close
        self.assertEqual(statuses, [200] * 24)
        stats = self.stats()
        self.assertEqual(stats["downstream_rq_5xx"], 0)
        self.assertGreaterEqual(stats["upstream_cx_total"], 2, "nginx did close connections")


class TwoWorkers(ProxyCase):
    def setUp(self):
        super(ProxyCase, self).setUp()
        self.nginx_port = free_port()
        start_nginx(self, self.nginx_port)
        self.start_proxy("http://127.0.0.1:%d" % self.nginx_port, workers=2)

    def test_wrk_through_two_workers(self):
        p = subprocess.run(["wrk", "-t2", "-c16", "-d2s", "--timeout", "5s", self.url + "/"],
                           capture_output=True, text=True, timeout=30)
        result = parse_wrk(p.stdout)
        self.assertGreater(result["requests"], 500, p.stdout)
        self.assertEqual(result["non2xx"], 0, p.stdout)
        self.assertFalse(result["socket_errors"], p.stdout)
        stats = self.stats()
        self.assertEqual(stats["downstream_rq_5xx"], 0)
        self.assertLessEqual(stats["upstream_cx_total"], 32)
        time.sleep(0.3)
        lines = self.log_lines(at_least=result["requests"])
        ids = [log_field(l, "request_id") for l in lines]
        self.assertEqual(len(set(ids)), len(ids), "request ids unique across workers")


if __name__ == "__main__":
    unittest.main()
