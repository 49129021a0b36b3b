"""What the Triton adapters cost, as ratios measured in one run.

    python benchmarks/runtime_adapters.py     (or: make bench)

1. ``nvcf_helpers.triton_backend`` on tritonserver: an identity model
   written with it (``execute_requests``, ``input_array``, an optional
   ``SCALE`` read with ``scalar_input``) against a bare ``pb_utils``
   identity model with the same config, on the same server. The context is
   not read and nothing is logged, so neither is paid for. Bound: at least 0.95.
2. The same model reading its request context (``ctx.request_id``), which
   parses every forwarded header: what a model that uses its context pays,
   about 15% of a 4-value identity request here. Bound: at least 0.8.
3. ``nvcf_helpers.pytriton.with_request_context`` around an ``@batch``
   identity against the bare ``@batch`` one, both bound to one PyTriton
   server. Bound: at least 0.9.

Each figure is the bare model's median latency over the adapter's, for one
tritonclient HTTP client sending 4 FP32 values and NVCF's headers, one
request at a time, alternating A B B A ... (for tritonserver, on each of 3
fresh servers). Server logs go to ``build/bench-logs/runtime-adapters-*.log``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import tritonclient.http as httpclient
from figures import Figure, interleaved_medians, interleaved_times, report
from servers import fresh_servers, identity_call, one_line_failures, pytriton_process

REQUESTS = 4500
VALUES = 4
#: Fresh tritonservers the comparisons are spread over (see servers.fresh_servers).
SERVER_STARTS = 3

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [
  {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }},
  {{ name: "SCALE" data_type: TYPE_FP32 dims: [ 1 ] optional: true }}
]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

BARE_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", values)])
            )
        return responses
"""

HELPERS_MODEL = """
import logging

from nvcf_helpers import configure_logging
from nvcf_helpers.triton_backend import execute_requests, input_array, scalar_input

log = logging.getLogger("helpers")


class TritonPythonModel:
    def initialize(self, args):
        configure_logging(logging.INFO)

    def execute(self, requests):
        return execute_requests(requests, self.handle)

    def handle(self, request, ctx):
        values = input_array(request, "INPUT0")
        scale = scalar_input(request, "SCALE", float, default=1.0)
        {read_context}
        return {{"OUTPUT0": values if scale == 1.0 else values * scale}}
"""

PYTRITON_PAIR = """
import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton

from nvcf_helpers.pytriton import triton_config, with_request_context


@batch
def bare(INPUT0):
    return {"OUTPUT0": INPUT0}


@with_request_context
@batch
def wrapped(INPUT0):
    return {"OUTPUT0": INPUT0}


with Triton(config=triton_config()) as triton:
    for name, infer in (("bare", bare), ("wrapped", wrapped)):
        triton.bind(
            name,
            infer,
            inputs=[Tensor(name="INPUT0", dtype=np.float32, shape=(-1,))],
            outputs=[Tensor(name="OUTPUT0", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=8),
        )
    triton.serve()
"""


def write_repository(root: Path) -> Path:
    models = {
        "bare": BARE_MODEL,
        "helpers": HELPERS_MODEL.format(read_context="pass  # the context is not read"),
        "helpers_context": HELPERS_MODEL.format(read_context="assert ctx.request_id"),
    }
    for name, source in models.items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(CONFIG.format(name=name))
        (root / name / "1" / "model.py").write_text(source)
    return root


def bench_triton_backend(scratch: Path) -> Iterator[Figure]:
    repository = write_repository(scratch / "repository")
    adapters = {
        "helpers": ("triton_backend model vs bare pb_utils, 4 FP32", 0.95),
        "helpers_context": ("triton_backend model reading its context vs bare", 0.8),
    }
    times: dict[str, dict[str, list[float]]] = {m: {"adapter": [], "bare": []} for m in adapters}
    for client in fresh_servers(repository, "runtime-adapters-tritonserver", SERVER_STARTS):
        bare = identity_call(client, "bare", VALUES, scratch, batched=False)
        for model, sides in times.items():
            adapter = identity_call(client, model, VALUES, scratch, batched=False)
            measured = interleaved_times(
                {"adapter": adapter, "bare": bare}, REQUESTS // SERVER_STARTS
            )
            for side, samples in measured.items():
                sides[side] += samples
    for model, (name, bound) in adapters.items():
        sides = times[model]
        ratio = statistics.median(sides["bare"]) / statistics.median(sides["adapter"])
        yield Figure(name, ratio, bound)


def bench_pytriton(scratch: Path) -> Figure:
    script = scratch / "pair.py"
    script.write_text(PYTRITON_PAIR)
    with (
        pytriton_process(script, "wrapped", "runtime-adapters-pytriton") as url,
        closing(httpclient.InferenceServerClient(url)) as client,
    ):
        medians = interleaved_medians(
            {
                "wrapped": identity_call(client, "wrapped", VALUES, scratch),
                "bare": identity_call(client, "bare", VALUES, scratch),
            },
            REQUESTS // 2,
        )
    ratio = medians["bare"] / medians["wrapped"]
    return Figure("PyTriton with_request_context vs bare @batch, 4 FP32", ratio, 0.9)


def figures(scratch: Path) -> Iterator[Figure]:
    yield from bench_triton_backend(scratch)
    yield bench_pytriton(scratch)


def main() -> int:
    with one_line_failures(), tempfile.TemporaryDirectory(prefix="nvcf-bench-adapters-") as scratch:
        return report(figures(Path(scratch)))


if __name__ == "__main__":
    sys.exit(main())
