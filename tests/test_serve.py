"""Tests for ``nvcf-helpers serve``, run as a subprocess like a user runs it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from nvcf_helpers.testing import free_port

REPOSITORY = Path(__file__).parent / "fixtures" / "triton_repository"


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nvcf_helpers", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _read_until(stream: IO[str], marker: str, timeout: float) -> list[str]:
    """Lines of ``stream`` up to the first one starting with ``marker`` (or its end)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in stream:
        lines.append(line)
        if line.startswith(marker) or time.monotonic() > deadline:
            break
    return lines


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def serving() -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """``nvcf-helpers serve`` of the fixture repository, read up to its ready line."""
    http_port = free_port()
    ports = ["--http-port", str(http_port), "--grpc-port", str(free_port())]
    process = _serve(str(REPOSITORY), *ports, "--exit-timeout", "2")
    assert process.stdout is not None
    lines = _read_until(process.stdout, "ready: ", timeout=120)
    yield process, http_port, lines
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.integration
class TestServe:
    """Serving a repository in the foreground, then stopping it with SIGTERM."""

    def test_prints_ready_line_after_server_output(
        self, serving: tuple[subprocess.Popen[str], int, list[str]]
    ) -> None:
        """tritonserver's output passes through, then one line names the URL and models."""
        _, port, lines = serving
        assert lines[-1] == f"ready: http://127.0.0.1:{port} models: nvcf_echo\n"
        assert any("Started HTTPService" in line for line in lines)

    def test_inference_with_nvcf_header(
        self, serving: tuple[subprocess.Popen[str], int, list[str]]
    ) -> None:
        """The served model answers and sees a forwarded NVCF header."""
        _, port, _ = serving
        body = json.dumps(
            {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/models/nvcf_echo/infer",
            data=body,
            headers={"Content-Type": "application/json", "NVCF-REQID": "serve-test"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            outputs = {o["name"]: o for o in json.loads(response.read())["outputs"]}
        assert outputs["OUTPUT0"]["data"] == [1.0, 2.0]
        assert json.loads(outputs["CONTEXT"]["data"][0])["request_id"] == "serve-test"

    def test_sigterm_stops_server_and_exits_0(
        self, serving: tuple[subprocess.Popen[str], int, list[str]]
    ) -> None:
        """SIGTERM stops tritonserver and its stubs, and the command exits 0.

        A client keeps an idle keep-alive connection open, as NVCF's worker
        does: tritonserver then waits out its whole exit timeout, which
        ``--exit-timeout`` shortens.
        """
        process, port, _ = serving
        servers = _children(process.pid)
        stubs = [stub for server in servers for stub in _children(server)]
        assert servers
        assert stubs  # the Python backend stub of the fixture model
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
        connection.close()
        assert process.returncode == 0, rest
        assert "Timeout 2: Found" in rest
        assert rest.rstrip().endswith("stopped")
        assert not any(_alive(pid) for pid in servers + stubs)


@pytest.mark.integration
class TestServeKilled:
    """The server must not outlive the command, even when it is killed."""

    def test_sigkill_takes_the_server_down(self, tmp_path: Path) -> None:
        """After SIGKILL of the command (no chance to clean up) tritonserver ends too."""
        # The killed command cannot remove its backend directory: keep it in tmp_path.
        process = _serve(
            str(REPOSITORY),
            "--http-port",
            str(free_port()),
            "--grpc-port",
            str(free_port()),
            "--disable-auto-complete-config",
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
        assert process.stdout is not None
        try:
            assert _read_until(process.stdout, "ready: ", timeout=120)[-1].startswith("ready: ")
            servers = _children(process.pid)
            assert servers
        finally:
            process.kill()
            process.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in servers)


class TestServeErrors:
    """Unusable repositories: one line on stderr, exit 1, no server started."""

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nvcf_helpers", "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_missing_path(self, tmp_path: Path) -> None:
        """A path that does not exist is reported in one line."""
        result = self._run(str(tmp_path / "nope"))
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("nvcf-helpers serve: error: model repository ")
        assert "does not exist or is not a directory" in result.stderr

    def test_no_model_directories(self, tmp_path: Path) -> None:
        """A repository without model directories is reported in one line."""
        (tmp_path / "notes.txt").write_text("not a model")
        result = self._run(str(tmp_path))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert "has no model directories" in result.stderr

    def test_port_in_use(self) -> None:
        """A port another server holds is reported in one line naming the option."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = self._run(str(REPOSITORY), "--http-port", str(port))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert "pass --http-port with a free port" in result.stderr

    def test_usage_error_exits_2(self) -> None:
        """A missing argument is a usage error."""
        assert self._run().returncode == 2

    @pytest.mark.integration
    def test_model_that_fails_to_load(self, tmp_path: Path) -> None:
        """A model that cannot load: server output shown, then one error line, exit 1."""
        model = tmp_path / "broken"
        (model / "1").mkdir(parents=True)
        (model / "config.pbtxt").write_text('name: "broken"\nbackend: "python"\n')
        (model / "1" / "model.py").write_text("raise ImportError('no weights here')\n")
        result = self._run(
            str(tmp_path), "--http-port", str(free_port()), "--grpc-port", str(free_port())
        )
        assert result.returncode == 1
        assert "no weights here" in result.stdout
        assert result.stderr.startswith("nvcf-helpers serve: error: tritonserver exited")
        assert result.stderr.rstrip().endswith("see the server output above")
        assert result.stderr.count("\n") == 1
