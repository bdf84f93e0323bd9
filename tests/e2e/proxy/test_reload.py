"""Config reload through the real binary: a change of the file (a plain write, or a Kubernetes
ConfigMap `..data` symlink swap) or SIGHUP applies new routes without a restart; an invalid file
or a listener change is rejected with a logged error naming the file (and line) while the old
routes keep serving; a request in flight finishes on the config it started with. Checked through
the access log (which upstream served), /stats/prometheus and /server_info."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from misbehaving import (PILLION, ProxyCase, Proxy, cluster_endpoints,  # noqa: E402
                         connect, free_port, get, read_response, start_upstream)
from harness import wait_port  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def config_text(port, admin_port, cluster, ports, log_path, listen_port=None):
    """One listener `main`, one catch-all route to `cluster`, a cluster per entry of ports.
    The route is on line 7 (tests check that error messages name it)."""
    lines = [
        "workers: 2",                                                          # 1
        "admin: { address: 127.0.0.1:%d }" % admin_port,                       # 2
        "listeners:",                                                          # 3
        "  - { name: main, address: 127.0.0.1:%d }" % (listen_port or port),   # 4
        "routes:",                                                             # 5
        "  default:",                                                          # 6
        "    - { match: { path_prefix: / }, cluster: %s }" % cluster,          # 7
        "clusters:",
    ]
    for name, upstream in sorted(ports.items()):
        lines.append('  - { name: %s, endpoints: [ "127.0.0.1:%d" ] }' % (name, upstream))
    lines.append("access_log: { path: %s }" % json.dumps(log_path))
    return "\n".join(lines) + "\n"


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


class Reload(ProxyCase):
    def setUp(self):
        super().setUp()
        self.ports = {"a": start_upstream(self), "b": start_upstream(self)}
        self.port, self.admin_port = free_port(), free_port()
        self.log_path = self.path("access.log")

    def config(self, cluster, listen_port=None):
        return config_text(self.port, self.admin_port, cluster, self.ports, self.log_path,
                           listen_port)

    def start_pillion(self, config_path, *args):
        stderr_path = self.path("pillion.stderr")
        err = open(stderr_path, "w")
        self.addCleanup(err.close)
        proc = self.start([PILLION, "proxy", "-c", config_path, *args], stdout=err,
                          stderr=subprocess.STDOUT)
        wait_port(self.port, proc=proc)
        wait_port(self.admin_port, proc=proc)
        self.proxy = Proxy(proc, self.port, self.admin_port, self.log_path, config_path,
                           stderr_path)
        return self.proxy

    def metrics(self):
        status, text = self.proxy.admin("/stats/prometheus")
        self.assertEqual(status, 200)
        out = {}
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match:
                out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return out

    def version(self):
        return self.metrics()["pillion_config_version"]

    def reloads(self, result):
        return self.metrics()['pillion_config_reloads_total{result="%s"}' % result]

    def requests_to(self, cluster):
        return self.metrics().get(
            'pillion_requests_total{direction="outbound",listener="main",cluster="%s",'
            'code_class="2xx"}' % cluster)

    def wait_for(self, what, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = what()
            if predicate(value):
                return value
            time.sleep(0.05)
        self.fail("condition never held (last value %r); stderr:\n%s" %
                  (value, self.proxy.stderr()[-2000:]))

    def wait_stderr(self, needle, timeout=5.0):
        return self.wait_for(self.proxy.stderr, lambda text: needle in text, timeout)

    def served_by(self, resp=None):
        resp = resp or get(self.port, "/ok")
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200, resp.raw[:300])
        upstream = self.proxy.log_entry(resp.header("x-request-id"))["upstream"]
        return {"127.0.0.1:%d" % port: name for name, port in self.ports.items()}[upstream]

    def assertStillOnA(self):
        for _ in range(3):
            self.assertEqual(self.served_by(), "a")
        self.assertEqual(self.version(), 1)

    # (a) a plain write of the file: routes change without a restart.
    def test_changed_route_applies_without_restart(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        proxy = self.start_pillion(config_path)
        pid = proxy.proc.pid
        self.assertEqual(self.version(), 1)
        self.assertEqual(self.reloads("ok"), 0)
        for _ in range(4):
            self.assertEqual(self.served_by(), "a")
        before_a = self.wait_for(lambda: self.requests_to("a"), lambda v: v == 4)

        write_file(config_path, self.config("b"))
        self.wait_for(self.version, lambda v: v == 2)
        self.assertEqual(self.reloads("ok"), 1)
        self.assertEqual(self.reloads("failed"), 0)
        self.wait_stderr("config reloaded (version 2)")
        for _ in range(6):
            self.assertEqual(self.served_by(), "b")
        # Same process, still running; the counters of the kept cluster did not restart.
        self.assertIsNone(proxy.proc.poll())
        self.assertEqual(proxy.proc.pid, pid)
        os.kill(pid, 0)
        self.assertEqual(self.requests_to("a"), before_a)
        self.wait_for(lambda: self.requests_to("b"), lambda v: v == 6)
        status, body = proxy.admin("/config_dump")
        self.assertEqual(status, 200)
        dump = json.loads(body)
        self.assertEqual(dump["version"], 2)
        self.assertEqual(dump["routes"]["default"][0]["cluster"], "b")
        status, body = proxy.admin("/server_info")
        info = json.loads(body)
        self.assertEqual(info["config_version"], 2)
        self.assertEqual(info["config_reloads"], {"ok": 1, "failed": 0})
        # Rewriting the same bytes is not a reload.
        write_file(config_path, self.config("b"))
        time.sleep(0.6)
        self.assertEqual(self.version(), 2)
        self.assertEqual(self.reloads("ok"), 1)

    # A client's keep-alive connection (an app's pool) sees the reload on its next request.
    def test_keep_alive_connection_uses_the_new_config_for_its_next_request(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        self.start_pillion(config_path)
        kept = connect(self.port)
        self.addCleanup(kept.close)
        kept.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
        self.assertEqual(self.served_by(read_response(kept)), "a")
        write_file(config_path, self.config("b"))
        self.wait_for(self.version, lambda v: v == 2)
        self.assertEqual(self.served_by(), "b")
        kept.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
        self.assertEqual(self.served_by(read_response(kept)), "b")

    # (b) the layout kubelet writes for a ConfigMap volume, updated by swapping `..data`.
    def test_configmap_symlink_swap_is_picked_up_without_sighup(self):
        mount = self.path("cfg")
        os.mkdir(mount)
        first = os.path.join(mount, "..2026_11_30_08_00_00.000000001")
        os.mkdir(first)
        write_file(os.path.join(first, "pillion.yaml"), self.config("a"))
        os.symlink(os.path.basename(first), os.path.join(mount, "..data"))
        os.symlink("..data/pillion.yaml", os.path.join(mount, "pillion.yaml"))
        # Polling off: only the inotify watch can see the swap.
        self.start_pillion(os.path.join(mount, "pillion.yaml"), "--config-poll-interval", "0")
        self.assertEqual(self.served_by(), "a")

        def swap(name, cluster):
            new = os.path.join(mount, name)
            os.mkdir(new)
            write_file(os.path.join(new, "pillion.yaml"), self.config(cluster))
            tmp = os.path.join(mount, "..data_tmp")
            os.symlink(name, tmp)
            old = os.readlink(os.path.join(mount, "..data"))
            os.rename(tmp, os.path.join(mount, "..data"))  # atomic, as kubelet does
            for entry in os.listdir(os.path.join(mount, old)):
                os.unlink(os.path.join(mount, old, entry))
            os.rmdir(os.path.join(mount, old))

        swap("..2026_11_30_09_00_00.000000002", "b")
        self.wait_for(self.version, lambda v: v == 2)
        for _ in range(3):
            self.assertEqual(self.served_by(), "b")
        swap("..2026_11_30_10_00_00.000000003", "a")
        self.wait_for(self.version, lambda v: v == 3)
        self.assertEqual(self.served_by(), "a")
        self.assertEqual(self.reloads("ok"), 2)
        self.assertEqual(self.reloads("failed"), 0)

    # (c) SIGHUP reloads when the watch is off (and still reopens the access log).
    def test_sighup_reloads_with_the_watch_disabled(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        proxy = self.start_pillion(config_path, "--no-watch-config")
        self.assertEqual(self.served_by(), "a")
        write_file(config_path, self.config("b"))
        time.sleep(2.5)  # longer than the default poll interval: nothing may notice
        self.assertStillOnA()
        self.assertNotIn("watching", proxy.stderr())
        os.rename(self.log_path, self.log_path + ".1")  # logrotate, then SIGHUP
        proxy.proc.send_signal(signal.SIGHUP)
        self.wait_for(self.version, lambda v: v == 2)
        self.assertEqual(self.served_by(), "b")  # its line is in the reopened file
        self.assertTrue(os.path.exists(self.log_path))
        self.assertEqual(self.reloads("ok"), 1)
        self.assertIsNone(proxy.proc.poll())

    # (d) invalid files: rejected with file:line, the old routes keep serving.
    def test_invalid_file_is_rejected_and_old_config_stays(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        proxy = self.start_pillion(config_path)
        self.assertEqual(self.served_by(), "a")

        # YAML syntax error: the flow map on line 7 is not closed; the parser notices at the
        # first cluster entry (line 9, column 3).
        broken = self.config("b").replace("cluster: b }", "cluster: b")
        write_file(config_path, broken)
        self.wait_for(lambda: self.reloads("failed"), lambda v: v == 1)
        self.wait_stderr("config reload rejected: %s:9:3: syntax error" % config_path)
        self.assertStillOnA()

        # A semantic error: a route to a cluster that does not exist, named at line 7.
        write_file(config_path, self.config("nope"))
        self.wait_for(lambda: self.reloads("failed"), lambda v: v == 2)
        self.assertRegex(proxy.stderr(),
                         r"config reload rejected: %s:7:\d+: .*nope" % re.escape(config_path))
        self.assertStillOnA()
        self.assertEqual(self.reloads("ok"), 0)

        # Fixed: applied, as version 2.
        write_file(config_path, self.config("b"))
        self.wait_for(self.version, lambda v: v == 2)
        self.assertEqual(self.served_by(), "b")
        self.assertEqual(self.reloads("failed"), 2)

    # (e) a slow request in flight finishes on the old config; new ones use the new one.
    def test_in_flight_request_finishes_on_the_old_config(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        self.start_pillion(config_path)
        result = {}

        def slow():
            with connect(self.port, timeout=10) as sock:
                sock.sendall(b"GET /delay?ms=3000 HTTP/1.1\r\nHost: svc\r\n\r\n")
                result["resp"] = read_response(sock, timeout=10)
                result["done"] = time.monotonic()

        thread = threading.Thread(target=slow)
        thread.start()
        self.addCleanup(thread.join, 15)
        # The request is at upstream a now (3 s there: the reload is seen well before).
        a_address = "127.0.0.1:%d" % self.ports["a"]
        self.wait_for(lambda: cluster_endpoints(self.proxy, "a")[a_address]["active_requests"],
                      lambda v: v == 1)
        write_file(config_path, self.config("b"))
        self.wait_for(self.version, lambda v: v == 2)
        self.assertEqual(self.served_by(), "b")
        new_done = time.monotonic()
        self.assertTrue(thread.is_alive(), "the slow request ended before the reload was seen")
        thread.join(10)
        resp = result.get("resp")
        self.assertIsNotNone(resp)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"ok\n")
        self.assertGreater(result["done"], new_done)
        self.assertEqual(self.served_by(resp), "a")

    # (f) listeners are bound sockets: changing one needs a restart.
    def test_listener_change_is_rejected(self):
        config_path = self.path("pillion.yaml")
        write_file(config_path, self.config("a"))
        proxy = self.start_pillion(config_path)
        other = free_port()
        write_file(config_path, self.config("b", listen_port=other))
        self.wait_for(lambda: self.reloads("failed"), lambda v: v == 1)
        self.assertIn(
            "config reload rejected: %s: listener changes need a restart: listener 'main' "
            "address 127.0.0.1:%d -> 127.0.0.1:%d" % (config_path, self.port, other),
            proxy.stderr())
        self.assertStillOnA()  # the routes of the rejected file were not applied either
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", other), timeout=1).close()


if __name__ == "__main__":
    unittest.main()
