"""The generated FastAPI app against a bare FastAPI app, as a ratio measured in one run.

    python benchmarks/fastapi_template.py     (or: make bench)

fastapi-container (long_running=no) as generated: ``nvcf_helpers.fastapi``
installed on the app (NVCF logging, the request-id middleware, problem
details) and its inference route reading the request context through the
``NvcfContext`` dependency. The bare app has the same request and response
models and does the same work in the same kind of route, with nothing of
NVCF. Both run at once under the same uvicorn: the command of the generated
Dockerfile, on 127.0.0.1 and a free port. One keep-alive HTTP/1.1 client per
app sends request.json with NVCF's headers, one request at a time,
alternating A B B A ... (figures.interleaved_times), on each of 4 fresh
pairs of servers, started generated first, then bare first, and so on: on
these machines the server started first answers some 5% slower, which
alternating cancels. The figure is the bare app's median latency over the
generated one's, pooled (its requests/s relative to the bare app's).
Bound: at least 0.9.

Nearly all of the difference is the ``NvcfContext`` dependency: FastAPI's
work for one more dependency, and parsing the NVCF headers into a
RequestContext (its two directories as Path objects the costliest part).
Without it, the generated app measures within a percent of the bare one.

The servers' output goes to ``build/bench-logs/fastapi-template-*.log``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from figures import Figure, interleaved_times, report
from servers import ServerFailedError, log_path, nvcf_headers, one_line_failures

from nvcf_helpers.scaffold import generate
from nvcf_helpers.testing import free_port, stop_process

#: Requests to each app, in all.
REQUESTS = 6000
#: Fresh pairs of servers the comparison is spread over (even: each side starts
#: first as often); where a start places a process moves one pair's comparison.
SERVER_STARTS = 4
BOUND = 0.9

BARE_APP = """
import math

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field


class InferenceRequest(BaseModel):
    values: list[float] = Field(min_length=1)
    scale: float = Field(1.0)


class InferenceResponse(BaseModel):
    values: list[float]


app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/infer")
def infer(request: InferenceRequest) -> InferenceResponse:
    for index, value in enumerate(request.values):
        if not math.isfinite(value):
            raise HTTPException(400, f"values[{index}] is {value}: send finite numbers")
    return InferenceResponse(values=[value * request.scale for value in request.values])
"""


def image_command(project: Path, port: int) -> list[str]:
    """The generated Dockerfile's CMD, with this Python, on 127.0.0.1 and ``port``."""
    (line,) = re.findall(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.M)
    argv: list[str] = json.loads(line)
    argv[0] = sys.executable
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


@contextmanager
def uvicorn_app(directory: Path, command: Callable[[int], list[str]], name: str) -> Iterator[int]:
    """``app:app`` of ``directory`` under uvicorn; yields its port once it answers."""
    port = free_port()
    log = log_path(f"fastapi-template-{name}")
    env = dict(os.environ, LOG_LEVEL="INFO", PYTHONDONTWRITEBYTECODE="1")
    with log.open("wb") as stream:
        process = subprocess.Popen(
            command(port),
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ServerFailedError(f"the {name} app", log)
            time.sleep(0.1)
        yield port
    finally:
        stop_process(process)


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def infer_call(port: int, body: bytes, headers: dict[str, str]) -> Callable[[], object]:
    """One POST /infer on a kept-alive connection; the answer is checked once, here."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sent = {**headers, "Content-Type": "application/json"}

    def call() -> bytes:
        connection.request("POST", "/infer", body, sent)
        return connection.getresponse().read()

    answer = json.loads(call())
    request = json.loads(body)
    if answer != {"values": [value * request["scale"] for value in request["values"]]}:
        raise SystemExit(f"the app on port {port} answered {answer}")
    return call


def bench(scratch: Path) -> Figure:
    project = generate("fastapi-container", scratch / "generated", no_input=True)
    bare = scratch / "bare"
    bare.mkdir()
    (bare / "app.py").write_text(BARE_APP)
    body = (project / "request.json").read_bytes()
    headers = nvcf_headers(scratch)
    times: dict[str, list[float]] = {"generated": [], "bare": []}
    sides = [("generated", project), ("bare", bare)]
    for start in range(SERVER_STARTS):
        with ExitStack() as stack:
            ports = {
                name: stack.enter_context(
                    uvicorn_app(directory, lambda port: image_command(project, port), name)
                )
                for name, directory in (sides if start % 2 == 0 else sides[::-1])
            }
            measured = interleaved_times(
                {name: infer_call(port, body, headers) for name, port in ports.items()},
                REQUESTS // SERVER_STARTS,
            )
        for name, samples in measured.items():
            times[name] += samples
    ratio = statistics.median(times["bare"]) / statistics.median(times["generated"])
    return Figure("generated fastapi-container vs bare FastAPI, request.json", ratio, BOUND)


def main() -> int:
    with (
        one_line_failures(),
        tempfile.TemporaryDirectory(prefix="nvcf-bench-fastapi-") as scratch,
    ):
        return report([bench(Path(scratch))])


if __name__ == "__main__":
    sys.exit(main())
