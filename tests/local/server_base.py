"""What the local NVCF tests' small HTTP servers share: the server, one answer, the main loop."""

from __future__ import annotations

from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1 that keeps up with 16 callers connecting at once."""

    request_queue_size = 128  # the default of 5 resets connections under 16 callers
    daemon_threads = True


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer with ``status``, ``body`` of ``content_type`` and extra ``headers``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler], name: str, port: int) -> None:
    """Serve ``handler`` on 127.0.0.1:``port``, saying so on stdout, until killed."""
    server = Server(("127.0.0.1", port), handler)
    print(f"{name} listening on {port}", flush=True)
    server.serve_forever()
