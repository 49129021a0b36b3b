"""Start ``python run.py`` once per test module, as the container would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # for client.py and run.py


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``python run.py``."""

    process: subprocess.Popen[bytes]
    http_port: int
    home: Path  # PYTRITON_HOME: where PyTriton keeps its workspace
    log: Path

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """run.py serving on free ports, with its own PyTriton workspace directory."""
    pytest.importorskip("pytriton", reason="pip install -r requirements.txt")
    pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
    import run

    scratch = tmp_path_factory.mktemp("pytriton")
    ports = [_free_port() for _ in range(3)]
    env = dict(
        os.environ,
        PYTRITON_HOME=str(scratch / "home"),
        LOG_LEVEL="DEBUG",  # a log line per request, for the tests to find
        PYTRITON_TRITON_CONFIG_HTTP_PORT=str(ports[0]),
        PYTRITON_TRITON_CONFIG_GRPC_PORT=str(ports[1]),
        PYTRITON_TRITON_CONFIG_METRICS_PORT=str(ports[2]),
    )
    log = scratch / "server.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "run.py"],
            cwd=PROJECT,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    running = Server(process, ports[0], scratch / "home", log)
    ready = f"http://127.0.0.1:{ports[0]}/v2/models/{run.MODEL_NAME}/ready"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"run.py exited with {process.returncode}:\n{running.output()[-3000:]}")
            try:
                with urllib.request.urlopen(ready, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"run.py was not ready in 120 s:\n{running.output()[-3000:]}")
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
