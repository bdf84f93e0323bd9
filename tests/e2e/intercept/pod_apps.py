"""Small servers the interception tests run inside pods (as their own processes).

  pod_apps.py http PORT     HTTP/1.1 on 0.0.0.0:PORT; answers every GET with JSON
                            {"peer": [host, port], "path": ..., "headers": {name: value}}
  pod_apps.py banner PORT.. server-first TCP on 0.0.0.0:PORT for each PORT: sends
                            "220 banner PORT from-peer HOST\\r\\n" at once, then echoes bytes
"""

import http.server
import json
import socket
import socketserver
import sys
import threading


class EchoHeaders(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"peer": list(self.client_address[:2]), "path": self.path,
                           "headers": {k: v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Banner(socketserver.BaseRequestHandler):
    def handle(self):
        port = self.server.server_address[1]
        self.request.sendall(b"220 banner %d from-peer %s\r\n" %
                             (port, self.client_address[0].encode()))
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)


class Threading(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(argv):
    if len(argv) >= 2 and argv[0] == "http":
        server = http.server.ThreadingHTTPServer(("0.0.0.0", int(argv[1])), EchoHeaders)
        server.daemon_threads = True
        server.serve_forever()
    elif len(argv) >= 2 and argv[0] == "banner":
        servers = [Threading(("0.0.0.0", int(port)), Banner) for port in argv[1:]]
        for server in servers[1:]:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[0].serve_forever()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
