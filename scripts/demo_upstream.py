#!/usr/bin/env python3
"""The demo's application: a tiny HTTP service that answers with what it received, so the demo
can show the headers the sidecar added (x-request-id, traceparent, via, x-forwarded-for)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status, payload):
        body = (json.dumps(payload, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/fail"):
            self._answer(503, {"error": "the app is having a bad day"})
            return
        self._answer(200, {"service": "orders", "path": self.path,
                           "headers_seen_by_app": dict(self.headers.items())})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._answer(201, {"created": json.loads(body or b"{}")})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
