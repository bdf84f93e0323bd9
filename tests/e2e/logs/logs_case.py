"""Shared pieces of the `pillion logs` end-to-end suites: a writer thread that appends numbered
lines in the seed's format, the adapter's command line, and the one-for-one check."""

import json
import os
import re
import threading
import time
import urllib.request

from harness import PILLION, ProcessTestCase, free_port, wait_port

SANITIZED = os.environ.get("PILLION_SANITIZED") == "1"
ID = re.compile(r"([0-9a-f]{16})-([0-9a-f]+)")


def scaled(n):
    return max(n // 4, 200) if SANITIZED else n


def line(seq):
    return f"2024-01-15 14:32:01 INFO seq={seq} order_id=ORD-{seq} status=\"FULFILLED ok\"\n"


class Writer(threading.Thread):
    """Appends lines seq=0.. to `path` at `rate` lines/s; `pause` (a lock) lets a test rotate
    between two lines, like logrotate racing a real application but without splitting a line."""

    def __init__(self, path, total, rate=2000):
        super().__init__(daemon=True)
        self.path, self.total, self.rate = path, total, rate
        self.written = 0
        self.done = False
        self.pause = threading.Lock()
        self.file = open(path, "a", buffering=1)

    def reopen(self):
        if self.done:
            return
        self.file.close()
        self.file = open(self.path, "a", buffering=1)

    def run(self):
        start = time.monotonic()
        for seq in range(self.total):
            with self.pause:
                self.file.write(line(seq))
                self.written = seq + 1
            ahead = (seq + 1) / self.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        with self.pause:
            self.done = True
            self.file.close()


class LogsCase(ProcessTestCase):
    def adapter_args(self, paths, sink_url, extra=()):
        self.checkpoint = self.path("checkpoint.json")
        self.metrics_port = free_port()
        args = [PILLION, "logs", "--format", "keyvalue", "--output", "elasticsearch",
                "--url", sink_url, "--checkpoint", self.checkpoint,
                "--checkpoint-interval", "200ms", "--batch-interval", "100ms",
                "--scan-interval", "100ms", "--poll-interval", "50ms", "--rotate-wait", "1s",
                "--metrics-address", f"127.0.0.1:{self.metrics_port}"]
        for p in paths:
            args += ["--path", p]
        return args + list(extra)

    def start_adapter(self, args, **kwargs):
        env = dict(os.environ)
        for var in ("POD_NAME", "POD_NAMESPACE", "CONTAINER_NAME", "NODE_NAME"):
            env.pop(var, None)
        kwargs.setdefault("env", env)
        err = None
        if "stderr" not in kwargs:
            self.stderr_path = self.path(f"adapter-{len(self._procs)}.err")
            err = kwargs["stderr"] = open(self.stderr_path, "w")
        proc = self.start(args, **kwargs)
        if err:
            err.close()  # the child has its own descriptor
        wait_port(self.metrics_port, proc=proc)
        return proc

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        return {m[0]: int(m[1]) for m in re.findall(r"^(pillion_logs_\w+) (\d+)$", text, re.M)}

    def checkpoint_offsets(self):
        """{path: acknowledged offset} of the checkpoint file on disk ({} if none yet)."""
        try:
            with open(self.checkpoint) as f:
                return {s["path"]: s["offset"] for s in json.load(f)["files"]}
        except FileNotFoundError:
            return {}

    def peak_rss_kib(self, proc):
        with open(f"/proc/{proc.pid}/status") as f:
            return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1))

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        log = ""
        if getattr(self, "stderr_path", None):
            with open(self.stderr_path) as f:
                log = "".join(f.readlines()[-30:])
        self.fail(f"timed out after {timeout}s waiting for {what}; adapter said:\n{log}")

    def assert_one_for_one(self, sink, total):
        """Every line written arrived exactly once: ids are unique and map one to one to the
        sequence numbers 0..total-1, each document being the normalized line."""
        with sink.lock:
            docs = dict(sink.docs)
        seqs = sorted(int(d["seq"]) for d in docs.values())
        missing = sorted(set(range(total)) - set(seqs))
        self.assertEqual(missing[:20], [], f"{len(missing)} lines missing")
        self.assertEqual(len(seqs), total, "duplicate records under different _ids")
        self.assertEqual(len(set(seqs)), total)
        # _id = <16 hex of the file identity>-<hex offset of the record>
        bad = [i for i in docs if not ID.fullmatch(i)]
        self.assertEqual(bad[:5], [], "document ids not derived from file identity + offset")
        for d in list(docs.values())[:50]:
            self.assertEqual(d["@timestamp"], "2024-01-15T14:32:01Z")
            self.assertEqual(d["level"], "INFO")
            self.assertEqual(d["status"], "FULFILLED ok")
            self.assertEqual(d["order_id"], f"ORD-{d['seq']}")
