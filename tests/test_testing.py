"""Tests for nvcf_helpers.testing: free ports, readiness waits, fake requests."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvcf_helpers import RequestContext, asset_path, large_output
from nvcf_helpers.testing import fake_request, free_port, stop_process, wait_for_http


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers 200 on /ready and 404 anywhere else."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A tiny HTTP server on 127.0.0.1, in a thread of this process."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


class TestFreePort:
    """free_port returns a port that can be bound."""

    def test_bindable(self) -> None:
        """The port can be bound on 127.0.0.1 right after."""
        port = free_port()
        assert 1 <= port <= 65535
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
            assert sock.getsockname()[1] == port


@pytest.mark.integration
class TestWaitForHttp:
    """wait_for_http returns once the URL answers, or times out saying why."""

    def test_returns_when_ready(self, server: str) -> None:
        """A URL answering 200 returns at once."""
        wait_for_http(f"{server}/ready", timeout=10)

    def test_expected_status(self, server: str) -> None:
        """Another expected status (an HTTP error) is accepted too."""
        wait_for_http(f"{server}/other", timeout=10, expected_status=404)

    def test_wrong_status_times_out_with_it(self, server: str) -> None:
        """A URL answering the wrong status times out, reporting that status."""
        url = f"{server}/other"
        with pytest.raises(TimeoutError, match=r"did not answer 200 within 0\.3 s \(status 404\)"):
            wait_for_http(url, timeout=0.3, interval=0.05)

    def test_nothing_listening_times_out(self) -> None:
        """A port with no server times out with a message naming the URL."""
        url = f"http://127.0.0.1:{free_port()}/ready"
        with pytest.raises(TimeoutError, match=rf"GET {url} did not answer 200 within 0\.2 s \("):
            wait_for_http(url, timeout=0.2, interval=0.05)


class TestFakeRequest:
    """fake_request builds a worker-like context with its directories."""

    def test_creates_dirs(self, tmp_path: Path) -> None:
        """The asset and output directories exist under root and are in the context."""
        ctx = fake_request(tmp_path / "req")
        assert ctx.asset_dir == tmp_path / "req" / "assets"
        assert ctx.large_output_dir == tmp_path / "req" / "output"
        assert ctx.asset_dir.is_dir()
        assert ctx.large_output_dir.is_dir()

    def test_fresh_ids_and_identity(self, tmp_path: Path) -> None:
        """Each call gets a new request id; identity fields are filled."""
        first, second = fake_request(tmp_path), fake_request(tmp_path)
        assert first.request_id
        assert second.request_id
        assert first.request_id != second.request_id
        assert first.function_id
        assert first.function_version_id
        assert first.function_name

    def test_overrides(self, tmp_path: Path) -> None:
        """Keyword arguments override fields."""
        ctx = fake_request(tmp_path, request_id="mine", max_response_bytes=10, asset_ids=("a",))
        assert (ctx.request_id, ctx.max_response_bytes, ctx.asset_ids) == ("mine", 10, ("a",))
        assert isinstance(ctx, RequestContext)

    def test_usable_with_the_helpers(self, tmp_path: Path) -> None:
        """The context works with assets and large outputs as a real one would."""
        ctx = fake_request(tmp_path)
        assert ctx.asset_dir is not None
        assert asset_path(ctx, "x") == ctx.asset_dir / "x"
        with large_output(ctx, "out") as stream:
            stream.write(b"ok")
        assert ctx.large_output_dir is not None
        assert (ctx.large_output_dir / "out").read_bytes() == b"ok"


class TestStopProcess:
    def test_terminates_with_sigterm(self) -> None:
        """A process that honours SIGTERM ends with it."""
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        stop_process(process, timeout=10)
        assert process.returncode == -15

    def test_kills_a_process_that_ignores_sigterm(self) -> None:
        """After the timeout, a process that ignores SIGTERM is killed."""
        code = (
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)"
        )
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        stop_process(process, timeout=0.5)
        assert process.returncode == -9
        process.stdout.close()
