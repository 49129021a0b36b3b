{%- if cookiecutter.protocol == "grpc" -%}
"""Serve ``python run.py`` as this project's gRPC function, behind a local NVCF, once per module."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# The tests are tooling: they need the installed nvcf-helpers (its local NVCF), not
# the runtime copy in nvcf_helpers/ beside run.py, which is what the image gets.
# The project stays importable (client.py), after the installed packages.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != PROJECT]
sys.path.append(str(PROJECT))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Function:
    """The running function, as a caller of NVCF's gRPC endpoint sees it."""

    nvcf: Any  # nvcf_helpers.local.LocalNvcf
    url: str  # host:port of the local NVCF's gRPC endpoint
    api_key: str
    log: Path  # the local NVCF's and run.py's output

    @property
    def function_id(self) -> str:
        return str(self.nvcf.function_id)

    @property
    def version_id(self) -> str:
        return str(self.nvcf.version_id)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Function]:
    """run.py deployed from function.json, its ports free ones, its own PyTriton workspace.

    PyTriton's gRPC port is the function's inferencePort and health port, as
    in the image; the local NVCF requires a bearer key, as NVCF does.
    """
    pytest.importorskip("pytriton", reason="pip install -r requirements.txt")
    pytest.importorskip("tritonclient.grpc", reason="pip install 'tritonclient[grpc]'")
    local = pytest.importorskip("nvcf_helpers.local", reason="pip install 'nvcf-helpers[local]'")
    from nvcf_helpers.spec import load_spec

    scratch = tmp_path_factory.mktemp("pytriton")
    http_port, grpc_port, metrics_port = (_free_port() for _ in range(3))
    env = {
        "PYTRITON_HOME": str(scratch / "home"),
        "LOG_LEVEL": "DEBUG",  # a log line per request
        "PYTRITON_TRITON_CONFIG_HTTP_PORT": str(http_port),
        "PYTRITON_TRITON_CONFIG_GRPC_PORT": str(grpc_port),
        "PYTRITON_TRITON_CONFIG_METRICS_PORT": str(metrics_port),
    }
    spec = load_spec(PROJECT / "function.json").on_port(grpc_port)
    log = scratch / "output.log"
    api_key = "local-test-key"
    with local.LocalNvcf(
        spec,
        [sys.executable, "run.py"],
        api_key=api_key,
        cwd=PROJECT,
        env=env,
        output=log,
        startup_timeout=180,
    ) as nvcf:
        assert nvcf.info is not None
        running = Function(nvcf, f"127.0.0.1:{nvcf.info['grpcPort']}", api_key, log)
        _model_answers_at_active(running)
        yield running


def _model_answers_at_active(function: Function) -> None:
    """The model is ready as soon as the function is ACTIVE.

    NVCF's gRPC health check asks tritonserver; nvcf_helpers.pytriton.serve
    starts it only once the model is bound and loaded, so NVCF never sends a
    call the model cannot answer yet.
    """
    import tritonclient.grpc as grpcclient

    import client

    metadata = client.nvcf_metadata(function.api_key, function.function_id)
    triton = grpcclient.InferenceServerClient(function.url)
    try:
        assert triton.is_model_ready(client.MODEL_NAME, headers=metadata), (
            f"the function is ACTIVE but its model is not ready:\n{function.output()[-3000:]}"
        )
    finally:
        triton.close()
{%- else -%}
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
{%- endif %}
