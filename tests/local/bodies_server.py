"""A container for the worker's body handling: large bodies, redirects, and disconnects it records.

Run: ``python bodies_server.py PORT``. ``GET /health`` answers 200. ``POST /infer``
takes a JSON object:

- ``size``: answer ``status`` (default 200) with that many bytes of
  :func:`body_bytes` (Content-Length set).
- ``stall_after``: with ``size``, send only that many bytes, then wait for the
  caller to hang up (``marker`` as below).
- ``redirect`` (a status) and ``location``: answer that redirect, body ``redirected``.
- ``marker``: a file path; the request waits (up to 60 s) for the connection to
  close, then writes ``closed`` there (nothing if it never closes, then answers 200).

Any other path answers 200 ``followed`` (what a followed redirect would reach).
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from server_base import send, serve

BLOCK = 1 << 20


def body_bytes(size: int) -> bytes:
    """The body of ``size`` bytes the server sends: 1 MiB blocks, each numbered."""
    base = bytes(range(256)) * (BLOCK // 256)
    blocks = (index.to_bytes(8, "big") + base[8:] for index in range(size // BLOCK + 1))
    return b"".join(blocks)[:size]


def _wait_for_close(connection: socket.socket, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([connection], [], [], 0.05)
        if readable:
            try:
                if not connection.recv(1, socket.MSG_PEEK):
                    return True
            except OSError:
                return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer(200, b"followed" if self.path != "/health" else b"{}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/infer":
            self._answer(200, b"followed")
            return
        request: dict[str, Any] = json.loads(raw) if raw else {}
        if "redirect" in request:
            self._answer(request["redirect"], b"redirected", {"Location": request["location"]})
        elif "size" in request:
            self._send_body(request)
        elif "marker" in request:
            self._hold(request["marker"])
        else:
            self._answer(200, b"{}")

    def _send_body(self, request: dict[str, Any]) -> None:
        size = request["size"]
        body = body_bytes(size)
        self.send_response(request.get("status", 200))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = request.get("stall_after", size)
        view = memoryview(body)
        for start in range(0, sent, BLOCK):
            self.wfile.write(view[start : min(sent, start + BLOCK)])
        if sent < size:
            self.wfile.flush()
            self._hold(request["marker"], answer=False)

    def _hold(self, marker: str, *, answer: bool = True) -> None:
        if _wait_for_close(self.connection):
            Path(marker).write_text("closed")
            self.close_connection = True
        elif answer:
            self._answer(200, b"{}")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        send(self, status, body, "application/octet-stream", headers)


def main() -> None:
    serve(Handler, "bodies server", int(sys.argv[1]))


if __name__ == "__main__":
    main()
