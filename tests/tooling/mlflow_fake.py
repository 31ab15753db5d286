#!/usr/bin/env python3
"""A hostile fake MLflow server for Evident's tests (Python's http.server, 127.0.0.1 only).

Usage: mlflow_fake.py PORT MODE, MODE one of:
  500           every request answers 500 with an MLflow-style error body
  invalid-json  200 with a body that is not JSON
  huge          200 with a 50 MB JSON body (streamed, no Content-Length)
  silent        accepts the connection and never answers
  echo-auth     401 whose body quotes the request's Authorization header (a canary test)
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, MODE = int(sys.argv[1]), sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if MODE == "silent":
            time.sleep(3600)
            return
        if MODE == "echo-auth":
            auth = self.headers.get("Authorization", "-")
            body = ('{"error_code": "UNAUTHENTICATED", "message": "invalid credentials: Authorization: %s"}' % auth).encode()
            self.send_response(401)
        elif MODE == "500":
            body = b'{"error_code": "INTERNAL_ERROR", "message": "database is locked"}'
            self.send_response(500)
        elif MODE == "invalid-json":
            body = b'{"registered_models": [ {"name": "x", '
            self.send_response(200)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * (1024 * 1024)
            try:
                self.wfile.write(b'{"registered_models": [], "pad": "')
                for _ in range(50):
                    self.wfile.write(chunk)
                self.wfile.write(b'"}')
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
