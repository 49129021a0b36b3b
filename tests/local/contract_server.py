"""A small inference server written to the NVCF container contract, for testing the local NVCF.

Run: ``python contract_server.py PORT``. ``GET /health`` answers 200;
``POST /infer`` takes a JSON object whose keys ask for behaviours:

- ``wait_for``: a file path; the request blocks until it exists (202 paths, queues).
- ``sleep``: seconds to sleep after that.
- ``progress``: a list of ``[percent, partialResponse]`` written through
  :class:`~nvcf_helpers.ProgressReporter` before waiting; ``raw_progress``: a
  string written verbatim as the progress file first (malformed updates).
- ``large``: ``{"name": ..., "bytes": N}`` written with :func:`~nvcf_helpers.large_output`.
- ``leave_partial``: a name; leaves ``<name>.partial`` behind (a contract violation).
- ``only_size``: answer ``{"bytes": <size of the body received>}`` only.
- ``body_bytes``: answer N bytes of ``x`` instead of the JSON echo.
- ``status`` / ``error``: answer that status with ``{"error": error}``; ``text_error``:
  answer that status with a body that is not JSON.
- ``crash``: exit the whole server at once, mid-request.
- ``events``: with ``Accept: text/event-stream``, send that many server-sent
  events; after the first, wait for ``wait_for`` if given.

With ``CONTRACT_SERVER_STOP_REPORT=FILE`` in its environment, SIGTERM writes
the number of client connections still open to FILE before it exits.

Each ``POST`` logs one line in NVCF's format with the request id: a WARNING
for a ``status`` request, INFO otherwise.

Otherwise it echoes: every header it received, its ``NVCF_*`` environment, the
assets it read through :mod:`nvcf_helpers.assets`, its pid and the input.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from server_base import serve

from nvcf_helpers import (
    ProgressReporter,
    RequestContext,
    configure_logging,
    large_output,
    list_assets,
    log_request,
    read_asset,
)

logger = logging.getLogger("contract_server")


def _wait_for(path: str | None, timeout: float = 60.0) -> None:
    if not path:
        return
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)


_open_connections = 0
_connections_lock = threading.Lock()


def _count_connections(delta: int) -> None:
    global _open_connections  # noqa: PLW0603 - one counter for the whole server
    with _connections_lock:
        _open_connections += delta


def _stop(signum: int, frame: object) -> None:
    """On SIGTERM, report how many connections were still open (Triton would wait on them)."""
    report = os.environ.get("CONTRACT_SERVER_STOP_REPORT")
    if report:
        deadline = time.monotonic() + 2.0
        while _open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(report, "w") as stream:
            stream.write(str(_open_connections))
    os._exit(0)


def _mode_of(directory: Path | None) -> str | None:
    try:
        return oct(stat.S_IMODE(os.stat(directory).st_mode)) if directory is not None else None
    except FileNotFoundError:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the NVCF worker's connections are
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # peer's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def setup(self) -> None:
        super().setup()
        _count_connections(1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            _count_connections(-1)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b'{"ready": true}')
        else:
            self._send(404, b'{"error": "no such path"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/infer":
            self._send(404, b'{"error": "no such path"}')
            return
        request: dict[str, Any] = json.loads(raw) if raw else {}
        ctx = RequestContext.from_headers(self.headers.items())
        with log_request(ctx):  # one NVCF-format line per request, for the log tests
            if "status" in request:
                logger.warning("answering %s: %s", request["status"], request.get("error"))
            else:
                logger.info("POST /infer: %s", ", ".join(sorted(request)) or "an empty object")
        if request.get("crash"):
            os._exit(3)
        if "text/event-stream" in self.headers.get("Accept", ""):
            self._stream(request)
        elif "status" in request:
            _work(request, ctx)
            if "text_error" in request:
                self._send(request["status"], b"plain failure", "text/plain")
            else:
                self._send(request["status"], json.dumps({"error": request.get("error")}).encode())
        elif request.get("only_size"):
            self._send(200, json.dumps({"bytes": len(raw)}).encode())
        elif "body_bytes" in request:
            _work(request, ctx)
            self._send(200, b"x" * request["body_bytes"], "application/octet-stream")
        else:
            _work(request, ctx)
            echo = {
                # pairs, not a dict: a header sent twice must show twice
                "headers": list(self.headers.items()),
                "env": {
                    k: v for k, v in os.environ.items() if k.startswith(("NVCF_", "CONTRACT_"))
                },
                # A Helm function's service gets no asset directory.
                "assets": {a: read_asset(ctx, a).decode() for a in list_assets(ctx)}
                if ctx.asset_dir is not None
                else None,
                # The asset directory's mode, or None when there is none (NVCF makes it
                # only for a request with assets).
                "asset_dir_mode": _mode_of(ctx.asset_dir),
                "pid": os.getpid(),
                "input": request,
            }
            self._send(200, json.dumps(echo).encode())

    def _stream(self, request: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for index in range(int(request.get("events", 3))):
            self.wfile.write(f'data: {{"event": {index}}}\n\n'.encode())
            self.wfile.flush()
            if index == 0:
                _wait_for(request.get("wait_for"))
        self.close_connection = True


def _work(request: dict[str, Any], ctx: RequestContext) -> None:
    """Progress, waiting and large outputs, in the order a real function would do them."""
    if "raw_progress" in request:
        assert ctx.large_output_dir is not None
        (ctx.large_output_dir / "progress").write_text(request["raw_progress"])
        time.sleep(0.2)  # let the watcher see (and skip) it before the next update
    if request.get("progress"):
        reporter = ProgressReporter(ctx)
        for percent, partial in request["progress"]:
            reporter.update(percent, partial)
    _wait_for(request.get("wait_for"))
    time.sleep(request.get("sleep", 0))
    if "large" in request:
        with large_output(ctx, request["large"]["name"]) as stream:
            stream.write(b"L" * request["large"]["bytes"])
    if "leave_partial" in request:
        assert ctx.large_output_dir is not None
        (ctx.large_output_dir / (request["leave_partial"] + ".partial")).write_bytes(b"half")


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    configure_logging()
    serve(Handler, "contract server", int(sys.argv[1]))


if __name__ == "__main__":
    main()
