"""The output side: the sink down for a while and back (back-pressure: reading stops, nothing is
lost), a sink that rejects some items of a bulk request (only those are retried), items refused
for good (dead-letter file), and a sink that refuses every request (a clear error, then
recovery)."""

import base64
import json
import os
import shutil
import ssl
import subprocess
import time
import unittest
import urllib.request
import zlib

from bulk_server import BulkSink
from logs_case import ID, SANITIZED, LogsCase, Writer, line, scaled


class SinkTest(LogsCase):
    def setUp(self):
        super().setUp()
        self.sink = BulkSink().start()
        self.addCleanup(self.sink.stop)
        self.log = self.path("app.log")

    def test_sink_down_then_back(self):
        total = scaled(8000)
        writer = Writer(self.log, total, rate=scaled(4000))
        self.start_adapter(self.adapter_args([self.log], self.sink.url, ["--gzip"]))
        writer.start()
        self.wait_for(lambda: self.sink.count() >= total // 8, 30, "first records")
        self.sink.stop()  # connection refused from now on
        time.sleep(0.6)
        # Back-pressure: with the sink gone the adapter stops reading; the file is the buffer.
        before = self.metrics()
        time.sleep(1.0)
        after = self.metrics()
        self.assertEqual(before["pillion_logs_lines_read_total"],
                         after["pillion_logs_lines_read_total"])
        self.assertGreater(after["pillion_logs_lag_bytes"], 0)
        self.assertGreater(after["pillion_logs_sink_errors_total"], 0)
        self.sink.start()  # same port
        writer.join()
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        final = self.metrics()
        self.assertEqual(final["pillion_logs_records_shipped_total"], total)
        self.wait_for(lambda: self.metrics()["pillion_logs_lag_bytes"] == 0, 10, "lag 0")
        with self.sink.lock:
            self.assertEqual((self.sink.gzipped, self.sink.requests > 0),
                             (self.sink.requests, True), "--gzip: every request compressed")

    def test_sink_down_from_the_start_bounds_what_is_read(self):
        # A backlog far larger than one batch while the sink is down: the adapter reads one
        # batch and stops (the file is the buffer), memory stays small; then everything goes.
        total = scaled(40000)
        with open(self.log, "w") as f:
            f.writelines(line(seq) for seq in range(total))
        size = os.path.getsize(self.log)
        self.sink.stop()
        proc = self.start_adapter(self.adapter_args([self.log], self.sink.url,
                                                    ["--batch-max-records", "1000"]))
        self.wait_for(lambda: self.metrics()["pillion_logs_sink_errors_total"] >= 2, 10,
                      "failed requests")
        time.sleep(0.5)
        m = self.metrics()
        self.assertLessEqual(m["pillion_logs_lines_read_total"], 1000)
        self.assertEqual(m["pillion_logs_lag_bytes"], size)
        if not SANITIZED:
            self.assertLess(self.peak_rss_kib(proc), 32 * 1024)
        self.sink.start()
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        with self.sink.lock:
            self.assertLessEqual(max(items for items, _ in self.sink.batches), 1000)

    def test_metrics_names_and_values(self):
        good, bad = 90, 10
        with open(self.log, "w") as f:
            for seq in range(good + bad):
                f.write(line(seq) if seq % 10 else f"not a log line {seq}\n")
        size = os.path.getsize(self.log)
        config = self.path("logs.yaml")
        with open(config, "w") as f:
            f.write("output: { batch_max_bytes: 4096 }\n")
        self.start_adapter(self.adapter_args([self.log], self.sink.url, ["-c", config]))
        self.wait_for(lambda: self.metrics()["pillion_logs_records_shipped_total"] == good + bad,
                      30, "every record acknowledged")
        m = self.metrics()
        with self.sink.lock:
            batches = list(self.sink.batches)
            ids = list(self.sink.docs)
        self.assertEqual({k: m[f"pillion_logs_{k}"] for k in (
            "lines_read_total", "bytes_read_total", "records_parsed_total",
            "parse_failures_total", "records_shipped_total", "bytes_shipped_total",
            "records_retried_total", "lag_bytes", "files_open")}, {
            "lines_read_total": good + bad, "bytes_read_total": size,
            "records_parsed_total": good, "parse_failures_total": bad,
            "records_shipped_total": good + bad,
            "bytes_shipped_total": sum(b for _, b in batches),
            "records_retried_total": 0, "lag_bytes": 0, "files_open": 1})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            text = r.read().decode()
        self.assertIn("# TYPE pillion_logs_lines_read_total counter\n", text)
        self.assertIn("# TYPE pillion_logs_lag_bytes gauge\n", text)
        # Batching by size: the 4096-byte limit split the documents into several requests.
        self.assertGreater(len(batches), 1)
        # _id: one file identity, and the byte offset of the line.
        with open(self.log, "rb") as f:
            offsets, at = set(), 0
            for raw in f:
                offsets.add(at)
                at += len(raw)
        self.assertEqual(len({ID.fullmatch(i).group(1) for i in ids}), 1)
        self.assertEqual({int(ID.fullmatch(i).group(2), 16) for i in ids}, offsets)

    def test_partial_failure_retries_only_failed_items(self):
        total = scaled(5000)
        # Every third document is answered 429 on its first attempt.
        self.sink.retry_first = lambda _id: zlib.crc32(_id.encode()) % 3 == 0
        writer = Writer(self.log, total, rate=scaled(5000))
        self.start_adapter(self.adapter_args([self.log], self.sink.url))
        writer.start()
        writer.join()
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        with self.sink.lock:
            attempts = dict(self.sink.attempts)
        failed_first = [i for i in attempts if zlib.crc32(i.encode()) % 3 == 0]
        self.assertGreater(len(failed_first), 0)
        # Exactly the failed items went again, each once; the rest only once.
        for _id, n in attempts.items():
            self.assertEqual(n, 2 if _id in failed_first else 1, _id)
        self.assertEqual(self.metrics()["pillion_logs_records_retried_total"], len(failed_first))

    def test_items_refused_for_good_go_to_dead_letter(self):
        self.sink.reject = lambda doc: doc.get("poison") == "yes"
        with open(self.log, "w") as f:
            for seq in range(100):
                extra = " poison=yes" if seq in (10, 70) else ""
                f.write(f"2024-01-15 14:32:01 INFO seq={seq}{extra}\n")
        dead = self.path("dead.ndjson")
        self.start_adapter(self.adapter_args([self.log], self.sink.url, ["--dead-letter", dead]))
        self.wait_for(lambda: self.sink.count() >= 98, 30, "98 records")
        self.wait_for(lambda: self.metrics()["pillion_logs_records_rejected_total"] == 2, 10,
                      "2 rejections")
        with open(dead) as f:
            kept = [json.loads(l) for l in f]
        self.assertEqual(sorted(int(k["doc"]["seq"]) for k in kept), [10, 70])
        self.assertIn("mapper_parsing_exception", kept[0]["reason"])
        with open(self.stderr_path) as f:
            self.assertIn("refused a record for good", f.read())

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
    def test_https_with_a_private_ca_and_basic_auth(self):
        key, cert = self.path("key.pem"), self.path("cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.sink.stop()
        self.sink = BulkSink(tls=tls).start()
        self.addCleanup(self.sink.stop)
        total = 300
        with open(self.log, "w") as f:
            for seq in range(total):
                f.write(f"2024-01-15 14:32:01 INFO seq={seq} order_id=ORD-{seq} "
                        f'status="FULFILLED ok"\n')
        config = self.path("logs.yaml")
        with open(config, "w") as f:
            f.write(f"output: {{ type: elasticsearch, url: {self.sink.url}, ca_file: {cert}, "
                    f"username: elastic, password: s3cret, gzip: true }}\n")
        self.start_adapter(self.adapter_args([self.log], self.sink.url, ["-c", config]))
        self.wait_for(lambda: self.sink.count() >= total, 30, f"{total} records over TLS")
        self.assert_one_for_one(self.sink, total)
        self.assertEqual(self.sink.auth, "Basic " + base64.b64encode(b"elastic:s3cret").decode())

    def test_sink_refusing_every_request_is_a_clear_error(self):
        self.sink.status = 401
        with open(self.log, "w") as f:
            for seq in range(50):
                f.write(f"2024-01-15 14:32:01 INFO seq={seq}\n")
        self.start_adapter(self.adapter_args([self.log], self.sink.url))

        def said_refused():
            with open(self.stderr_path) as f:
                return "the sink refused the data: HTTP 401" in f.read()
        self.wait_for(said_refused, 10, "the refusal in the log")
        self.assertEqual(self.sink.count(), 0)
        self.sink.status = None  # the operator fixed the credentials
        self.wait_for(lambda: self.sink.count() >= 50, 30, "all records after the fix")


if __name__ == "__main__":
    unittest.main()
