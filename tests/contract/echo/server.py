"""The contract suite's echo container: it reports what it received, or does what it is told.

Standard library only, so that the same file runs under ``nvcf-helpers local``
and in the image ``Dockerfile`` builds for a real NVCF. Run:
``python server.py [PORT] [HOST]`` (default 8000 on 0.0.0.0). ``GET /health``
answers 200. Any other request, any method and path, is read whole; its query
string and (for a JSON object body) its keys ask for behaviours, in this order:

- ``count``: a token; the server counts the requests that carried it.
- ``report``: a token; answer ``{"count": N, "cancelled": bool}`` for it.
- ``files``: ``{relative path: text}`` written under ``NVCF-LARGE-OUTPUT-DIR``.
- ``progress``: a list of steps, each written as a progress file with
  ``id`` = this request's: ``{"percent": any JSON, "partial": object (left out
  when absent), "id": another id, "raw": text written verbatim instead, "dir":
  a sub-directory of the output directory, "sibling": a directory beside it,
  "same_mtime": true (stamp it with the previous step's mtime), "pause": s}``.
- ``sleep``: seconds; with ``watch`` (a token) the server notes whether its
  client (NVCF's worker) hung up meanwhile, and stops sleeping if so.
- ``reset``: close the connection with a TCP reset, answering nothing.
- ``status``, ``body``, ``content_type``, ``headers`` (``{name: value}``;
  also ``header=Name:value`` in a query), ``body_bytes`` (that many ``x``),
  ``header_bytes`` (one ``X-Big`` header that long): the answer.

Without ``status`` the answer is 200 with the echo (JSON): ``method``,
``path`` (as received, query included), ``query``, ``headers`` (``[name,
value]`` pairs as received, names in their spelling), ``body_length``,
``in_flight`` (requests in progress when this one arrived, itself included),
and ``assets``: the files in ``NVCF-ASSET-DIR`` (name, size, mode, text).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_in_flight = [0]  # requests in progress now
_counts: dict[str, int] = {}
_cancelled: dict[str, bool] = {}
_last_mtime_ns: dict[str, int] = {}


def _asks(path: str, body: bytes) -> dict[str, Any]:
    query = urllib.parse.urlsplit(path).query
    asks: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    if "header" in asks:
        name, _, value = asks.pop("header").partition(":")
        asks["headers"] = {name.strip(): value.strip()}
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        asks.update(document)
    return asks


def _write_progress(step: dict[str, Any], output_dir: Path, request_id: str) -> None:
    directory = output_dir
    if "dir" in step:
        directory = output_dir / step["dir"]
    elif "sibling" in step:
        directory = output_dir.parent / step["sibling"]
    directory.mkdir(parents=True, exist_ok=True)
    if "raw" in step:
        text = step["raw"]
    else:
        update: dict[str, Any] = {"id": step.get("id", request_id), "progress": step["percent"]}
        if "partial" in step:
            update["partialResponse"] = step["partial"]
        text = json.dumps(update)
    # Written beside it, then renamed into place: the worker never reads half a file.
    temporary = directory / ".progress.tmp"
    temporary.write_text(text)
    if step.get("same_mtime") and request_id in _last_mtime_ns:
        stamp = _last_mtime_ns[request_id]
        os.utime(temporary, ns=(stamp, stamp))
    _last_mtime_ns[request_id] = temporary.stat().st_mtime_ns
    os.replace(temporary, directory / "progress")
    time.sleep(float(step.get("pause", 0.3)))


def _mode(directory: str | None) -> str | None:
    """The directory's permission bits, or None when it does not exist."""
    if not directory or not os.path.isdir(directory):
        return None
    return oct(os.stat(directory).st_mode & 0o777)


def _assets(asset_dir: str | None) -> list[dict[str, Any]]:
    if not asset_dir or not os.path.isdir(asset_dir):
        return []
    listing = []
    for entry in sorted(Path(asset_dir).iterdir()):
        if entry.is_file():
            listing.append(
                {
                    "name": entry.name,
                    "size": entry.stat().st_size,
                    "mode": oct(entry.stat().st_mode & 0o777),
                    "text": entry.read_bytes()[:200].decode("utf-8", "replace"),
                }
            )
    return listing


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
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        if self.command == "GET" and urllib.parse.urlsplit(self.path).path == "/health":
            self._send(200, b'{"ready": true}', "application/json", {})
            return
        body = self._body()
        with _lock:
            _in_flight[0] += 1
            in_flight = _in_flight[0]
        try:
            self._serve(body, in_flight)
        finally:
            with _lock:
                _in_flight[0] -= 1

    def _serve(self, body: bytes, in_flight: int) -> None:
        asks = _asks(self.path, body)
        if "count" in asks:
            with _lock:
                _counts[asks["count"]] = _counts.get(asks["count"], 0) + 1
        if "report" in asks:
            token = asks["report"]
            report = {"count": _counts.get(token, 0), "cancelled": _cancelled.get(token, False)}
            self._send(200, json.dumps(report).encode(), "application/json", {})
            return
        request_id = self.headers.get("NVCF-REQID", "")
        output_dir = Path(self.headers.get("NVCF-LARGE-OUTPUT-DIR") or ".")
        for relative, text in asks.get("files", {}).items():
            (output_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (output_dir / relative).write_text(text)
        for step in asks.get("progress", []):
            _write_progress(step, output_dir, request_id)
        if "sleep" in asks:
            self._sleep(float(asks["sleep"]), asks.get("watch"))
        if asks.get("reset"):
            # SO_LINGER 0: close() sends RST, a "connection reset by peer" for the worker.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        headers = dict(asks.get("headers", {}))
        if "header_bytes" in asks:
            headers["X-Big"] = "b" * int(asks["header_bytes"])
        status = int(asks.get("status", 200))
        if "body_bytes" in asks:
            self._send(status, b"x" * int(asks["body_bytes"]), "application/octet-stream", headers)
            return
        if "status" in asks:
            content_type = asks.get("content_type", "application/json")
            self._send(status, str(asks.get("body", "")).encode(), content_type, headers)
            return
        split = urllib.parse.urlsplit(self.path)
        echo = {
            "method": self.command,
            "path": self.path,
            "query": split.query,
            "headers": list(self.headers.items()),
            "body_length": len(body),
            "in_flight": in_flight,
            "assets": _assets(self.headers.get("NVCF-ASSET-DIR")),
            "asset_dir_mode": _mode(self.headers.get("NVCF-ASSET-DIR")),
        }
        self._send(200, json.dumps(echo).encode(), "application/json", headers)

    def _sleep(self, seconds: float, watch: str | None) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if watch and readable and not self.connection.recv(1, socket.MSG_PEEK):
                _cancelled[watch] = True  # the worker hung up: NVCF cancelled the request
                return

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    host = sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0"  # a container listens on all
    server = Server((host, port), Handler)
    print(f"contract echo server listening on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
