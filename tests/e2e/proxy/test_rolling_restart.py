"""A rolling restart under constant load loses no request: HAProxy (standing in for the Service's
load balancer, health-checking each sidecar's /healthz/ready) spreads an open-loop load from
`pillion bench` over the old instance; a new instance starts; the old one gets SIGTERM, fails
readiness at once, keeps answering with Connection: close for the drain time, then exits 0.
The load generator must report zero errors. HAProxy retries are off, so nothing is hidden."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

from harness import PILLION, free_port, wait_port
from misbehaving import ProxyCase, start_upstream

HAPROXY = "/usr/sbin/haproxy"


def haproxy_status(stats_port, server):
    """A server's status (UP, DOWN, ...) on HAProxy's CSV stats page; None if unreadable."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats;csv" % stats_port,
                                    timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return None
    lines = text.splitlines()
    if not lines:
        return None
    columns = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(columns, line.split(",")))
        if row.get("pxname") == "sidecars" and row.get("svname") == server:
            return row.get("status")
    return None


def ready(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz/ready" % port, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class RollingRestart(ProxyCase):
    def start_sidecar(self, name, upstream):
        port, ready_port, admin = free_port(), free_port(), free_port()
        err = open(self.path(name + ".err"), "w")
        self.addCleanup(err.close)
        proc = self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % port,
                           "--upstream", "http://127.0.0.1:%d" % upstream,
                           "--ready", "127.0.0.1:%d" % ready_port,
                           "--admin", "127.0.0.1:%d" % admin, "--access-log", "off",
                           "--drain-time", "2s", "--workers", "1"], stderr=err)
        return proc, port, ready_port, admin

    def requests_served(self, admin):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % admin, timeout=2) as r:
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(":")
                if name == "downstream_rq_total":
                    return int(value)
        return 0

    def test_no_request_fails_while_a_new_instance_takes_over(self):
        if not os.access(HAPROXY, os.X_OK):
            self.fail("haproxy is not installed: run scripts/install-deps.sh")
        upstream = start_upstream(self)
        old, old_port, old_ready, old_admin = self.start_sidecar("old", upstream)
        wait_port(old_port, proc=old)
        new_port, new_ready = free_port(), free_port()
        front, stats = free_port(), free_port()
        config = self.path("haproxy.cfg")
        with open(config, "w") as f:
            f.write("\n".join([
                "global",
                "  maxconn 1000",
                "defaults",
                "  mode http",
                "  retries 0",
                "  timeout connect 2s",
                "  timeout client 10s",
                "  timeout server 10s",
                "  default-server inter 100ms fall 1 rise 1",
                "frontend service",
                "  bind 127.0.0.1:%d" % front,
                "  default_backend sidecars",
                "backend sidecars",
                "  option httpchk GET /healthz/ready",
                "  server old 127.0.0.1:%d check port %d" % (old_port, old_ready),
                "  server new 127.0.0.1:%d check port %d" % (new_port, new_ready),
                "listen stats",
                "  bind 127.0.0.1:%d" % stats,
                "  stats enable",
                "  stats uri /stats",
                ""]))
        haproxy = self.start([HAPROXY, "-db", "-f", config])
        wait_port(front, proc=haproxy)
        wait_port(stats, proc=haproxy)
        # HAProxy starts every server UP; its first checks (every 100 ms) mark "new", which is
        # not running yet, DOWN (and "old" stays UP). The load starts after that, as a Service
        # would only list ready pods.
        deadline = time.monotonic() + 10
        while not (haproxy_status(stats, "new") or "").startswith("DOWN") or \
                not (haproxy_status(stats, "old") or "").startswith("UP"):
            self.assertLess(time.monotonic(), deadline, "HAProxy never marked new DOWN")
            time.sleep(0.05)
        load = self.start([PILLION, "bench", "http://127.0.0.1:%d/ok" % front, "--rate", "300",
                           "--duration", "6s", "--connections", "8", "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        # The new instance on the ports HAProxy already knows.
        err = open(self.path("new.err"), "w")
        self.addCleanup(err.close)
        new = self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % new_port,
                          "--upstream", "http://127.0.0.1:%d" % upstream,
                          "--ready", "127.0.0.1:%d" % new_ready,
                          "--admin", "127.0.0.1:%d" % (new_admin := free_port()),
                          "--access-log", "off", "--drain-time", "2s", "--workers", "1"],
                         stderr=err)
        wait_port(new_port, proc=new)
        wait_port(new_admin, proc=new)
        deadline = time.monotonic() + 5
        while not ready(new_ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        # HAProxy's check (every 100 ms) has seen it: the new instance takes part of the load.
        deadline = time.monotonic() + 10
        while self.requests_served(new_admin) == 0:
            self.assertLess(time.monotonic(), deadline, "HAProxy never sent load to new")
            time.sleep(0.05)
        old.send_signal(signal.SIGTERM)
        out, errors = load.communicate(timeout=30)
        self.assertEqual(load.returncode, 0, errors)
        result = json.loads(out)["targets"][0]
        self.assertEqual(result["errors"]["total"], 0, result["errors"])
        self.assertEqual(result["completed"], result["scheduled"])
        self.assertEqual(old.wait(10), 0)
        # Both instances carried part of the load.
        self.assertGreater(self.requests_served(new_admin), 100)
        with open(self.path("old.err")) as f:
            self.assertIn("SIGTERM", f.read())


if __name__ == "__main__":
    unittest.main()
