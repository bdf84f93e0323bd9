"""pillion logs follows files through rotation by rename+create and by copytruncate while lines
are being written, and ships every line exactly once."""

import os
import shutil
import time
import unittest

from bulk_server import BulkSink
from logs_case import LogsCase, Writer, scaled


class RotationTest(LogsCase):
    def setUp(self):
        super().setUp()
        self.sink = BulkSink().start()
        self.addCleanup(self.sink.stop)
        self.log = self.path("app.log")

    def test_rename_and_create(self):
        total = scaled(6000)
        writer = Writer(self.log, total, rate=scaled(3000))
        self.start_adapter(self.adapter_args([self.path("*.log")], self.sink.url))
        writer.start()
        rotations = 0
        while writer.is_alive():
            time.sleep(0.25)
            with writer.pause:
                # logrotate's default: rename the file away, the app opens a new one.
                rotations += 1
                os.rename(self.log, self.path(f"app.log.{rotations}"))
                writer.reopen()
        writer.join()
        self.assertGreaterEqual(rotations, 3)
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)  # anything extra would show up now
        self.assert_one_for_one(self.sink, total)
        self.assertGreaterEqual(self.metrics()["pillion_logs_rotations_total"], 3)

    def test_copytruncate(self):
        total = scaled(6000)
        writer = Writer(self.log, total, rate=scaled(3000))
        self.start_adapter(self.adapter_args([self.path("*.log")], self.sink.url))
        writer.start()
        rotations = 0
        while writer.is_alive():
            time.sleep(0.25)
            with writer.pause:
                # logrotate's copytruncate: copy the content aside, truncate the file in place;
                # the app keeps its descriptor (O_APPEND) and writes at the new end.
                rotations += 1
                shutil.copyfile(self.log, self.path(f"app.log.{rotations}"))
                os.truncate(self.log, 0)
        writer.join()
        self.assertGreaterEqual(rotations, 3)
        self.wait_for(lambda: self.sink.count() >= total, 60, f"{total} records")
        time.sleep(0.5)
        self.assert_one_for_one(self.sink, total)
        self.assertGreaterEqual(self.metrics()["pillion_logs_truncations_total"], 3)


if __name__ == "__main__":
    unittest.main()
