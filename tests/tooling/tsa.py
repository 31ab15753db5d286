"""A real RFC 3161 timestamp authority for the tests: `openssl ts -reply` behind Python's
http.server.

Usage: tsa.py PORT DIR
DIR holds tsa.cnf (an `openssl ts` config whose [tsa_config1] names the signer certificate,
key, serial file and chain) as made by tests/src/services.rs. Each POST body (a DER
TimeStampReq, application/timestamp-query) is answered with `openssl ts -reply` (a DER
TimeStampResp, application/timestamp-reply); a request openssl cannot answer gets a 400.
Each request appends one line to DIR/log. Listens on 127.0.0.1 only.
"""

import os
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

PORT, DIR = int(sys.argv[1]), sys.argv[2]
LOCK = Lock()  # openssl ts -reply increments the serial file: one at a time.
MAX_REQUEST = 64 * 1024


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length", "0"))
        if length <= 0 or length > MAX_REQUEST:
            self.answer(400, b"bad request size\n", "text/plain")
            return
        body = self.rfile.read(length)
        with tempfile.TemporaryDirectory() as tmp, LOCK:
            query = os.path.join(tmp, "q.tsq")
            reply = os.path.join(tmp, "r.tsr")
            with open(query, "wb") as f:
                f.write(body)
            r = subprocess.run(
                ["openssl", "ts", "-reply", "-config", os.path.join(DIR, "tsa.cnf"),
                 "-queryfile", query, "-out", reply],
                capture_output=True, timeout=30,
            )
            with open(os.path.join(DIR, "log"), "a") as f:
                f.write(f"{r.returncode} {self.headers.get('Content-Type', '-')}\n")
            if r.returncode != 0 or not os.path.exists(reply):
                self.answer(400, r.stderr[-500:], "text/plain")
                return
            with open(reply, "rb") as f:
                self.answer(200, f.read(), "application/timestamp-reply")

    def answer(self, code: int, data: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
