"""Tests for nvcf_helpers.pytriton: config, request context wrapper, errors, SIGTERM.

Unit tests call the wrapper with PyTriton's own ``Request`` objects; the
integration tests run ``tests/fixtures/pytriton_server.py`` (a real PyTriton
server, ports from PYTRITON_TRITON_CONFIG_*) and call it with tritonclient.
"""

from __future__ import annotations

import asyncio
import http.client
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvcf_helpers.errors import InputError
from nvcf_helpers.log import current_request_id
from nvcf_helpers.pytriton import (
    DEFAULT_EXIT_TIMEOUT_SECS,
    ContextUnavailableError,
    _MarkedError,
    _patched_model_source,
    _unmark,
    current_context,
    current_contexts,
    install_sigterm_handler,
    triton_config,
    with_request_context,
)
from nvcf_helpers.testing import free_port, stop_process, wait_for_http

SERVER_SCRIPT = Path(__file__).parent / "fixtures" / "pytriton_server.py"


def _request(headers: dict[str, Any] | None = None) -> Any:
    from pytriton.proxy.types import Request

    return Request(data={"INPUT0": np.zeros((1, 2), dtype=np.float32)}, parameters=headers)


class TestTritonConfig:
    """The TritonConfig factory."""

    def test_nvcf_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Header forwarding and a short exit timeout; ports left to PyTriton's env vars."""
        monkeypatch.delenv("PYTRITON_TRITON_CONFIG_EXIT_TIMEOUT_SECS", raising=False)
        config = triton_config()
        assert config.http_header_forward_pattern == "NVCF-.*"
        assert config.exit_timeout_secs == DEFAULT_EXIT_TIMEOUT_SECS
        assert (config.http_port, config.grpc_port, config.metrics_port) == (None, None, None)

    def test_env_exit_timeout_is_respected(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An exit timeout set through PyTriton's env var is not overridden."""
        monkeypatch.setenv("PYTRITON_TRITON_CONFIG_EXIT_TIMEOUT_SECS", "7")
        assert triton_config().exit_timeout_secs is None

    def test_overrides_win(self) -> None:
        """Keyword arguments override the defaults."""
        config = triton_config(http_port=9100, exit_timeout_secs=1, log_verbose=2)
        assert (config.http_port, config.exit_timeout_secs, config.log_verbose) == (9100, 1, 2)

    def test_applies_libpython_fix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Building the config puts this interpreter's LIBDIR first on LD_LIBRARY_PATH."""
        import sysconfig

        monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/other")
        triton_config()
        assert os.environ["LD_LIBRARY_PATH"].split(":")[0] == sysconfig.get_config_var("LIBDIR")


class TestErrorMapping:
    """How marked errors travel to PyTriton's proxy model."""

    def test_mark_round_trip(self) -> None:
        """A message with quotes and newlines survives, even inside a traceback."""
        message = 'INPUT0 is "bad"\nsecond line'
        text = f"Traceback (most recent call last):\n  ...\nX: {_MarkedError(400, message)}\n"
        assert _unmark(text) == (400, message)
        assert _unmark("Traceback ...\nRuntimeError: plain") is None

    def test_proxy_model_patch(self) -> None:
        """PyTriton's proxy model.py gets the execute() wrapper once, and still compiles."""
        import pytriton.proxy

        source = (Path(pytriton.proxy.__file__).parent / "model.py").read_bytes()
        patched = _patched_model_source(source)
        assert patched.startswith(source)
        assert b"TritonPythonModel.execute = _nvcf_execute" in patched
        assert _patched_model_source(patched) == patched
        compile(patched, "model.py", "exec")

    def test_other_files_untouched(self) -> None:
        """A file without the Python backend's model class is left as it is."""
        assert _patched_model_source(b"x = 1\n") == b"x = 1\n"


class TestWithRequestContext:
    """The outer callable binding each request's context."""

    def test_binds_contexts_and_request_ids(self) -> None:
        """The inner callable sees one context per request and the ids on log lines."""
        seen: list[Any] = []

        def infer(requests: list[Any]) -> list[dict[str, Any]]:
            seen.append((current_contexts(), current_request_id()))
            return [{"OUTPUT0": r.data["INPUT0"]} for r in requests]

        wrapped = with_request_context(infer)
        requests = [_request({"NVCF-REQID": "a", "Nvcf-Function-Name": "f"}), _request({"x": 1})]
        assert len(wrapped(requests)) == 2
        contexts, request_id = seen[0]
        assert [c.request_id for c in contexts] == ["a", None]
        assert contexts[0].function_name == "f"
        assert request_id == "a"
        with pytest.raises(ContextUnavailableError, match=r"no request context is bound here"):
            current_contexts()

    def test_current_context_needs_one_request(self) -> None:
        """current_context() in a call of two requests fails saying what to use instead."""

        def infer(requests: list[Any]) -> Any:
            return current_context()

        with pytest.raises(_MarkedError, match=r"ContextUnavailableError: .*holds 2 requests"):
            with_request_context(infer)([_request(), _request()])
        with pytest.raises(ContextUnavailableError, match=r"no request context is bound here"):
            current_context()

    def test_per_request_calls_once_per_request(self) -> None:
        """per_request=True gives each request its own call and its own context."""
        ids: list[str | None] = []

        @with_request_context(per_request=True)
        def infer(requests: list[Any]) -> list[dict[str, Any]]:
            ids.append(current_context().request_id)
            return [{"n": len(requests)}]

        result = infer([_request({"NVCF-REQID": "1"}), _request({"NVCF-REQID": "2"})])
        assert ids == ["1", "2"]
        assert result == [{"n": 1}, {"n": 1}]

    def test_invalid_input_becomes_400_mark(self) -> None:
        """An InvalidInputError leaves as a 400-marked error with its message."""

        def infer(requests: list[Any]) -> Any:
            raise InputError("INPUT0 is empty: send at least one value")

        with pytest.raises(_MarkedError) as caught:
            with_request_context(infer)([_request()])
        assert (caught.value.status, caught.value.message) == (
            400,
            "INPUT0 is empty: send at least one value",
        )

    def test_malformed_header_becomes_400_mark(self) -> None:
        """A malformed NVCF header is the caller's mistake too."""
        with pytest.raises(_MarkedError) as caught:
            with_request_context(lambda requests: [])(
                [_request({"NVCF-MAX-RESPONSE-SIZE-BYTES": "-1"})]
            )
        assert caught.value.status == 400
        assert "NVCF-MAX-RESPONSE-SIZE-BYTES" in caught.value.message

    def test_other_errors_become_500_mark(self) -> None:
        """Anything else leaves as a 500-marked error naming it, without traceback."""

        def infer(requests: list[Any]) -> Any:
            raise KeyError("weights")

        with pytest.raises(_MarkedError) as caught:
            with_request_context(infer)([_request()])
        assert (caught.value.status, caught.value.message) == (
            500,
            "internal error: KeyError: 'weights'",
        )

    def test_generator_stays_a_generator(self) -> None:
        """A streaming callable stays a generator function with the context bound while it runs."""

        def stream(requests: list[Any]) -> Iterator[list[dict[str, Any]]]:
            for _ in range(2):
                yield [{"id": current_context().request_id}]

        wrapped = with_request_context(stream)
        assert inspect.isgeneratorfunction(wrapped)
        assert list(wrapped([_request({"NVCF-REQID": "g"})])) == [[{"id": "g"}], [{"id": "g"}]]
        with pytest.raises(TypeError, match=r"per_request=True does not apply"):
            with_request_context(stream, per_request=True)

    def test_async_callable(self) -> None:
        """A coroutine callable stays one, with the context bound while it runs."""

        async def infer(requests: list[Any]) -> list[dict[str, Any]]:
            await asyncio.sleep(0)
            return [{"id": current_context().request_id}]

        wrapped = with_request_context(infer)
        assert inspect.iscoroutinefunction(wrapped)
        assert asyncio.run(wrapped([_request({"NVCF-REQID": "c"})])) == [{"id": "c"}]


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler interrupts this at once


class TestSigtermHandler:
    """SIGTERM becomes SystemExit."""

    def test_sigterm_raises_system_exit(self) -> None:
        """After installing the handler, SIGTERM raises SystemExit(0) in the main thread."""
        previous = signal.getsignal(signal.SIGTERM)
        try:
            install_sigterm_handler()
            with pytest.raises(SystemExit) as caught:
                _sigterm_self()
            assert caught.value.code == 0
        finally:
            signal.signal(signal.SIGTERM, previous)


# --- a real PyTriton server ------------------------------------------------------------------


def _start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path, Path]:
    """Start the fixture script; ports and cache dir through the environment.

    ``tmp`` must have a short path: PyTriton puts Unix sockets in its
    workspace, and a socket path is limited to 107 bytes.
    """
    http_port = free_port()
    home = tmp / "home"
    home.mkdir()
    log_path = tmp / "server.log"
    env = {
        **os.environ,
        "PYTRITON_TRITON_CONFIG_HTTP_PORT": str(http_port),
        "PYTRITON_TRITON_CONFIG_GRPC_PORT": str(free_port()),
        "PYTRITON_TRITON_CONFIG_METRICS_PORT": str(free_port()),
        "PYTRITON_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 120
    for model in ("batched", "per_request"):
        while process.poll() is None and time.monotonic() < deadline:
            try:
                wait_for_http(f"http://127.0.0.1:{http_port}/v2/models/{model}/ready", timeout=1)
                break
            except TimeoutError:
                continue
        else:
            stop_process(process)
            raise AssertionError(f"PyTriton did not start:\n{log_path.read_text()[-3000:]}")
    return process, http_port, home, log_path


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path (see _start_server)."""
    path = Path(tempfile.mkdtemp(prefix="nvcf-pt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pytriton_server() -> Iterator[tuple[int, Path]]:
    """The fixture PyTriton server: its HTTP port and its log file."""
    tmp = Path(tempfile.mkdtemp(prefix="nvcf-pt-"))
    process, port, _, log_path = _start_server(tmp)
    yield port, log_path
    stop_process(process)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def client(pytriton_server: tuple[int, Path]) -> Iterator[Any]:
    """A tritonclient HTTP client of the PyTriton server."""
    import tritonclient.http as httpclient

    connection = httpclient.InferenceServerClient(f"127.0.0.1:{pytriton_server[0]}", concurrency=4)
    yield connection
    connection.close()


def _inputs(values: list[float]) -> list[Any]:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("INPUT0", [1, len(values)], "FP32")
    tensor.set_data_from_numpy(np.array([values], dtype=np.float32))
    return [tensor]


def _contexts_of(result: Any) -> list[dict[str, Any]]:
    return [json.loads(row[0]) for row in result.as_numpy("CONTEXT")]


@pytest.mark.integration
class TestPyTritonServer:
    """The adapter inside a real PyTriton server, called with tritonclient."""

    @pytest.mark.parametrize("model", ["batched", "per_request"])
    def test_infer_function_sees_nvcf_headers(self, client: Any, model: str) -> None:
        """NVCF headers sent by tritonclient reach the callable as a RequestContext."""
        request_id = str(uuid.uuid4())
        headers = {
            "NVCF-REQID": request_id,
            "nvcf-function-name": "my-fn",
            "NVCF-LARGE-OUTPUT-DIR": "/var/inf/response/x",
            "NVCF-MAX-RESPONSE-SIZE-BYTES": "2048",
        }
        result = client.infer(model, _inputs([1.0, 2.0]), headers=headers)
        assert result.as_numpy("OUTPUT0").tolist() == [[1.0, 2.0]]
        assert _contexts_of(result) == [
            {
                "request_id": request_id,
                "function_name": "my-fn",
                "large_output_dir": "/var/inf/response/x",
                "max_response_bytes": 2048,
            }
        ]

    def test_concurrent_requests_keep_their_own_context(self, client: Any) -> None:
        """Requests batched together by Triton each get back the context they sent."""
        ids = [str(uuid.uuid4()) for _ in range(6)]
        pending = [
            client.async_infer("batched", _inputs([float(i)]), headers={"NVCF-REQID": rid})
            for i, rid in enumerate(ids)
        ]
        for i, (rid, future) in enumerate(zip(ids, pending, strict=True)):
            result = future.get_result()
            assert result.as_numpy("OUTPUT0").tolist() == [[float(i)]]
            assert _contexts_of(result)[0]["request_id"] == rid

    def test_bad_input_is_400_with_message(self, client: Any) -> None:
        """An InputError reaches the client as HTTP 400 with its message, no traceback."""
        from tritonclient.utils import InferenceServerException

        for model in ("batched", "per_request"):
            with pytest.raises(InferenceServerException) as caught:
                client.infer(model, _inputs([float("nan")]))
            assert caught.value.status() == "400"
            assert caught.value.message() == "INPUT0 holds NaN or infinity: send finite numbers"

    def test_crash_is_500_without_traceback(self, client: Any) -> None:
        """An unexpected error answers 500 naming it, without PyTriton's traceback."""
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException) as caught:
            client.infer("batched", _inputs([-1.0]))
        assert caught.value.status() == "500"
        assert caught.value.message() == (
            "internal error: RuntimeError: negative values crash this model"
        )

    def test_request_id_on_nvcf_log_line(
        self, client: Any, pytriton_server: tuple[int, Path]
    ) -> None:
        """The model's log line for a request is in NVCF's format with the request id."""
        request_id = str(uuid.uuid4())
        client.infer("per_request", _inputs([3.0]), headers={"NVCF-REQID": request_id})
        pattern = (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] \[INFERENCE\] "
            rf"\[reqid={re.escape(request_id)}\] one request of 1 rows$"
        )
        deadline = time.monotonic() + 10
        while not re.search(pattern, pytriton_server[1].read_text(), re.MULTILINE):
            assert time.monotonic() < deadline, pytriton_server[1].read_text()[-3000:]
            time.sleep(0.05)


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


@pytest.mark.integration
class TestSigterm:
    """``docker stop``: SIGTERM with a client's keep-alive connection still open."""

    def test_exits_cleanly_within_15_seconds(self, short_tmp: Path) -> None:
        """Exit 0 within 15 s, tritonserver gone, no PyTriton workspace left behind."""
        process, port, home, log_path = _start_server(short_tmp)
        try:
            assert list(home.glob("workspace_*"))  # the workspace exists while serving
            tritonservers = [
                child
                for child in _children(process.pid)
                if "tritonserver" in Path(f"/proc/{child}/cmdline").read_text()
            ]
            assert tritonservers
            # NVCF's worker keeps its connections open, as this client does.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/v2/health/ready")
            assert connection.getresponse().read() == b""
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=15)
            connection.close()
        finally:
            stop_process(process)
        assert returncode == 0, log_path.read_text()[-3000:]
        log = log_path.read_text()
        assert "SIGTERM received, shutting down" in log
        # The models are unloaded before tritonserver stops, so no stub is cut off.
        assert "Exit timeout expired" not in log
        assert "Non-graceful termination" not in log
        assert not list(home.glob("workspace_*"))
        assert not any(_alive(pid) for pid in tritonservers)


class TestWorkspacePath:
    """PyTriton's Unix socket paths are checked before a model is bound."""

    def test_short_home_passes(self) -> None:
        """A model under a short PyTriton home is accepted."""
        from nvcf_helpers.pytriton import check_workspace_path

        check_workspace_path("my_model", "/tmp/pytriton")

    def test_long_home_is_refused_with_the_fix(self, tmp_path: Path) -> None:
        """A path past 107 bytes is refused, naming the length and PYTRITON_HOME."""
        from nvcf_helpers.pytriton import WorkspacePathError, check_workspace_path

        home = tmp_path / ("deep" * 12)
        with pytest.raises(WorkspacePathError, match=r"set PYTRITON_HOME to a shorter directory"):
            check_workspace_path("word_count", home)

    def test_environment_is_the_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an explicit home, PYTRITON_HOME decides."""
        from nvcf_helpers.pytriton import WorkspacePathError, check_workspace_path

        monkeypatch.setenv("PYTRITON_HOME", "/tmp/" + "x" * 80)
        with pytest.raises(WorkspacePathError, match=r"'m' would be \d+ bytes"):
            check_workspace_path("m")
        monkeypatch.setenv("PYTRITON_HOME", "/tmp/p")
        check_workspace_path("m")

    def test_serve_refuses_before_loading(self, tmp_path: Path) -> None:
        """serve() with a too-deep PYTRITON_HOME exits with the message, not an EOFError."""
        script = (
            "import numpy as np\n"
            "from pytriton.model_config import Tensor\n"
            "from nvcf_helpers.pytriton import serve\n"
            "def infer(requests):\n"
            "    return [{'OUTPUT0': r['INPUT0']} for r in requests]\n"
            "def bind(triton):\n"
            "    triton.bind(model_name='echo', infer_func=infer,\n"
            "        inputs=[Tensor(name='INPUT0', dtype=np.float32, shape=(-1,))],\n"
            "        outputs=[Tensor(name='OUTPUT0', dtype=np.float32, shape=(-1,))])\n"
            "serve(bind)\n"
        )
        from nvcf_helpers.testing import free_port

        home = tmp_path / ("deep" * 20)
        env = {
            **os.environ,
            "PYTRITON_HOME": str(home),
            "PYTRITON_TRITON_CONFIG_HTTP_PORT": str(free_port()),
            "PYTRITON_TRITON_CONFIG_GRPC_PORT": str(free_port()),
            "PYTRITON_TRITON_CONFIG_METRICS_PORT": str(free_port()),
        }
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1
        assert "[ERROR] [INFERENCE] PyTriton's sockets for model 'echo'" in result.stdout
        assert "set PYTRITON_HOME to a shorter directory" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
