"""The servers benchmarks start, with their logs in files, and the requests they send.

Every server writes its output to ``build/bench-logs/<name>.log`` (emptied at
the start of each run), never to the terminal: a benchmark prints its figures
only, and a failure names the log to read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nvcf_helpers import names
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.libpython import apply_libpython_fix
from nvcf_helpers.testing import free_port, stop_process
from nvcf_helpers.tritonserver import TritonServer

ROOT = Path(__file__).resolve().parents[1]
#: Where the servers a benchmark starts write their output (build/ is not committed).
LOG_DIR = ROOT / "build" / "bench-logs"


def log_path(name: str) -> Path:
    """An empty file for one server's output: ``build/bench-logs/<name>.log``."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"{name}.log"
    path.write_bytes(b"")
    return path


class ServerFailedError(SystemExit):
    """A server did not get ready; the message names its log."""

    def __init__(self, what: str, log: Path) -> None:
        super().__init__(f"{what} did not get ready; its output is in {log}")


def function_definition(
    name: str,
    port: int,
    image: str,
    *,
    inference_url: str = "/infer",
    health_protocol: str = "HTTP",
    health_uri: str = "/health",
) -> dict[str, Any]:
    """The function definition a benchmark registers: inference and health on ``port``."""
    return {
        "name": name,
        "inferenceUrl": inference_url,
        "inferencePort": port,
        "health": {
            "protocol": health_protocol,
            "uri": health_uri,
            "port": port,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "containerImage": image,
    }


@contextmanager
def one_line_failures() -> Iterator[None]:
    """Report a server that failed in one line naming the logs, not with its output."""
    try:
        yield
    except NvcfHelperError as exc:
        summary = getattr(exc, "summary", None) or str(exc).splitlines()[0]
        raise SystemExit(f"{summary}; the servers' output is in {LOG_DIR}") from None


def nvcf_headers(output_dir: Path) -> dict[str, str]:
    """What NVCF's worker sends with each request."""
    return {
        names.REQUEST_ID: str(uuid.uuid4()),
        names.FUNCTION_NAME: "bench",
        names.FUNCTION_ID: str(uuid.uuid4()),
        names.LARGE_OUTPUT_DIR: str(output_dir),
        names.ASSET_DIR: str(output_dir),
        names.MAX_RESPONSE_SIZE: str(names.DEFAULT_MAX_RESPONSE_BYTES),
        names.NCA_ID: "nca",
    }


def identity_call(
    client: Any, model: str, values: int, output_dir: Path, *, batched: bool = True
) -> Callable[[], object]:
    """One tritonclient HTTP request (JSON, NVCF headers) to an FP32 identity model.

    The model's answer is checked once, here. ``batched``: the model has a
    batch dimension (``max_batch_size`` > 0), so the request carries ``[1, values]``.
    """
    import tritonclient.http as httpclient

    shape = [1, values] if batched else [values]
    data = np.arange(values, dtype=np.float32).reshape(shape)
    tensor = httpclient.InferInput("INPUT0", shape, "FP32")
    tensor.set_data_from_numpy(data, binary_data=False)
    wanted = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)]
    headers = nvcf_headers(output_dir)

    def call() -> object:
        return client.infer(model, [tensor], outputs=wanted, headers=headers)

    result = client.infer(model, [tensor], outputs=wanted, headers=headers)
    if not np.array_equal(result.as_numpy("OUTPUT0"), data):
        raise SystemExit(f"{model} did not answer its input")
    return call


def fresh_servers(repository: Path, log_name: str, starts: int) -> Iterator[Any]:
    """A tritonclient HTTP client of each of ``starts`` fresh tritonservers, one after another.

    Where a start happens to place the Python backend stubs moves a
    comparison on one server by a percent or two on these machines; a figure
    pooled over several starts does not depend on one placement. The configs
    are complete, so the servers start without auto-complete, as a generated
    repository is served.
    """
    import tritonclient.http as httpclient

    with log_path(log_name).open("w") as stream:
        for _ in range(starts):
            with (
                TritonServer(
                    repository, disable_auto_complete_config=True, stdout=stream
                ) as server,
                closing(
                    httpclient.InferenceServerClient(server.url.removeprefix("http://"))
                ) as client,
            ):
                server.wait_ready(timeout=120)
                yield client


def model_ready(url: str, model: str, timeout: float = 2.0) -> bool:
    """Whether ``model`` on the server at ``url`` (host:port) answers ready."""
    try:
        with urllib.request.urlopen(f"http://{url}/v2/models/{model}/ready", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def pytriton_process(script: Path, model: str, log_name: str) -> Iterator[str]:
    """Run a PyTriton script with its output in a log file; yield its HTTP address once ready."""
    ports = [free_port() for _ in range(3)]
    prefix = "PYTRITON_TRITON_CONFIG_"
    # A short home: PyTriton's Unix socket paths under it must fit in 107 bytes.
    home = tempfile.mkdtemp(prefix="nvcf-bench-")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTRITON_HOME=home)
    for name, port in zip(("HTTP", "GRPC", "METRICS"), ports, strict=True):
        env[f"{prefix}{name}_PORT"] = str(port)
        env[f"{prefix}{name}_ADDRESS"] = "127.0.0.1"
    apply_libpython_fix(env)  # the environment fix, for every side alike; not the adapter
    log = log_path(log_name)
    with log.open("wb") as stream:
        process = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=script.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"127.0.0.1:{ports[0]}"
        deadline = time.monotonic() + 120
        while not model_ready(url, model):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServerFailedError(f"{script.name} ({model})", log)
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process)
        shutil.rmtree(home, ignore_errors=True)
