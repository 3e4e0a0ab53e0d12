#!/usr/bin/env python3
"""A tiny HTTP backend for the demo: answers every GET with its name and the request path."""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "voro-demo-backend"

    def do_GET(self):
        body = f"hello from {self.server.name} ({self.path})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    name, port = sys.argv[1], int(sys.argv[2])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.name = name
    srv.serve_forever()


if __name__ == "__main__":
    main()
