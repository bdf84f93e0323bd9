"""The simple cases through the command line: the seed's line to the seed's JSON on stdout, the
three parsers, multi-line records, over-long lines, enrichment, file output, and clear errors
for a bad regex and an unreadable path."""

import json
import os
import shutil
import subprocess
import unittest

from harness import PILLION, ProcessTestCase


class CliTest(ProcessTestCase):
    def run_logs(self, *args, env_extra=None, expect_rc=0, prefix=()):
        env = {k: v for k, v in os.environ.items()
               if k not in ("POD_NAME", "POD_NAMESPACE", "CONTAINER_NAME", "NODE_NAME")}
        env.update(env_extra or {})
        proc = subprocess.run([*prefix, PILLION, "logs", *args, "--exit-at-eof"], capture_output=True,
                              text=True, timeout=60, env=env)
        self.assertEqual(proc.returncode, expect_rc, proc.stderr)
        return proc

    def docs(self, proc):
        return [json.loads(l) for l in proc.stdout.splitlines()]

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def test_seed_line_becomes_seed_json(self):
        self.write("app.log", "2024-01-15 14:32:01 INFO order_id=ORD-9921 status=FULFILLED\n")
        proc = self.run_logs("--path", self.path("*.log"), "--format", "keyvalue",
                             "--output", "stdout")
        self.assertEqual(proc.stdout,
                         '{"@timestamp":"2024-01-15T14:32:01Z","level":"INFO",'
                         '"order_id":"ORD-9921","status":"FULFILLED"}\n')

    def test_keyvalue_quotes_zone_and_parse_failures(self):
        self.write("app.log",
                   '2024-01-15 14:32:01.250 WARN msg="card \\"declined\\"" retry=2 slow path\n'
                   "not a log line\n")
        docs = self.docs(self.run_logs("--path", self.path("app.log"), "--time-zone", "+02:00"))
        self.assertEqual(docs[0], {"@timestamp": "2024-01-15T12:32:01.250Z", "level": "WARN",
                                   "msg": 'card "declined"', "retry": "2",
                                   "message": "slow path"})
        self.assertEqual(docs[1]["message"], "not a log line")
        self.assertTrue(docs[1]["parse_error"])

    def test_layout_and_named_time_zone(self):
        # Summer and winter time of a named zone; a custom input layout.
        self.write("app.log", "15/Jul/2024 14:32:01 INFO a=1\n15/Jan/2024 14:32:01 INFO a=2\n")
        docs = self.docs(self.run_logs("--path", self.path("app.log"), "--time-layout",
                                       "%d/%b/%Y %H:%M:%S", "--time-zone", "Europe/Berlin"))
        self.assertEqual([d["@timestamp"] for d in docs],
                         ["2024-07-15T12:32:01Z", "2024-01-15T13:32:01Z"])

    def test_json_lines_pass_through_enriched(self):
        self.write("app.log", '{"time":"2024-01-15T14:32:01+01:00","msg":"hi","n":3}\n')
        docs = self.docs(self.run_logs(
            "--path", self.path("app.log"), "--format", "json", "--time-layout", "rfc3339",
            env_extra={"POD_NAME": "payments-7d9f", "POD_NAMESPACE": "shop",
                       "CONTAINER_NAME": "app", "NODE_NAME": "node-3"}))
        self.assertEqual(docs, [{"@timestamp": "2024-01-15T13:32:01Z",
                                 "time": "2024-01-15T14:32:01+01:00", "msg": "hi", "n": 3,
                                 "kubernetes.pod.name": "payments-7d9f",
                                 "kubernetes.namespace": "shop",
                                 "kubernetes.container.name": "app",
                                 "kubernetes.node.name": "node-3"}])

    def test_regex_with_named_groups(self):
        self.write("app.log", "[15/Jan/2024:14:32:01] GET /cart 200\n")
        docs = self.docs(self.run_logs(
            "--path", self.path("app.log"),
            "--regex", r"^\[(?<time>[^\]]+)\] (?<method>\S+) (?<path>\S+) (?<status>\d+)$",
            "--time-layout", "%d/%b/%Y:%H:%M:%S"))
        self.assertEqual(docs, [{"@timestamp": "2024-01-15T14:32:01Z", "method": "GET",
                                 "path": "/cart", "status": "200"}])

    def test_multiline_and_truncation(self):
        long_value = "x" * 500
        self.write("app.log",
                   "2024-01-15 14:32:01 ERROR msg=boom\n"
                   "  at Foo.bar(Foo.java:1)\n"
                   "\tat Main.main(Main.java:2)\n"
                   f"2024-01-15 14:32:02 INFO big={long_value}\n"
                   "2024-01-15 14:32:03 INFO last=1\n")
        docs = self.docs(self.run_logs("--path", self.path("app.log"), "--multiline", "indent",
                                       "--max-line-bytes", "100"))
        self.assertEqual(len(docs), 3)
        self.assertEqual(docs[0]["message"], "  at Foo.bar(Foo.java:1)\n\tat Main.main(Main.java:2)")
        self.assertTrue(docs[1]["truncated"])
        self.assertLess(len(docs[1]["big"]), 100)
        self.assertEqual(docs[2]["last"], "1")

    def test_file_output_and_static_fields(self):
        self.write("app.log", "2024-01-15 14:32:01 INFO a=1\n2024-01-15 14:32:02 INFO a=2\n")
        config = self.write("logs.yaml", f"""
input: {{ paths: ["{self.path('*.log')}"] }}
parser: {{ format: keyvalue }}
enrich: {{ kubernetes: false, fields: {{ team: payments }} }}
output: {{ type: file, path: {self.path('out.ndjson')} }}
exit_at_eof: true
""")
        self.run_logs("-c", config)
        with open(self.path("out.ndjson")) as f:
            docs = [json.loads(l) for l in f]
        self.assertEqual([d["a"] for d in docs], ["1", "2"])
        self.assertEqual(docs[0]["team"], "payments")

    def test_bad_regex_is_a_clear_error(self):
        self.write("app.log", "x\n")
        proc = self.run_logs("--path", self.path("app.log"), "--regex", "(?<a>[", expect_rc=1)
        self.assertIn("bad regex", proc.stderr)

    def test_unknown_config_key_is_a_clear_error(self):
        config = self.write("logs.yaml", "input: { paths: [a.log], colour: blue }\n")
        proc = self.run_logs("-c", config, expect_rc=1)
        self.assertIn("unknown key 'input.colour'", proc.stderr)

    def test_unreadable_path_is_a_clear_error(self):
        path = self.write("secret.log", "2024-01-15 14:32:01 INFO a=1\n")
        os.chmod(path, 0)
        prefix = ()
        if os.geteuid() == 0:
            # root reads every file: drop to nobody for this run.
            if not shutil.which("setpriv"):
                self.skipTest("running as root without setpriv")
            os.chmod(self.tmp.name, 0o755)
            prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
        proc = self.run_logs("--path", path, expect_rc=1, prefix=prefix)
        self.assertIn("cannot read", proc.stderr)
        self.assertIn("Permission denied", proc.stderr)

    def test_missing_directory_is_reported(self):
        proc = self.run_logs("--path", self.path("nowhere/*.log"))
        self.assertIn("no file matches", proc.stderr)


if __name__ == "__main__":
    unittest.main()
