"""The access log as a user reads it: one text line (key=value) or one JSON object per request
with the documented fields and values, written within a fraction of a second, never torn or lost
under concurrency, escaped so a client cannot forge fields, and reopened on SIGHUP so a renamed
(rotated) file stops growing and new lines land in a new file at the configured path."""

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import time
import unittest

from harness import PILLION, free_port, wait_port
from misbehaving import (ProxyCase, connect, get, parse_log_line, read_response, request,
                         start_proxy, start_upstream)

FIELDS = ["request_id", "method", "path", "protocol", "status", "flags", "bytes_in", "bytes",
          "latency_ms", "duration_us", "upstream", "upstream_us", "attempts", "client",
          "listener"]
TEXT_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] (.*)$")


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def poll(fetch, done, timeout=3.0):
    """Calls fetch() until done(value) or the deadline (flushes are batched); returns the last
    value either way, for the caller's assertions."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


class TextFormat(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream, workers=2)

    def test_line_has_every_field_in_order_with_the_right_values(self):
        with connect(self.proxy.port) as sock:
            sock.sendall(b"POST /ok?x=1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello")
            resp = read_response(sock)
            client_port = sock.getsockname()[1]
        self.assertEqual(resp.status, 200)
        rid = resp.header("x-request-id")
        entry = self.proxy.log_entry(rid)
        line = [l for l in self.proxy.log_lines() if rid in l][0]
        match = TEXT_LINE.match(line)
        self.assertIsNotNone(match, line)
        keys = re.findall(r"(?:^| )(\w+)=", match.group(2))
        self.assertEqual(keys, FIELDS)
        self.assertEqual(entry["method"], "POST")
        self.assertEqual(entry["path"], "/ok?x=1")
        self.assertEqual(entry["protocol"], "HTTP/1.1")
        self.assertEqual(entry["status"], "200")
        self.assertEqual(entry["flags"], "-")
        self.assertEqual(entry["bytes_in"], "5")
        self.assertEqual(entry["bytes"], "3")
        self.assertEqual(entry["upstream"], "127.0.0.1:%d" % self.upstream)
        self.assertEqual(entry["attempts"], "1")
        self.assertEqual(entry["client"], "127.0.0.1:%d" % client_port)
        self.assertEqual(entry["listener"], "main")
        duration_us, upstream_us = int(entry["duration_us"]), int(entry["upstream_us"])
        self.assertGreaterEqual(duration_us, upstream_us)
        self.assertEqual(int(entry["latency_ms"]), duration_us // 1000)

    def test_latency_reflects_a_slow_upstream(self):
        resp = get(self.proxy.port, "/delay?ms=300")
        entry = self.proxy.log_entry(resp.header("x-request-id"))
        self.assertGreaterEqual(int(entry["latency_ms"]), 290)
        self.assertLess(int(entry["latency_ms"]), 2000)
        self.assertGreaterEqual(int(entry["upstream_us"]), 290000)

    def test_line_is_written_within_a_fraction_of_a_second(self):
        resp = get(self.proxy.port, "/ok")
        rid = resp.header("x-request-id")
        start = time.monotonic()
        self.proxy.log_entry(rid, timeout=2)
        self.assertLess(time.monotonic() - start, 0.5)

    def test_client_request_id_is_logged_and_cannot_forge_fields(self):
        resp = get(self.proxy.port, "/ok", extra="X-Request-ID: evil status=999 flags=XX\r\n")
        self.assertEqual(resp.status, 200)
        lines = poll(lambda: [l for l in self.proxy.log_lines() if "evil" in l],
                     lambda found: found)
        self.assertEqual(len(lines), 1)
        self.assertEqual(re.findall(r"(?:^| )(\w+)=", TEXT_LINE.match(lines[0]).group(2)),
                         FIELDS)
        entry = parse_log_line(lines[0])
        self.assertEqual(entry["status"], "200")
        self.assertEqual(entry["flags"], "-")
        self.assertTrue(entry["request_id"].startswith("evil"))

    def test_every_request_gets_one_whole_line_under_concurrency(self):
        def one(i):
            resp = get(self.proxy.port, "/ok?i=%d" % i)
            return resp.header("x-request-id")

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            ids = list(pool.map(one, range(400)))
        self.assertEqual(len(set(ids)), 400)
        deadline = time.monotonic() + 3
        while len(self.proxy.log_lines()) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = self.proxy.log_lines()
        self.assertEqual(len(lines), 400)
        seen = set()
        for line in lines:
            self.assertIsNotNone(TEXT_LINE.match(line), line)
            entry = parse_log_line(line)
            self.assertEqual(list(entry), FIELDS, line)
            seen.add(entry["request_id"])
        self.assertEqual(seen, set(ids))
        self.assertEqual(self.proxy.stats()["access_log_dropped"], 0)

    def test_failed_request_line(self):
        resp = request(self.proxy.port, b"BAD\r\n\r\n")
        entry = self.proxy.log_entry(resp.header("x-request-id"))
        self.assertEqual(entry["status"], "400")
        self.assertEqual(entry["flags"], "DPE")
        self.assertEqual(entry["upstream"], "-")
        self.assertEqual(entry["upstream_us"], "-")
        self.assertEqual(entry["attempts"], "0")


class JsonFormat(ProxyCase):
    def setUp(self):
        super().setUp()
        self.upstream = start_upstream(self)
        self.proxy = start_proxy(self, self.upstream, log_format="json")

    def json_lines(self):
        with open(self.proxy.log_path, "rb") as f:
            return [json.loads(line) for line in f.read().splitlines() if line]

    def test_lines_parse_and_carry_the_fields(self):
        ok = request(self.proxy.port, b"POST /ok HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\n\r\n"
                     b"abcd")
        bad = get(self.proxy.port, "/close")
        self.assertEqual((ok.status, bad.status), (200, 502))
        self.proxy.log_entry(bad.header("x-request-id"))
        lines = {line["request_id"]: line for line in self.json_lines()}
        first = lines[ok.header("x-request-id")]
        for field in ["time"] + FIELDS:
            self.assertIn(field, first)
        self.assertRegex(first["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(first["status"], 200)
        self.assertEqual(first["method"], "POST")
        self.assertEqual(first["bytes_in"], 4)
        self.assertEqual(first["bytes"], 3)
        self.assertEqual(first["flags"], "-")
        self.assertEqual(first["upstream"], "127.0.0.1:%d" % self.upstream)
        self.assertIsInstance(first["duration_us"], int)
        self.assertIsInstance(first["upstream_us"], int)
        second = lines[bad.header("x-request-id")]
        self.assertEqual(second["status"], 502)
        self.assertEqual(second["flags"], "UR")
        self.assertIsNone(second["upstream_us"])

    def test_quotes_and_backslashes_are_escaped(self):
        resp = get(self.proxy.port, '/a"b\\c', extra='X-Request-ID: q"u\\o te\r\n')
        self.assertEqual(resp.status, 200)
        self.proxy.log_entry('q"u\\o te')
        entry = [line for line in self.json_lines() if line["request_id"] == 'q"u\\o te'][0]
        self.assertEqual(entry["path"], '/a"b\\c')

    def test_non_utf8_target_still_gives_valid_json(self):
        resp = request(self.proxy.port, b"GET /a?q=\xc3\xa9\xff HTTP/1.1\r\nHost: svc\r\n\r\n")
        self.assertEqual(resp.status, 200)
        rid = resp.header("x-request-id").encode()

        def lines():
            with open(self.proxy.log_path, "rb") as f:
                return f.read().splitlines()

        got = poll(lines, lambda got: any(rid in line for line in got))
        self.assertTrue(any(rid in line for line in got), got)
        for line in got:
            json.loads(line.decode("utf-8"))


class Rotation(ProxyCase):
    def test_sighup_reopens_the_renamed_file(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream, workers=2)
        before = [get(proxy.port, "/ok?n=%d" % i).header("x-request-id") for i in range(5)]
        proxy.log_entry(before[-1])
        rotated = proxy.log_path + ".1"
        os.rename(proxy.log_path, rotated)
        # Until the signal, lines still go to the renamed file (same inode).
        mid = get(proxy.port, "/ok?n=mid").header("x-request-id")
        deadline = time.monotonic() + 2
        while mid not in read_text(rotated) and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 2
        while not os.path.exists(proxy.log_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(os.path.exists(proxy.log_path), "SIGHUP did not reopen the log path")
        after = [get(proxy.port, "/ok?n=a%d" % i).header("x-request-id") for i in range(5)]
        proxy.log_entry(after[-1])
        new = poll(lambda: read_text(proxy.log_path),
                   lambda new: all(rid in new for rid in after))
        old = read_text(rotated)
        for rid in before + [mid]:
            self.assertIn(rid, old)
            self.assertNotIn(rid, new)
        for rid in after:
            self.assertIn(rid, new)
            self.assertNotIn(rid, old)
        self.assertIsNone(proxy.proc.poll(), "SIGHUP ended the process")
        self.assertEqual(proxy.stats()["access_log_dropped"], 0)

    def test_repeated_sighup_under_load_loses_no_line(self):
        upstream = start_upstream(self)
        proxy = start_proxy(self, upstream, workers=2)
        ids = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(lambda i=i: get(proxy.port, "/ok?i=%d" % i)
                                   .header("x-request-id")) for i in range(300)]
            for generation in range(1, 4):
                time.sleep(0.1)
                # The writer reopens asynchronously after SIGHUP: rotate the file it created.
                self.assertTrue(poll(lambda: os.path.exists(proxy.log_path), bool, timeout=5),
                                "SIGHUP did not reopen the log path")
                os.rename(proxy.log_path, "%s.%d" % (proxy.log_path, generation))
                proxy.proc.send_signal(signal.SIGHUP)
            ids = [f.result() for f in futures]
        self.assertTrue(poll(lambda: os.path.exists(proxy.log_path), bool, timeout=5),
                        "SIGHUP did not reopen the log path")
        proxy.log_entry(get(proxy.port, "/ok?last").header("x-request-id"))

        def read_all():
            seen = []
            for name in [proxy.log_path] + ["%s.%d" % (proxy.log_path, g) for g in range(1, 4)]:
                if os.path.exists(name):
                    with open(name) as f:
                        for line in f.read().splitlines():
                            self.assertIsNotNone(TEXT_LINE.match(line), line)
                            seen.append(parse_log_line(line)["request_id"])
            return seen

        seen = poll(read_all, lambda seen: set(ids) <= set(seen), timeout=5)
        self.assertEqual(len(seen), len(set(seen)), "a line was written twice")
        self.assertTrue(set(ids) <= set(seen), "lines lost across rotation")

    def test_access_log_to_stdout_by_default_and_off(self):
        upstream = start_upstream(self)
        port, admin = free_port(), free_port()
        proc = self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % port, "--admin",
                           "127.0.0.1:%d" % admin, "--workers", "1", "--drain-time", "100ms", "--upstream",
                           "http://127.0.0.1:%d" % upstream], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
        wait_port(port, proc=proc)
        rid = get(port, "/ok").header("x-request-id")
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        self.assertIn("request_id=%s" % rid, out.decode())
        # --access-log off: no line anywhere, the proxy still serves.
        port2, admin2 = free_port(), free_port()
        proc = self.start([PILLION, "proxy", "--listen", "127.0.0.1:%d" % port2, "--admin",
                           "127.0.0.1:%d" % admin2, "--workers", "1", "--drain-time", "100ms",
                           "--access-log", "off",
                           "--upstream", "http://127.0.0.1:%d" % upstream],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wait_port(port2, proc=proc)
        self.assertEqual(get(port2, "/ok").status, 200)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=5)
        self.assertNotIn(b"request_id=", out)


if __name__ == "__main__":
    unittest.main()
