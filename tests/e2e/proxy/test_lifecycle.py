"""Process lifecycle: SIGTERM/SIGINT/POST /drain drain (readiness fails at once; new connections
are still served with Connection: close for the drain time, then refused; in-flight requests
finish, bounded by the drain time again; exit 0), a second signal stops at once, /quitquitquit
skips the drain time, health-check switches; a second proxy on a taken port fails at startup
saying so; a bad config exits non-zero before binding."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import PILLION, free_port, wait_port
from misbehaving import (ProxyCase, connect, get, is_closed, read_response, start_proxy,
                         start_upstream, yaml_config)


class InFlight(threading.Thread):
    """Sends one request on its own connection and records the response and when it came."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.sock = connect(port, timeout=15)
        self.path = path
        self.resp = self.error = self.done_at = None
        self.closed_after = False

    def run(self):
        try:
            self.sock.sendall(b"GET %s HTTP/1.1\r\nHost: svc\r\n\r\n" % self.path.encode())
            self.resp = read_response(self.sock, timeout=15)
            self.done_at = time.monotonic()
            self.closed_after = is_closed(self.sock, timeout=3)
        except (OSError, AssertionError) as e:
            self.error = e
            self.done_at = time.monotonic()
        finally:
            self.sock.close()


def connect_refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.02)
    return None


class Drain(ProxyCase):
    """Drain with one knob, D = timeouts.drain: readiness fails at once; for D the listeners
    stay open and every response says Connection: close; then listeners and idle connections
    close; requests in flight get up to D more; exit 0."""

    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)

    def drain_with_slow_request(self, sig):
        # D = 2 s, the slow request takes 3 s: it is still in flight when the listener closes
        # (after D) and it ends well before the in-flight bound (2 D = 4 s) would cut it.
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "2s"})
        self.assertEqual(proxy.admin("/ready"), (200, "LIVE\n"))
        idle = connect(proxy.port)
        self.addCleanup(idle.close)
        idle.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
        self.assertEqual(read_response(idle).status, 200)

        slow = InFlight(proxy.port, "/delay?ms=3000")
        slow.start()
        # The slow request has arrived (the first one's count may lag its response a little).
        proxy.wait_stat("downstream_rq_total", lambda v: v == 2)
        proxy.wait_stat("downstream_rq_active", lambda v: v == 1)
        sent_at = time.monotonic()
        proxy.proc.send_signal(sig)

        # Readiness fails at once (the signal is handled asynchronously: poll for it).
        self.assertIsNotNone(wait_until(lambda: proxy.admin("/ready")[0] == 503, 5.0))
        self.assertEqual(proxy.admin("/ready"), (503, "DRAINING\n"))
        # Stage 1: a new connection is still served, told to go away.
        fresh = get(proxy.port)
        self.assertEqual(fresh.status, 200)
        self.assertEqual(fresh.header("connection"), "close")
        # The idle keep-alive connection gets its next answer with Connection: close.
        idle.sendall(b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n")
        again = read_response(idle)
        self.assertEqual((again.status, again.header("connection")), (200, "close"))
        self.assertTrue(is_closed(idle, timeout=5), "keep-alive connection not closed")
        # Stage 2, after D: the listener closes, while the slow request is still in flight.
        refused_at = wait_until(lambda: connect_refused(proxy.port), 10.0)
        self.assertIsNotNone(refused_at, "listener still open after the drain time")
        self.assertGreaterEqual(refused_at - sent_at, 1.8)

        slow.join(15)
        self.assertIsNone(slow.error)
        self.assertEqual(slow.resp.status, 200)
        self.assertEqual(slow.resp.body, b"ok\n")
        self.assertEqual(slow.resp.header("connection"), "close")
        self.assertTrue(slow.closed_after)
        self.assertLess(refused_at, slow.done_at,
                        "the listener closed only once the in-flight request was done")
        rc = proxy.proc.wait(10)
        exited_at = time.monotonic()
        self.assertEqual(rc, 0)
        # It left once the last request was done (about 3 s), not at the in-flight bound
        # (2 D = 4 s), and not before D.
        self.assertLess(exited_at - sent_at, 3.85)
        self.assertGreaterEqual(exited_at - sent_at, 2.0)
        entry = proxy.log_entry(slow.resp.header("x-request-id"))
        self.assertEqual(entry["status"], "200")
        self.assertEqual(entry["flags"], "-")
        return proxy

    def test_sigterm_lets_in_flight_request_finish_and_exits_0(self):
        proxy = self.drain_with_slow_request(signal.SIGTERM)
        self.assertIn("SIGTERM", proxy.stderr())

    def test_sigint_drains_the_same_way(self):
        proxy = self.drain_with_slow_request(signal.SIGINT)
        self.assertIn("SIGINT", proxy.stderr())

    def test_idle_proxy_keeps_serving_for_the_drain_time_then_exits(self):
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "2s"})
        self.assertEqual(get(proxy.port).status, 200)
        start = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        # The signal is handled asynchronously: a request sent in the same instant may still be
        # answered as before the drain. Wait until the proxy says it drains, then ask.
        self.assertIsNotNone(wait_until(lambda: proxy.admin("/ready")[0] == 503, 5.0))
        # A load balancer that has not noticed yet still gets answers.
        late = get(proxy.port)
        self.assertEqual((late.status, late.header("connection")), (200, "close"))
        self.assertEqual(proxy.proc.wait(10), 0)
        elapsed = time.monotonic() - start
        # Exits after D (2 s), and with nothing in flight not at the in-flight bound (2 D).
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 3.5)
        # The access log got every line before exit.
        self.assertEqual(len(proxy.log_lines()), 2)

    def test_request_outlasting_drain_is_cut_and_exit_is_0_after_twice_the_drain_time(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                proxy = start_proxy(self, self.upstream, name="p%d" % sig,
                                    timeouts={"drain": "1s"})
                slow = InFlight(proxy.port, "/delay?ms=8000")
                slow.start()
                proxy.wait_stat("downstream_rq_active", lambda v: v == 1)
                sent_at = time.monotonic()
                proxy.proc.send_signal(sig)
                rc = proxy.proc.wait(6)
                elapsed = time.monotonic() - sent_at
                self.assertEqual(rc, 0)
                self.assertGreaterEqual(elapsed, 1.9)
                self.assertLess(elapsed, 3.5)
                slow.join(5)
                # The client is not left hanging: an error reply or a closed connection.
                self.assertLess(slow.done_at - sent_at, 3.5)
                if slow.resp is not None:
                    self.assertGreaterEqual(slow.resp.status, 500)
                    self.assertEqual(slow.resp.header("connection"), "close")
                self.assertIn("drain", proxy.stderr())

    def test_request_cut_by_drain_is_not_blamed_on_the_upstream(self):
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "1s"})
        slow = InFlight(proxy.port, "/delay?ms=5000")
        slow.start()
        proxy.wait_stat("downstream_rq_active", lambda v: v == 1)
        proxy.proc.send_signal(signal.SIGTERM)
        self.assertEqual(proxy.proc.wait(6), 0)
        slow.join(5)
        self.assertIsNotNone(slow.resp)
        entry = proxy.log_entry(slow.resp.header("x-request-id"))
        self.assertNotIn("UR", entry["flags"].split(","))
        self.assertNotEqual(slow.resp.status, 502)

    def test_sigterm_with_many_in_flight_requests(self):
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "2s"})
        slows = [InFlight(proxy.port, "/delay?ms=1500") for _ in range(20)]
        for slow in slows:
            slow.start()
        proxy.wait_stat("downstream_rq_active", lambda v: v == 20, timeout=10)
        proxy.proc.send_signal(signal.SIGTERM)
        self.assertEqual(proxy.proc.wait(8), 0)
        for slow in slows:
            slow.join(10)
            self.assertIsNone(slow.error)
            self.assertEqual(slow.resp.status, 200)
        self.assertEqual(len(proxy.log_lines()), 20)

    def test_an_open_admin_connection_does_not_delay_exit(self):
        # Prometheus keeps its scrape connection open; shutdown must not wait for it.
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "0s"})
        admin = connect(proxy.admin_port)
        self.addCleanup(admin.close)
        admin.sendall(b"GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n")
        self.assertEqual(read_response(admin).status, 200)
        start = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        self.assertEqual(proxy.proc.wait(10), 0)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_second_signal_stops_at_once(self):
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "30s"})
        proxy.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(wait_until(lambda: proxy.admin("/ready")[0] == 503, 1.0))
        start = time.monotonic()
        proxy.proc.send_signal(signal.SIGINT)
        self.assertEqual(proxy.proc.wait(5), 0)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertIn("stopping now", proxy.stderr())


class AdminLifecycle(ProxyCase):
    """The admin API's drain, quit and health-check switches (POST only)."""

    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)

    def test_mutating_endpoints_need_post(self):
        proxy = start_proxy(self, self.upstream)
        for path in ("/drain", "/quitquitquit", "/healthcheck/fail", "/healthcheck/ok"):
            status, body = proxy.admin(path)
            self.assertEqual(status, 405, path)
            self.assertIn("POST", body)
        self.assertEqual(proxy.admin("/ready"), (200, "LIVE\n"))
        self.assertIsNone(proxy.proc.poll())

    def test_healthcheck_fail_and_ok_switch_readiness_but_keep_serving(self):
        proxy = start_proxy(self, self.upstream)
        self.assertEqual(proxy.admin("/healthcheck/fail", method="POST")[0], 200)
        self.assertEqual(proxy.admin("/ready")[0], 503)
        self.assertEqual(get(proxy.port).status, 200)
        self.assertEqual(proxy.admin("/healthcheck/ok", method="POST")[0], 200)
        self.assertEqual(proxy.admin("/ready"), (200, "LIVE\n"))

    def test_post_drain_starts_the_same_drain_as_sigterm(self):
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "1s"})
        start = time.monotonic()
        self.assertEqual(proxy.admin("/drain", method="POST"), (200, "draining\n"))
        self.assertEqual(proxy.admin("/ready"), (503, "DRAINING\n"))
        self.assertEqual(get(proxy.port).header("connection"), "close")
        self.assertEqual(proxy.proc.wait(5), 0)
        self.assertGreaterEqual(time.monotonic() - start, 0.9)

    def test_quitquitquit_exits_without_the_drain_time(self):
        # For Jobs: the app is done, nobody will call in; no need to wait the drain time.
        proxy = start_proxy(self, self.upstream, timeouts={"drain": "30s"})
        start = time.monotonic()
        self.assertEqual(proxy.admin("/quitquitquit", method="POST"), (200, "exiting\n"))
        self.assertEqual(proxy.proc.wait(5), 0)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_config_dump_clusters_and_memory_are_json(self):
        proxy = start_proxy(self, self.upstream)
        status, body = proxy.admin("/config_dump")
        self.assertEqual(status, 200)
        dump = json.loads(body)
        self.assertEqual(dump["clusters"][0]["endpoints"],
                         [{"address": "127.0.0.1:%d" % self.upstream, "weight": 1}])
        self.assertEqual(dump["listeners"][0]["address"], "127.0.0.1:%d" % proxy.port)
        status, body = proxy.admin("/clusters")
        self.assertEqual(status, 200)
        cluster = json.loads(body)["clusters"][0]
        self.assertEqual(cluster["endpoints"][0]["address"], "127.0.0.1:%d" % self.upstream)
        status, body = proxy.admin("/memory")
        self.assertEqual(status, 200)
        memory = json.loads(body)
        self.assertGreater(memory["rss_bytes"], 1 << 20)
        if not os.environ.get("PILLION_SANITIZED"):  # ASan's allocator is invisible to mallinfo2
            self.assertGreater(memory["heap_allocated_bytes"], 0)


class Startup(ProxyCase):
    def test_second_proxy_on_the_same_port_fails_with_address_in_use(self):
        upstream = start_upstream(self)
        first = start_proxy(self, upstream)
        config = self.path("second.yaml")
        with open(config, "w") as f:
            f.write(yaml_config(first.port, free_port(), upstream, self.path("second.log")))
        proc = subprocess.run([PILLION, "proxy", "-c", config], capture_output=True, text=True,
                              timeout=10)
        self.assertNotEqual(proc.returncode, 0)
        output = (proc.stdout + proc.stderr).lower()
        self.assertIn("address already in use", output)
        self.assertIn(str(first.port), output)
        # The first one is untouched.
        self.assertEqual(get(first.port).status, 200)

    def test_second_proxy_from_the_command_line_fails_too(self):
        upstream = start_upstream(self)
        first = start_proxy(self, upstream)
        proc = subprocess.run([PILLION, "proxy", "--listen", "127.0.0.1:%d" % first.port,
                               "--upstream", "http://127.0.0.1:%d" % upstream, "--workers", "2",
                               "--admin", "127.0.0.1:%d" % free_port(), "--access-log", "off"],
                              capture_output=True, text=True, timeout=10)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("address already in use", (proc.stdout + proc.stderr).lower())

    def test_admin_on_a_non_loopback_address_needs_to_be_allowed(self):
        # The admin API can drain and stop the proxy: exposing it must be a decision.
        args = [PILLION, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                "--upstream", "http://127.0.0.1:1", "--access-log", "off",
                "--admin", "0.0.0.0:%d" % free_port()]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not a loopback address", proc.stdout + proc.stderr)
        allowed = self.start(args + ["--admin-allow-non-loopback", "--drain-time", "0s"])
        wait_port(int(args[-1].rsplit(":", 1)[1]), proc=allowed)
        self.assertIsNone(allowed.poll())

    def test_admin_port_taken_fails_at_startup(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            admin_port = taken.getsockname()[1]
            proc = subprocess.run([PILLION, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                                   "--upstream", "http://127.0.0.1:1", "--access-log", "off",
                                   "--admin", "127.0.0.1:%d" % admin_port],
                                  capture_output=True, text=True, timeout=10)
        self.assertNotEqual(proc.returncode, 0)
        output = proc.stdout + proc.stderr
        self.assertIn("admin", output)
        self.assertIn("address already in use", output.lower())

    def test_bad_config_exits_non_zero_before_binding(self):
        # The listener port is held by us: if the proxy tried to bind before validating, it
        # would report "address already in use" instead of the config error.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            admin = free_port()
            config = self.path("bad.yaml")
            with open(config, "w") as f:
                f.write("admin: { address: 127.0.0.1:%d }\n"
                        "listeners:\n"
                        "  - { name: main, address: 127.0.0.1:%d }\n"
                        "routes:\n"
                        "  default:\n"
                        "    - { cluster: app }\n"
                        "clusters:\n"
                        "  - name: app\n"
                        "    endpoints: [ \"127.0.0.1:8080\", \"payments\" ]\n" % (admin, port))
            start = time.monotonic()
            proc = subprocess.run([PILLION, "proxy", "-c", config], capture_output=True,
                                  text=True, timeout=10)
            self.assertLess(time.monotonic() - start, 3)
        self.assertNotEqual(proc.returncode, 0)
        output = proc.stdout + proc.stderr
        self.assertIn("%s:9:" % config, output)
        self.assertIn("clusters[0].endpoints[1]", output)
        self.assertIn("payments", output)
        self.assertNotIn("already in use", output)
        # The admin port was never bound either.
        self.assertTrue(connect_refused(admin))

    def test_missing_config_file_exits_non_zero(self):
        proc = subprocess.run([PILLION, "proxy", "-c", self.path("nope.yaml")],
                              capture_output=True, text=True, timeout=10)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("nope.yaml", proc.stdout + proc.stderr)

    def test_restart_on_the_same_port_after_exit(self):
        # After a clean exit the port is immediately reusable (no TIME_WAIT trouble).
        upstream = start_upstream(self)
        first = start_proxy(self, upstream, timeouts={"drain": "200ms"})
        self.assertEqual(get(first.port).status, 200)
        first.proc.send_signal(signal.SIGTERM)
        self.assertEqual(first.proc.wait(5), 0)
        out = open(self.path("again.out"), "w")
        self.addCleanup(out.close)
        proc = self.start([PILLION, "proxy", "-c", first.config_path], stdout=out,
                          stderr=subprocess.STDOUT)
        wait_port(first.port, proc=proc)
        self.assertEqual(get(first.port).status, 200)


if __name__ == "__main__":
    unittest.main()
