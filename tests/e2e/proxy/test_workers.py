"""The default worker count follows the CPUs this process may use (cgroup quota, affinity),
never the node's core count; --workers overrides it."""

import json
import math
import os
import shutil
import subprocess
import unittest
import urllib.request

from harness import PILLION, ProcessTestCase, free_port, wait_port


def expected_workers(affinity):
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return max(1, min(math.ceil(int(quota) / int(period)), affinity))
    except OSError:
        pass
    return affinity


class DefaultWorkers(ProcessTestCase):
    def server_info(self, args, prefix=()):
        port, admin = free_port(), free_port()
        proc = self.start(list(prefix) + [PILLION, "proxy", "--listen", "127.0.0.1:%d" % port,
                                          "--upstream", "http://127.0.0.1:9",
                                          "--admin", "127.0.0.1:%d" % admin,
                                          "--access-log", "off"] + list(args))
        wait_port(admin, proc=proc)
        with urllib.request.urlopen("http://127.0.0.1:%d/server_info" % admin, timeout=5) as r:
            return json.load(r)

    def test_default_follows_quota_and_affinity(self):
        info = self.server_info([])
        self.assertEqual(info["workers"], expected_workers(len(os.sched_getaffinity(0))))

    @unittest.skipUnless(shutil.which("taskset"), "needs taskset")
    def test_one_cpu_affinity_gives_one_worker(self):
        info = self.server_info([], prefix=["taskset", "-c", "0"])
        self.assertEqual(info["workers"], 1)

    def test_flag_overrides(self):
        self.assertEqual(self.server_info(["--workers", "3"])["workers"], 3)


if __name__ == "__main__":
    unittest.main()
