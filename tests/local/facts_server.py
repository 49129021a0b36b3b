"""A container for checking the local NVCF against NVCF's source facts: it does what it is told.

Run: ``python facts_server.py PORT``. ``GET /health`` answers 200. ``POST /infer``
takes a JSON object; each key asks for one thing, in this order:

- ``files``: ``{relative path: text}`` written under ``NVCF-LARGE-OUTPUT-DIR``;
  ``symlinks``: ``{relative path: target}``; ``fifos``: relative paths made FIFOs.
- ``progress``: ``{"percent": N, "partial": {...}}`` written as the progress file
  (``id`` = this request's), then a pause for the watcher to see it.
- ``wait_for``: a file path; the request blocks until it exists.
- ``reset``: close the connection with a TCP reset, answering nothing; ``close``:
  close it cleanly, answering nothing.
- ``status``, ``body``, ``content_type``, ``headers`` (``{name: value}``),
  ``header_bytes`` (one ``X-Big`` header that long), ``header_count`` (that many
  ``X-N<i>`` headers): the answer. Without ``status`` it is 200 with the echo:
  ``{"headers": [[name, value], ...] as received, "input": the request}``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from server_base import send, serve


def _wait_for(path: str | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while path and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


def _leave_outputs(request: dict[str, Any], output_dir: Path, request_id: str) -> None:
    for relative, text in request.get("files", {}).items():
        (output_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (output_dir / relative).write_text(text)
    for relative, target in request.get("symlinks", {}).items():
        (output_dir / relative).symlink_to(target)
    for relative in request.get("fifos", []):
        os.mkfifo(output_dir / relative)
    if "progress" in request:
        update = {"id": request_id, "progress": request["progress"]["percent"]}
        if "partial" in request["progress"]:
            update["partialResponse"] = request["progress"]["partial"]
        temporary = output_dir / ".progress.tmp"
        temporary.write_text(json.dumps(update))
        os.replace(temporary, output_dir / "progress")
        time.sleep(0.4)  # the watcher looks every 50 ms


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer(200, b'{"ready": true}', "application/json", {})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request: dict[str, Any] = json.loads(raw) if raw else {}
        output_dir = Path(self.headers.get("NVCF-LARGE-OUTPUT-DIR", "."))
        _leave_outputs(request, output_dir, self.headers.get("NVCF-REQID", ""))
        _wait_for(request.get("wait_for"))
        if request.get("reset"):
            # SO_LINGER 0: close() sends RST, the "connection reset" NVCF's worker can meet.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if request.get("close"):
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        headers = dict(request.get("headers", {}))
        if "header_bytes" in request:
            headers["X-Big"] = "b" * request["header_bytes"]
        for index in range(request.get("header_count", 0)):
            headers[f"X-N{index}"] = "n"
        if "status" in request:
            body = request.get("body", "").encode()
            content_type = request.get("content_type", "application/json")
            self._answer(request["status"], body, content_type, headers)
            return
        echo = {"headers": list(self.headers.items()), "input": request}
        self._answer(200, json.dumps(echo).encode(), "application/json", headers)

    def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        send(self, status, body, content_type, headers)


def main() -> None:
    serve(Handler, "facts server", int(sys.argv[1]))


if __name__ == "__main__":
    main()
