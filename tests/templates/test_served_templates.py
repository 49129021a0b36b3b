"""Generated triton-model repositories, served for real by ``nvcf-helpers serve``.

The server's Python backend stub runs on a throw-away virtual environment that
has numpy and nothing else, as a stock Triton image does: the models can only
work through the ``nvcf_helpers`` copy the template put in their version
directory. (The stub takes its packages from the first ``python3`` on PATH,
which ``nvcf-helpers serve`` sets to the directory of the interpreter running
it; that interpreter finds ``nvcf_helpers`` and ``pytriton`` through
PYTHONPATH, which the stub ignores.) A probe model reports what the stub's
Python can import.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from template_support import CUSTOM_IO, REPOSITORY, bake_ok, load_module

from nvcf_helpers.testing import free_port, stop_process

pytestmark = pytest.mark.integration

PROBE_CONFIG = """name: "probe"
backend: "python"
max_batch_size: 0
input [ { name: "DUMMY", data_type: TYPE_INT32, dims: [ 1 ] } ]
output [ { name: "FACTS", data_type: TYPE_STRING, dims: [ 1 ] } ]
instance_group [ { count: 1, kind: KIND_CPU } ]
"""

PROBE_MODEL = """
import importlib.util
import json
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        facts = {
            "prefix": sys.prefix,
            "numpy": np.__file__,
            "nvcf_helpers": importlib.util.find_spec("nvcf_helpers") is not None,
        }
        out = np.array([json.dumps(facts).encode()], dtype=np.object_)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("FACTS", out)]) for _ in requests]
"""

MODELS = {
    "my_model": {},
    "long_model": {"long_running": "yes", "max_batch_size": "0", **CUSTOM_IO},
    "cpu_model": {"instance_kind": "KIND_CPU", "max_batch_size": "4"},
}


@dataclass
class Served:
    """The running ``nvcf-helpers serve`` and what it serves."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    environment: Path
    clients: dict[str, ModuleType]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.output().splitlines():
                if text in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r} in:\n{self.output()[-3000:]}")
            time.sleep(0.1)


def _numpy_only_environment(root: Path) -> Path:
    """A virtual environment with numpy (linked from this one) and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(sysconfig.get_path("purelib"))
    target = next((root / "lib").glob("python3*/site-packages"))
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            (target / name).symlink_to(site / name)
    return root


def _server_path(root: Path) -> Path:
    """A PYTHONPATH directory giving the serving interpreter nvcf_helpers and pytriton only."""
    import pytriton

    site = Path(pytriton.__file__).resolve().parent.parent
    root.mkdir()
    (root / "nvcf_helpers").symlink_to(REPOSITORY / "nvcf_helpers")
    for name in ("pytriton", "nvidia_pytriton.libs"):
        if (site / name).exists():
            (root / name).symlink_to(site / name)
    return root


@pytest.fixture(scope="module")
def served(cookies_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Three generated models and the probe, served on a numpy-only stub environment."""
    pytest.importorskip("pytriton")
    pytest.importorskip("tritonclient.http")
    scratch = tmp_path_factory.mktemp("served")
    repository = scratch / "model_repository"
    repository.mkdir()
    clients = {}
    for model, extra in MODELS.items():
        project = bake_ok(cookies_session, "triton-model", model_name=model, **extra)
        shutil.copytree(project / "model_repository" / model, repository / model)
        if model == "my_model":  # log_level DEBUG: one line per request
            config = repository / model / "config.pbtxt"
            config.write_text(config.read_text().replace('"INFO"', '"DEBUG"'))
        clients[model] = load_module(project / "client.py", f"client_{model}")
    (repository / "probe" / "1").mkdir(parents=True)
    (repository / "probe" / "config.pbtxt").write_text(PROBE_CONFIG)
    (repository / "probe" / "1" / "model.py").write_text(PROBE_MODEL)

    environment = _numpy_only_environment(scratch / "numpy-only")
    python = environment / "bin" / "python"
    server_path = _server_path(scratch / "server-path")
    http_port, grpc_port = free_port(), free_port()
    log = scratch / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(server_path), PYTHONDONTWRITEBYTECODE="1")
    command = [str(python), "-m", "nvcf_helpers", "serve", str(repository)]
    command += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with log.open("wb") as stream:
        # cwd matters: the stub puts its working directory on sys.path, and the
        # checkout's nvcf_helpers must not be found that way.
        process = subprocess.Popen(
            command, env=env, cwd=scratch, stdout=stream, stderr=subprocess.STDOUT
        )
    running = Served(process, f"127.0.0.1:{http_port}", log, environment, clients)
    try:
        deadline = time.monotonic() + 120
        while "ready: " not in running.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nvcf-helpers serve did not get ready:\n{running.output()[-4000:]}")
            time.sleep(0.1)
        yield running
    finally:
        stop_process(process)


def _infer(
    served: Served, model: str, tmp_path: Path, **headers: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    client = served.clients[model]
    inputs = client.example_inputs(headers.pop("size", 4))
    sent = client.nvcf_headers(tmp_path, **headers)
    return client.infer(served.url, inputs, sent), inputs


class TestStubEnvironment:
    """The Python the models run in has numpy but not nvcf_helpers."""

    def test_probe_sees_numpy_only(self, served: Served) -> None:
        """The stub's sys.prefix is the numpy-only environment, where nvcf_helpers is absent."""
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(served.url)
        try:
            dummy = httpclient.InferInput("DUMMY", [1], "INT32")
            dummy.set_data_from_numpy(np.zeros(1, dtype=np.int32))
            result = client.infer("probe", [dummy])
        finally:
            client.close()
        facts = json.loads(result.as_numpy("FACTS")[0])
        assert facts["prefix"] == str(served.environment)
        assert facts["numpy"].startswith(str(served.environment))
        assert facts["nvcf_helpers"] is False

    def test_environment_cannot_import_nvcf_helpers(self, served: Served, tmp_path: Path) -> None:
        """Outside the server too, the environment's Python has numpy and no nvcf_helpers."""
        python = str(served.environment / "bin" / "python")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

        def run(code: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [python, "-c", code], env=env, cwd=tmp_path, capture_output=True, check=False
            )

        assert run("import numpy").returncode == 0
        assert b"No module named 'nvcf_helpers'" in run("import nvcf_helpers").stderr


class TestDefaultModel:
    """The default triton-model (identity, max_batch_size 8, KIND_AUTO)."""

    def test_identity(self, served: Served, tmp_path: Path) -> None:
        """INPUT0 comes back as OUTPUT0."""
        outputs, inputs = _infer(served, "my_model", tmp_path)
        np.testing.assert_array_equal(outputs["OUTPUT0"], inputs["INPUT0"])
        assert outputs["OUTPUT0"].dtype == np.float32

    def test_request_id_in_nvcf_log_line(self, served: Served, tmp_path: Path) -> None:
        """The server's output has an NVCF-format line carrying the request id."""
        request_id = str(uuid.uuid4())
        _infer(served, "my_model", tmp_path, request_id=request_id)
        line = served.wait_for_line(f"[reqid={request_id}]")
        assert " [DEBUG] [INFERENCE] [reqid=" in line
        assert line.endswith(f"[reqid={request_id}] answered OUTPUT0 [1, 4]")

    def test_bad_request_is_400_without_traceback(self, served: Served, tmp_path: Path) -> None:
        """NaN input is answered 400 with the model's message, no traceback anywhere in it."""
        from tritonclient.utils import InferenceServerException

        client = served.clients["my_model"]
        inputs = {"INPUT0": np.array([[1.0, np.nan]], dtype=np.float32)}
        with pytest.raises(InferenceServerException) as caught:
            client.infer(served.url, inputs, client.nvcf_headers(tmp_path))
        assert caught.value.status() == "400"
        assert caught.value.message() == "input INPUT0 holds NaN or infinity: send finite numbers"

    def test_a_header_the_model_never_reads_costs_nothing(
        self, served: Served, tmp_path: Path
    ) -> None:
        """The echo model reads no context, so a malformed header it ignores does not fail it."""
        outputs, inputs = _infer(served, "my_model", tmp_path, max_response_bytes="lots")  # type: ignore[arg-type]
        np.testing.assert_array_equal(outputs["OUTPUT0"], inputs["INPUT0"])


class TestLongRunningModel:
    """long_running=yes with several inputs and outputs, no batching."""

    def test_malformed_header_it_reads_is_400(self, served: Served, tmp_path: Path) -> None:
        """A malformed NVCF header the model reads is the caller's mistake: 400, no traceback."""
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException) as caught:
            _infer(served, "long_model", tmp_path, max_response_bytes="lots")  # type: ignore[arg-type]
        assert caught.value.status() == "400"
        assert "NVCF-MAX-RESPONSE-SIZE-BYTES" in caught.value.message()
        assert "Traceback" not in caught.value.message()

    def test_outputs_and_progress(self, served: Served, tmp_path: Path) -> None:
        """Every output is answered; the progress file names the request and ends at 100."""
        request_id = str(uuid.uuid4())
        outputs, inputs = _infer(served, "long_model", tmp_path, request_id=request_id)
        line = served.wait_for_line(f"[reqid={request_id}]")  # long-running: INFO per request
        assert f" [INFO] [INFERENCE] [reqid={request_id}] answered X [4], Y [2], Z [4]" in line
        np.testing.assert_array_equal(outputs["X"], inputs["A"].astype(np.int64))
        assert [v.encode() if isinstance(v, str) else v for v in outputs["Y"].tolist()] == inputs[
            "B"
        ].tolist()
        np.testing.assert_array_equal(outputs["Z"], inputs["A"].astype(np.float64))
        progress = json.loads((tmp_path / "progress").read_text())
        assert (progress["id"], progress["progress"]) == (request_id, 100)
        assert progress["partialResponse"] == {"step": "done"}

    def test_large_outputs(self, served: Served, tmp_path: Path) -> None:
        """Over NVCF-MAX-RESPONSE-SIZE-BYTES, the big outputs become .npy files, none partial."""
        outputs, inputs = _infer(
            served, "long_model", tmp_path, size=1000, max_response_bytes=10_000
        )
        assert outputs["X"] is None
        assert outputs["Z"] is None
        np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), inputs["A"].astype(np.int64))
        np.testing.assert_array_equal(np.load(tmp_path / "Z.npy"), inputs["A"].astype(np.float64))
        assert outputs["Y"] is not None  # small enough to stay inline
        assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "Z.npy", "progress"]


class TestCpuModel:
    """instance_kind=KIND_CPU with max_batch_size 4, logging at the default INFO."""

    def test_identity(self, served: Served, tmp_path: Path) -> None:
        """The CPU instance answers too."""
        outputs, inputs = _infer(served, "cpu_model", tmp_path)
        np.testing.assert_array_equal(outputs["OUTPUT0"], inputs["INPUT0"])

    def test_no_line_per_request_at_info(self, served: Served, tmp_path: Path) -> None:
        """At log_level INFO a plain request is not logged (a line costs ~10% of a tiny model)."""
        request_id = str(uuid.uuid4())
        _infer(served, "cpu_model", tmp_path, request_id=request_id)
        marker = str(uuid.uuid4())  # a later request's line proves the earlier one had time
        _infer(served, "long_model", tmp_path, request_id=marker)
        served.wait_for_line(f"[reqid={marker}]")
        assert f"[reqid={request_id}]" not in served.output()


class TestShutdown:
    """Runs last: it stops the server."""

    def test_sigterm_stops_serve(self, served: Served) -> None:
        """SIGTERM stops nvcf-helpers serve (and its tritonserver) with status 0."""
        with urllib.request.urlopen(f"http://{served.url}/v2/health/ready", timeout=5) as response:
            assert response.status == 200
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=30) == 0
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            urllib.request.urlopen(f"http://{served.url}/v2/health/ready", timeout=2)
