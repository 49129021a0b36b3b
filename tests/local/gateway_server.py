"""A container for the gateway tests: answers any method on any path, as the test asks.

Run: ``python gateway_server.py PORT``. ``GET /health`` answers 200. Every
other request is read whole (``Content-Length`` or chunked), then the query
string and, for a JSON object body, its keys ask for behaviours:

- ``touch``: a file created as the request arrives (the test knows it is running).
- ``wait``: a file path; block until it exists. ``sleep``: seconds to sleep.
- ``progress``: a percent written to the request's progress file first.
- ``status``: answer that status; ``header``: ``Name: value``, added to the answer.
- ``bytes``: answer that many bytes of ``x`` (``application/octet-stream``).
- ``gate``: with ``chunks``, send the first chunk, wait for that file, then the rest.
- ``spawn``: a file; start ``sleep 300`` in this process group and write its pid there.

Otherwise it answers JSON: the method, the path with its query, every header
received (pairs) and the body's size and text. ``Accept: text/event-stream``
gets the same as one server-sent event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from server_base import serve

from nvcf_helpers import ProgressReporter, RequestContext


def _wait_for(path: str | None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while path and not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _asks(self, body: bytes) -> dict[str, Any]:
        query = urllib.parse.urlsplit(self.path).query
        asks: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            asks.update(document)
        return asks

    def _answer(self) -> None:
        if self.command == "GET" and self.path == "/health":
            self._send(200, b'{"ready": true}', "application/json")
            return
        body = self._body()
        asks = self._asks(body)
        if "touch" in asks:
            with open(asks["touch"], "w"):
                pass
        if "spawn" in asks:
            child = subprocess.Popen(["sleep", "300"])
            with open(asks["spawn"], "w") as stream:
                stream.write(str(child.pid))
        if "progress" in asks:
            ProgressReporter(RequestContext.from_headers(self.headers.items())).update(
                int(asks["progress"]), {"percent": int(asks["progress"])}
            )
        _wait_for(asks.get("wait"))
        time.sleep(float(asks.get("sleep", 0)))
        status = int(asks.get("status", 200))
        if "chunks" in asks:
            self._chunked(status, int(asks["chunks"]), asks.get("gate"))
        elif "bytes" in asks:
            self._send(status, b"x" * int(asks["bytes"]), "application/octet-stream", asks)
        else:
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": list(self.headers.items()),
                "size": len(body),
                "body": body.decode("utf-8", "replace"),
            }
            data = json.dumps(echo).encode()
            if "text/event-stream" in self.headers.get("Accept", ""):
                self._send(status, b"data: " + data + b"\n\n", "text/event-stream", asks)
            else:
                self._send(status, data, "application/json", asks)

    def _send(
        self, status: int, body: bytes, content_type: str, asks: dict[str, Any] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if asks and "header" in asks:
            name, _, value = str(asks["header"]).partition(":")
            self.send_header(name.strip(), value.strip())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunked(self, status: int, chunks: int, gate: str | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index in range(chunks):
            data = f"chunk {index}\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            if index == 0:
                _wait_for(gate)
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


def main() -> None:
    serve(Handler, "gateway test server", int(sys.argv[1]))


if __name__ == "__main__":
    main()
