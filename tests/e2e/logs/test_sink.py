"""The output side: the sink down for a while and back (back-pressure: reading stops, nothing is
lost), a sink that rejects some items of a bulk request (only those are retried), items refused
for good (dead-letter file), and a sink that refuses every request (a clear error, then
recovery)."""

import base64
import json
import shutil
import ssl
import subprocess
import time
import unittest
import zlib

from bulk_server import BulkSink
from logs_case import LogsCase, Writer, scaled


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
