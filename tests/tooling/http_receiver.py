"""A small real HTTP receiver for the HTTP sink tests (Python's http.server).

Usage: http_receiver.py PORT DIR
Answers each POST with the next status code from DIR/plan (one code per line; the last one
repeats; default 200). Stores each 2xx body as DIR/received/<Idempotency-Key>.json and
appends "<code> <Authorization> <Evident-Key>" to DIR/log. A 4xx body quotes the request's
Authorization header (as careless servers do: the agent must redact it); a 3xx points to an
SSO login page. Listens on 127.0.0.1 only.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

PORT, DIR = int(sys.argv[1]), sys.argv[2]
LOCK = Lock()
STATE = {"n": 0}


def next_code() -> int:
    try:
        with open(os.path.join(DIR, "plan")) as f:
            codes = [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        codes = [200]
    with LOCK:
        i = STATE["n"]
        STATE["n"] += 1
    return codes[min(i, len(codes) - 1)] if codes else 200


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        code = next_code()
        if 200 <= code < 300:
            os.makedirs(os.path.join(DIR, "received"), exist_ok=True)
            with open(os.path.join(DIR, "received", self.headers.get("Idempotency-Key", "x") + ".json"), "wb") as f:
                f.write(body)
        with LOCK, open(os.path.join(DIR, "log"), "a") as f:
            f.write(f"{code} {self.headers.get('Authorization', '-')} {self.headers.get('Evident-Key', '-')}\n")
        auth = self.headers.get("Authorization", "-")
        if code == 400:
            reply = f"bad record: schema rejected (request had Authorization: {auth})\n".encode()
        elif 400 < code < 500:
            reply = f"denied for Authorization: {auth}\n".encode()
        else:
            reply = b"ok\n"
        self.send_response(code)
        if 300 <= code < 400:
            self.send_header("Location", f"http://127.0.0.1:{PORT}/sso/login?session=abc123")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:  # quiet
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
