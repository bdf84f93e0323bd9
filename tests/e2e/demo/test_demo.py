"""The README's first command ends in scripts/demo.sh: keep it working."""

import os
import re
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class DemoTest(unittest.TestCase):
    def test_demo_shows_requests_access_log_and_stats(self):
        result = subprocess.run([os.path.join(ROOT, "scripts", "demo.sh")], capture_output=True,
                                text=True, timeout=120, env=dict(os.environ))
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        out = result.stdout
        # The app saw the headers the sidecar added.
        self.assertRegex(out, r'"x-request-id": "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-')
        self.assertRegex(out, r'"traceparent": "00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]"')
        self.assertIn('"via": "1.1 pillion"', out)
        self.assertIn("x-request-id: demo-req-1", out)
        self.assertIn("status 503", out)
        self.assertIn("HTTP/1.1 502 Bad Gateway", out)
        # Access-log lines for each request, including the 502 with its flag.
        lines = [l for l in out.splitlines() if l.startswith("[") and "request_id=" in l]
        self.assertEqual(len(lines), 5, out)
        self.assertTrue(any("status=502 flags=UF" in l for l in lines))
        self.assertTrue(any("request_id=demo-req-1" in l for l in lines))
        # Stats reflect the four requests through the first proxy.
        self.assertRegex(out, re.compile(r"^downstream_rq_total: 4$", re.M))
        self.assertRegex(out, re.compile(r'^pillion_requests_total\{direction="outbound",'
                                         r'listener="[^"]+",cluster="[^"]+",code_class="2xx"\} 3$',
                                         re.M))


if __name__ == "__main__":
    unittest.main()
