"""kill -9 in the middle and restart: the adapter resumes from its checkpoint; records sent
again carry the same _id, so the index holds every line exactly once. Also rotations that
happen while the adapter is down."""

import json
import os
import shutil
import signal
import time
import unittest

from bulk_server import BulkSink
from logs_case import LogsCase, Writer, line, scaled


class CrashTest(LogsCase):
    def setUp(self):
        super().setUp()
        self.sink = BulkSink().start()
        self.addCleanup(self.sink.stop)
        self.log = self.path("app.log")

    def kill(self, proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def test_kill_9_while_writing_and_restart(self):
        total = scaled(20000)
        writer = Writer(self.log, total, rate=scaled(10000))
        # Small batches: a kill loses at most one unacknowledged batch plus one checkpoint
        # interval of acknowledged records, which are then sent again under the same ids.
        args = self.adapter_args([self.log], self.sink.url, ["--batch-max-records", "500"])
        proc = self.start_adapter(args)
        writer.start()
        for _ in range(3):
            # Kill at a random point of its work: mid-batch, mid-checkpoint interval.
            target = min(self.sink.count() + total // 8, total)
            self.wait_for(lambda: self.sink.count() >= target, 30, "progress before the kill")
            self.kill(proc)
            time.sleep(0.2)
            proc = self.start_adapter(args)
        writer.join()
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        # The restarts resumed from checkpoints: far fewer resends than lines.
        self.assertLess(self.sink.received, 2 * total)

    def test_sigterm_checkpoints_and_restart_sends_nothing_again(self):
        total = scaled(2000)
        self.write(self.log, range(total))
        args = self.adapter_args([self.log], self.sink.url)
        proc = self.start_adapter(args)
        # Acknowledged, not just received: the sink may hold records whose response is in flight.
        self.wait_for(lambda: self.metrics()["pillion_logs_records_shipped_total"] >= total, 30,
                      f"{total} records acknowledged")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)
        with open(self.checkpoint) as f:
            files = json.load(f)["files"]
        self.assertEqual([f["offset"] for f in files], [os.path.getsize(self.log)])
        received = self.sink.received
        proc = self.start_adapter(args)
        self.write(self.log, [total])
        self.wait_for(lambda: self.sink.count() >= total + 1, 30, "the new line")
        self.assertEqual(self.sink.received, received + 1)

    def write(self, path, seqs, mode="a"):
        with open(path, mode) as f:
            for seq in seqs:
                f.write(line(seq))

    def test_rotations_while_down(self):
        total = scaled(4000)
        q = total // 4
        args = self.adapter_args([self.path("*.log")], self.sink.url)
        self.write(self.log, range(0, q))
        proc = self.start_adapter(args)
        self.wait_for(lambda: self.sink.count() >= q, 30, "the first quarter")
        time.sleep(0.5)  # let a checkpoint happen
        self.kill(proc)
        # While down: more lines, copytruncate twice, then rename+create, more lines.
        h = q // 2
        self.write(self.log, range(q, q + h))
        shutil.copyfile(self.log, self.path("app.log.1"))
        os.truncate(self.log, 0)
        self.write(self.log, range(q + h, 2 * q))
        time.sleep(0.01)  # distinct copy times
        shutil.copyfile(self.log, self.path("app.log.1b"))
        os.truncate(self.log, 0)
        self.write(self.log, range(2 * q, 3 * q))
        os.rename(self.log, self.path("app.log.2"))
        self.write(self.log, range(3 * q, total), mode="w")
        self.start_adapter(args)
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)

    def test_checkpoint_moves_only_after_the_sink_acknowledged(self):
        total = scaled(2000)
        self.write(self.log, range(total))
        self.sink.status = 401  # every request refused: nothing is ever acknowledged
        args = self.adapter_args([self.log], self.sink.url)
        proc = self.start_adapter(args)
        self.wait_for(lambda: self.metrics()["pillion_logs_sink_errors_total"] >= 2, 10,
                      "refused requests")
        time.sleep(1.0)  # five checkpoint intervals
        m = self.metrics()
        self.assertGreater(m["pillion_logs_lines_read_total"], 0)
        self.assertEqual(m["pillion_logs_records_shipped_total"], 0)
        # Read but not acknowledged: the checkpoint on disk must not have moved, not even with
        # the one written on the way out.
        self.assertEqual(set(self.checkpoint_offsets().values()) - {0}, set())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertEqual(self.checkpoint_offsets(), {self.log: 0})
        self.sink.status = None
        self.start_adapter(args)
        self.wait_for(lambda: self.sink.count() >= total, 30, f"{total} records")
        # Acknowledged: the checkpoint follows within the interval, without a shutdown.
        size = os.path.getsize(self.log)
        self.wait_for(lambda: self.checkpoint_offsets() == {self.log: size}, 5,
                      "the checkpoint at the end of the file")
        self.assert_one_for_one(self.sink, total)

    def test_checkpoint_is_written_at_the_configured_interval(self):
        total = scaled(500)
        self.write(self.log, range(total))
        args = self.adapter_args([self.log], self.sink.url)
        args[args.index("--checkpoint-interval") + 1] = "1h"
        proc = self.start_adapter(args)
        self.wait_for(lambda: self.metrics()["pillion_logs_records_shipped_total"] >= total, 30,
                      f"{total} records acknowledged")
        time.sleep(0.5)
        self.assertEqual(self.metrics()["pillion_logs_checkpoints_total"], 0)
        self.assertEqual(self.checkpoint_offsets(), {})
        proc.send_signal(signal.SIGTERM)  # and always on exit
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertEqual(self.checkpoint_offsets(), {self.log: os.path.getsize(self.log)})

    def test_same_inode_with_new_content_while_down(self):
        # The checkpoint's device+inode now holds other content, longer than the saved offset:
        # only the fingerprint of the first line tells; resuming at the offset would skip lines.
        total = scaled(2000)
        q = total // 4
        self.write(self.log, range(q))
        inode = os.stat(self.log).st_ino
        args = self.adapter_args([self.log], self.sink.url)
        proc = self.start_adapter(args)
        size = os.path.getsize(self.log)
        self.wait_for(lambda: self.checkpoint_offsets() == {self.log: size}, 30,
                      "the first quarter checkpointed")
        self.kill(proc)
        self.write(self.log, range(q, total), mode="w")  # truncated and rewritten in place
        self.assertEqual(os.stat(self.log).st_ino, inode)
        self.assertGreater(os.path.getsize(self.log), size)
        self.start_adapter(args)
        self.wait_for(lambda: self.sink.count() >= total, 30, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        self.assertEqual(self.metrics()["pillion_logs_truncations_total"], 1)


if __name__ == "__main__":
    unittest.main()
