#!/usr/bin/env python3
"""A tiny S3-like server on 127.0.0.1 that serves one folder read-only and fails on purpose.

    flaky_s3.py ROOT PLAN

Objects are the files under ROOT (`/bucket/key` -> ROOT/bucket/key), with HEAD, GET and
ranged GET. PLAN says how the first
requests of each object fail, one letter per try, then every later try succeeds:
`t` 503 SlowDown (throttling), `e` 500 InternalError, `r` connection reset with no response,
`x` every try fails with 503 (`-` fails nothing). The port is printed on stdout; each request
is logged on stderr as `METHOD /path -> outcome`. `FLAKY_S3_LATENCY_MS` delays every response
(time to first byte), as S3's 10-50 ms do: `benches/s3_latency.sh` uses it to show how much
reading ahead a conversion needs.
"""
import time
import http.server
import os
import socket
import struct
import sys
import threading

ROOT, PLAN = sys.argv[1], sys.argv[2]
LATENCY = float(os.environ.get("FLAKY_S3_LATENCY_MS", "0")) / 1000
tries = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def outcome(self):
        with lock:
            n = tries.get((self.command, self.path), 0)
            tries[(self.command, self.path)] = n + 1
        if PLAN == "x":
            return "t"
        return PLAN[n] if n < len(PLAN) and PLAN[n] != "-" else "ok"

    def error(self, status, code):
        body = f"<Error><Code>{code}</Code><Message>on purpose</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def serve(self):
        path = os.path.join(ROOT, self.path.split("?")[0].lstrip("/"))
        what = self.outcome()
        if LATENCY:
            time.sleep(LATENCY)
        print(f"{self.command} {self.path} -> {what}", file=sys.stderr, flush=True)
        if what == "t":
            return self.error(503, "SlowDown")
        if what == "e":
            return self.error(500, "InternalError")
        if what == "r":
            # Reset: abort the connection (RST) without a response.
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if not os.path.isfile(path):
            return self.error(404, "NoSuchKey")
        size = os.path.getsize(path)
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "").startswith("bytes=")
        if ranged:
            a, _, b = self.headers["Range"][6:].partition("-")
            start, end = int(a), min(int(b) if b else size - 1, size - 1)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("ETag", f'"{size:x}"')
        self.send_header("Last-Modified", "Sat, 28 Nov 2026 00:00:00 GMT")
        self.end_headers()
        if self.command == "GET":
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))

    do_GET = serve
    do_HEAD = serve


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
