"""A container whose health the test steers through a file, for the health-check tests.

Run: ``python health_server.py PORT CONTROL RECORD [HEALTH_PATH]``. Every
request is appended to RECORD as ``<time.time()> <method> <path> <status>``.
``GET HEALTH_PATH`` (default ``/health``) answers what CONTROL says, read
anew for each request:

- a status code such as ``200`` or ``503`` (a missing file means ``200``);
- ``seq:404,404,200``: one code per request in turn, the last one repeated;
- ``hang``: no answer while the file says so;
- ``exit:N``: print a line to stderr and exit with status N at once.

Other GETs answer 404. ``POST /infer`` answers ``{"served": true}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from server_base import serve

PORT = int(sys.argv[1])
CONTROL = Path(sys.argv[2])
RECORD = Path(sys.argv[3])
HEALTH_PATH = sys.argv[4] if len(sys.argv) > 4 else "/health"

_lock = threading.Lock()
_sequence_position = 0


def _control() -> str:
    try:
        return CONTROL.read_text().strip() or "200"
    except FileNotFoundError:
        return "200"


def _from_sequence(text: str) -> int:
    global _sequence_position  # noqa: PLW0603 - one counter for the process, under a lock
    codes = [int(code) for code in text.removeprefix("seq:").split(",")]
    with _lock:
        code = codes[min(_sequence_position, len(codes) - 1)]
        _sequence_position += 1
    return code


def _record(method: str, path: str, status: int | str) -> None:
    with _lock, RECORD.open("a") as record:
        record.write(f"{time.time():.6f} {method} {path} {status}\n")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != HEALTH_PATH:
            _record("GET", self.path, 404)
            self._answer(404)
            return
        control = _control()
        if control == "hang":
            _record("GET", self.path, "hang")
            while _control() == "hang":
                time.sleep(0.02)
            return
        if control.startswith("exit:"):
            print("model crashed: out of cheese", file=sys.stderr, flush=True)
            os._exit(int(control.removeprefix("exit:")))
        status = _from_sequence(control) if control.startswith("seq:") else int(control)
        _record("GET", self.path, status)
        self._answer(status)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _record("POST", self.path, 200)
        self._answer(200, json.dumps({"served": True}).encode())


if __name__ == "__main__":
    serve(Handler, "health server", PORT)
