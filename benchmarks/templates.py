"""Benchmarks of the generated projects, each figure a ratio or a time measured in this run.

    python benchmarks/templates.py            (or: make bench)

1. triton-model: the generated model (long_running=no) against a minimal
   hand-written identity model with the same config.pbtxt, both on one
   tritonserver started as a generated repository is served (its configs are
   complete: no auto-complete). One tritonclient HTTP client sends KServe v2
   JSON with NVCF's headers, one request at a time, alternating A B B A ...,
   on each of 3 fresh servers; the figure is the hand-written model's median
   latency over the generated one's (its requests/s relative to the
   hand-written one's), at 4 and at 1,024 FP32 values. Bound: at least 0.95.
2. pytriton-container: the generated ``run.py`` against a bare PyTriton
   identity model (``@batch``, no NVCF adapter), both running at once, the
   same interleaved client, 4 FP32 values. Bound: at least 0.9.
3. Start to ready: seconds from starting tritonserver on the generated
   repository with ``--disable-auto-complete-config`` until the model answers
   ready; the median of 5 starts. Bound: at most 0.5 s.

Server logs go to ``build/bench-logs/templates-*.log``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import tritonclient.http as httpclient
from figures import Figure, interleaved_medians, interleaved_times, report
from servers import (
    ServerFailedError,
    fresh_servers,
    identity_call,
    log_path,
    model_ready,
    one_line_failures,
    pytriton_process,
)

from nvcf_helpers import names
from nvcf_helpers.scaffold import generate
from nvcf_helpers.tritonserver import TritonServer

#: Request sizes (FP32 values): a tiny one, where per-request overhead shows most, and 1,024.
PAYLOADS = (4, 1024)
#: Requests to each side per comparison.
REQUESTS = 6000
#: Fresh servers the triton-model comparison is spread over (see servers.fresh_servers).
SERVER_STARTS = 3
#: Starts of tritonserver whose median is the start-to-ready figure.
STARTS = 5

MINIMAL_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", values)]))
        return responses
"""

BARE_PYTRITON = """
import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


@batch
def infer(INPUT0):
    return {"OUTPUT0": INPUT0}


with Triton(config=TritonConfig(http_header_forward_pattern=FORWARD_PATTERN)) as triton:
    triton.bind(
        model_name="bare",
        infer_func=infer,
        inputs=[Tensor(name="INPUT0", dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="OUTPUT0", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(
            max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=100)
        ),
        strict=True,
    )
    triton.serve()
"""


def with_minimal_model(repository: Path, scratch: Path) -> Path:
    """A copy of the generated repository plus ``minimal``, with the generated config."""
    both = scratch / "repository"
    shutil.copytree(repository, both)
    minimal = both / "minimal"
    (minimal / "1").mkdir(parents=True)
    config = (both / "my_model" / "config.pbtxt").read_text()
    (minimal / "config.pbtxt").write_text(config.replace('name: "my_model"', 'name: "minimal"'))
    (minimal / "1" / "model.py").write_text(MINIMAL_MODEL)
    return both


def bench_triton_model(repository: Path, scratch: Path) -> Iterator[Figure]:
    both = with_minimal_model(repository, scratch)
    times: dict[int, dict[str, list[float]]] = {
        values: {"generated": [], "minimal": []} for values in PAYLOADS
    }
    for client in fresh_servers(both, "templates-triton-model", SERVER_STARTS):
        for values, sides in times.items():
            measured = interleaved_times(
                {
                    "generated": identity_call(client, "my_model", values, scratch),
                    "minimal": identity_call(client, "minimal", values, scratch),
                },
                REQUESTS // SERVER_STARTS,
            )
            for side, samples in measured.items():
                sides[side] += samples
    for values, sides in times.items():
        ratio = statistics.median(sides["minimal"]) / statistics.median(sides["generated"])
        yield Figure(f"generated triton-model vs hand-written, {values:,} FP32", ratio, 0.95)


def bench_pytriton(scratch: Path) -> Figure:
    project = generate("pytriton-container", scratch / "generated", no_input=True)
    bare = scratch / "bare.py"
    bare.write_text(BARE_PYTRITON.replace("FORWARD_PATTERN", repr(names.HEADER_FORWARD_PATTERN)))
    with ExitStack() as stack:
        urls = [
            stack.enter_context(pytriton_process(script, model, f"templates-pytriton-{model}"))
            for script, model in ((project / "run.py", "my_model"), (bare, "bare"))
        ]
        clients = [
            stack.enter_context(closing(httpclient.InferenceServerClient(url))) for url in urls
        ]
        medians = interleaved_medians(
            {
                "generated": identity_call(clients[0], "my_model", 4, scratch),
                "bare": identity_call(clients[1], "bare", 4, scratch),
            },
            REQUESTS // 2,
        )
    ratio = medians["bare"] / medians["generated"]
    return Figure("generated pytriton-container vs bare PyTriton, 4 FP32", ratio, 0.9)


def bench_start_to_ready(repository: Path) -> Figure:
    """Median seconds from start() to the model answering ready, polled every 5 ms."""
    times = []
    log = log_path("templates-start-to-ready")
    with log.open("w") as stream:
        for _ in range(STARTS):
            server = TritonServer(repository, disable_auto_complete_config=True, stdout=stream)
            url = server.url.removeprefix("http://")
            start = time.perf_counter()
            server.start()
            try:
                while not model_ready(url, "my_model", timeout=0.5):
                    if server.returncode is not None or time.perf_counter() - start > 120:
                        raise ServerFailedError("tritonserver", log)
                    time.sleep(0.005)
                times.append(time.perf_counter() - start)
            finally:
                server.stop()
    return Figure(
        "start to ready, generated triton-model, no auto-complete",
        statistics.median(times),
        0.5,
        unit="s",
        at_least=False,
    )


def figures(scratch: Path) -> Iterator[Figure]:
    for name in ("triton-model", "pytriton"):
        (scratch / name).mkdir()
    project = generate("triton-model", scratch / "triton-model" / "generated", no_input=True)
    repository = project / "model_repository"
    yield from bench_triton_model(repository, scratch / "triton-model")
    yield bench_pytriton(scratch / "pytriton")
    yield bench_start_to_ready(repository)


def main() -> int:
    with (
        one_line_failures(),
        tempfile.TemporaryDirectory(prefix="nvcf-bench-templates-") as scratch,
    ):
        return report(figures(Path(scratch)))


if __name__ == "__main__":
    sys.exit(main())
