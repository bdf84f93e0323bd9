"""A test stand-in for Elasticsearch/OpenSearch that speaks just enough of the `_bulk` API:
NDJSON action/document pairs in, a per-item response out. Documents are kept by `_id` (like an
index: a resend with the same id overwrites), every delivery attempt is counted, and a test can
make it refuse items or whole requests, or take it down and bring it back on the same port."""

import gzip
import json
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    def __init__(self, *args):
        super().__init__(*args)
        self.connections = set()

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request (kill -9 tests) is expected here

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def close_connections(self):
        # "Down" means down: keep-alive connections must not go on being served.
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BulkSink:
    def __init__(self, port=0, tls=None):
        self.tls = tls  # an ssl.SSLContext: serve HTTPS
        self.lock = threading.Lock()
        self.docs = {}            # _id -> document
        self.received = 0         # items received, resends included
        self.requests = 0
        self.gzipped = 0          # requests that came with Content-Encoding: gzip
        self.batches = []         # per _bulk request: (items, bytes of the documents)
        self.attempts = {}        # _id -> times seen
        self.retry_first = None   # function(_id) -> True: answer 429 on the first attempt
        self.reject = None        # function(doc) -> True: answer 400 for good
        self.status = None        # answer every request with this HTTP status (e.g. 401)
        self.auth = None          # the Authorization header of the last request
        self.port = port
        self.server = None
        self.thread = None

    def start(self):
        handler = self._handler()
        self.server = QuietServer(("127.0.0.1", self.port), handler)
        if self.tls:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server.close_connections()
            self.server = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def count(self):
        with self.lock:
            return len(self.docs)

    def _handle(self, body):
        lines = body.split(b"\n")
        items = []
        errors = False
        i = 0
        doc_bytes = 0
        while i + 1 < len(lines) and lines[i]:
            action = json.loads(lines[i])
            doc = json.loads(lines[i + 1])
            doc_bytes += len(lines[i + 1]) + 1
            i += 2
            (op, meta), = action.items()
            _id = meta["_id"]
            with self.lock:
                self.received += 1
                seen = self.attempts.get(_id, 0)
                self.attempts[_id] = seen + 1
                if self.reject and self.reject(doc):
                    items.append({op: {"_id": _id, "status": 400, "error": {
                        "type": "mapper_parsing_exception", "reason": "failed to parse"}}})
                    errors = True
                elif self.retry_first and seen == 0 and self.retry_first(_id):
                    items.append({op: {"_id": _id, "status": 429, "error": {
                        "type": "es_rejected_execution_exception", "reason": "queue full"}}})
                    errors = True
                else:
                    self.docs[_id] = doc
                    items.append({op: {"_id": _id, "status": 201, "result": "created"}})
        with self.lock:
            self.batches.append((len(items), doc_bytes))
        return {"took": 1, "errors": errors, "items": items}

    def _handler(self):
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                gzipped = self.headers.get("Content-Encoding") == "gzip"
                if gzipped:
                    body = gzip.decompress(body)
                with sink.lock:
                    sink.requests += 1
                    sink.gzipped += gzipped
                    sink.auth = self.headers.get("Authorization")
                    status = sink.status
                if status:
                    reply = json.dumps({"error": "refused by test", "status": status}).encode()
                    self.send_response(status)
                elif not self.path.startswith("/_bulk"):
                    reply = b'{"error":"no such path"}'
                    status = 404
                    self.send_response(status)
                else:
                    reply = json.dumps(sink._handle(body)).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        return Handler
