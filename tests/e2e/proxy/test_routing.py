"""Routing through the real binary: first match wins over host, path (exact, prefix, whole-path
RE2 regex), method and header conditions; each request's access-log line names the upstream the
route's cluster sent it to. A 90/10 weighted split holds within a few percent over 10,000
requests sent by `pillion bench`."""

import collections
import json
import subprocess
import time
import unittest

from harness import PILLION
from misbehaving import (ProxyCase, get, parse_log_line, request, start_proxy,
                         start_upstream)

ROUTES = """\
- match: { path_regex: "/users/[0-9]+" }
  cluster: users
- match: { methods: [POST, PUT] }
  cluster: writes
- match: { headers: [ { name: x-canary, exact: "1" }, { name: x-team, regex: "pay[a-z]*" } ] }
  cluster: canary
- match: { headers: [ { name: authorization, absent: true } ], path_prefix: /private/ }
  cluster: writes
- match: { path_prefix: /split/ }
  weighted_clusters: [ { name: users, weight: 90 }, { name: canary, weight: 10 } ]
"""


class Routing(ProxyCase):
    def setUp(self):
        super().setUp()
        self.ports = {name: start_upstream(self) for name in ("app", "users", "writes", "canary")}
        clusters = "".join("- { name: %s, endpoints: [ \"127.0.0.1:%d\" ] }\n" % (name, port)
                           for name, port in self.ports.items() if name != "app")
        self.proxy = start_proxy(self, self.ports["app"], extra_routes=ROUTES,
                                 extra_clusters=clusters)

    def served_by(self, resp):
        self.assertEqual(resp.status, 200, resp.raw[:300])
        upstream = self.proxy.log_entry(resp.header("x-request-id"))["upstream"]
        return {"127.0.0.1:%d" % port: name for name, port in self.ports.items()}[upstream]

    def send(self, method, path, headers=""):
        raw = "%s %s HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n%s\r\n" % (method, path,
                                                                           headers)
        return request(self.proxy.port, raw.encode())

    def test_regex_must_match_the_whole_path(self):
        self.assertEqual(self.served_by(get(self.proxy.port, "/users/42?full=1")), "users")
        self.assertEqual(self.served_by(get(self.proxy.port, "/users/42/orders")), "app")
        self.assertEqual(self.served_by(get(self.proxy.port, "/users/abc")), "app")

    def test_methods(self):
        self.assertEqual(self.served_by(self.send("POST", "/orders")), "writes")
        self.assertEqual(self.served_by(self.send("PUT", "/orders")), "writes")
        self.assertEqual(self.served_by(self.send("DELETE", "/orders")), "app")

    def test_every_header_condition_must_hold(self):
        both = "X-Canary: 1\r\nX-Team: payments\r\n"
        self.assertEqual(self.served_by(get(self.proxy.port, "/x", extra=both)), "canary")
        only_one = "X-Canary: 1\r\nX-Team: search\r\n"
        self.assertEqual(self.served_by(get(self.proxy.port, "/x", extra=only_one)), "app")

    def test_absent_header_with_a_path_prefix(self):
        self.assertEqual(self.served_by(get(self.proxy.port, "/private/a")), "writes")
        with_auth = "Authorization: Bearer t\r\n"
        self.assertEqual(self.served_by(get(self.proxy.port, "/private/a", extra=with_auth)),
                         "app")

    def test_weighted_split_holds_over_five_thousand_requests(self):
        # 1,000 requests/s: a rate a sanitizer-built proxy on a busy two-core machine serves
        # without a timeout (every request must succeed).
        total = 5000
        run = subprocess.run([PILLION, "bench", "http://127.0.0.1:%d/split/x" % self.proxy.port,
                              "--rate", "1000", "--duration", "5s", "--connections", "16",
                              "--timeout", "5s", "--json"],
                             capture_output=True, text=True, timeout=90)
        self.assertEqual(run.returncode, 0, run.stderr)
        result = json.loads(run.stdout)["targets"][0]
        self.assertEqual(result["errors"]["total"], 0, result["errors"])
        self.assertEqual(result["completed"], total)
        names = {"127.0.0.1:%d" % port: name for name, port in self.ports.items()}
        entries = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            entries = [parse_log_line(line) for line in self.proxy.log_lines()]
            if sum(1 for e in entries if e.get("path") == "/split/x") >= total:
                break
            time.sleep(0.1)  # the access log is written in batches
        counts = collections.Counter(names[e["upstream"]] for e in entries
                                     if e.get("path") == "/split/x")
        self.assertEqual(sum(counts.values()), total, counts)
        self.assertEqual(set(counts), {"users", "canary"})
        # 10 % of 5,000 is 500 with a standard deviation of 21 (0.42 points): 3 points is
        # 7 sigma.
        self.assertAlmostEqual(counts["canary"] / total, 0.10, delta=0.03)


if __name__ == "__main__":
    unittest.main()
