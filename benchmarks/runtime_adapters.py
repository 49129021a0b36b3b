"""What the Triton adapters cost, as ratios measured in one run.

1. tritonserver (the wheel's, via nvcf_helpers.tritonserver): requests per
   second of an identity model written with nvcf_helpers.triton_backend
   (context, scalar default, execute_requests, NVCF logging) against a bare
   pb_utils identity model with the same config, on the same server.
2. PyTriton: requests per second of an identity ``@batch`` model wrapped by
   nvcf_helpers.pytriton.with_request_context against the bare one, on the
   same server.
3. Start to ready of TritonServer for the helpers model, with and without
   ``--disable-auto-complete-config``.

Sequential tritonclient HTTP requests carrying NVCF headers, alternating
rounds between the two models so drift affects both. Run:

    .venv/bin/python benchmarks/runtime_adapters.py [--requests 1500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

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
        configure_logging(logging.WARNING)

    def execute(self, requests):
        return execute_requests(requests, self.handle)

    def handle(self, request, ctx):
        values = input_array(request, "INPUT0")
        scale = scalar_input(request, "SCALE", float, default=1.0)
        log.info("request %s", ctx.request_id)
        return {"OUTPUT0": values if scale == 1.0 else values * scale}
"""

HEADERS = {
    "NVCF-REQID": "0c0ffee0-0000-4000-8000-000000000000",
    "NVCF-FUNCTION-ID": "f",
    "NVCF-FUNCTION-VERSION-ID": "v",
    "NVCF-ASSET-DIR": "/var/inf/inputAssets/x",
    "NVCF-LARGE-OUTPUT-DIR": "/var/inf/response/x",
    "NVCF-MAX-RESPONSE-SIZE-BYTES": "5000000",
}


def _rate(call: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def _compare(
    calls: dict[str, Callable[[], Any]], requests: int, rounds: int = 5
) -> dict[str, float]:
    """Median requests/s of each call, alternating rounds after a warm-up."""
    for call in calls.values():
        _rate(call, 50)
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            rates[name].append(_rate(call, requests // rounds))
    return {name: statistics.median(values) for name, values in rates.items()}


def _client_call(client: Any, model: str, shape: tuple[int, ...]) -> Callable[[], Any]:
    import tritonclient.http as httpclient

    tensor = httpclient.InferInput("INPUT0", list(shape), "FP32")
    tensor.set_data_from_numpy(np.ones(shape, dtype=np.float32))
    return lambda: client.infer(model, [tensor], headers=HEADERS)


@contextmanager
def _repository() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="nvcf-bench-"))
    try:
        for name, source in (("bare", BARE_MODEL), ("helpers", HELPERS_MODEL)):
            (root / name / "1").mkdir(parents=True)
            (root / name / "config.pbtxt").write_text(CONFIG.format(name=name))
            (root / name / "1" / "model.py").write_text(source)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_tritonserver(requests: int) -> None:
    import tritonclient.http as httpclient

    from nvcf_helpers.tritonserver import TritonServer

    with _repository() as repo, TritonServer(repo) as server:
        server.wait_ready(timeout=120)
        client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
        rates = _compare(
            {
                "bare": _client_call(client, "bare", (4,)),
                "helpers": _client_call(client, "helpers", (4,)),
            },
            requests,
        )
        client.close()
    print(
        f"tritonserver  bare {rates['bare']:7.0f} req/s  triton_backend {rates['helpers']:7.0f}"
        f" req/s  ratio {rates['helpers'] / rates['bare']:.2f}"
    )


def bench_startup() -> None:
    from nvcf_helpers.tritonserver import TritonServer

    for disable in (False, True):
        times = []
        with _repository() as repo:
            for _ in range(3):
                start = time.perf_counter()
                with TritonServer(repo, disable_auto_complete_config=disable) as server:
                    server.wait_ready(timeout=120)
                    times.append(time.perf_counter() - start)
        label = "--disable-auto-complete-config" if disable else "auto-complete (default)"
        print(f"start to ready, 2 models, {label:31s} {statistics.median(times):.2f} s")


def bench_pytriton(requests: int) -> None:
    import tritonclient.http as httpclient
    from pytriton.decorators import batch
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton

    from nvcf_helpers.pytriton import triton_config, with_request_context
    from nvcf_helpers.testing import free_port

    @batch
    def bare(INPUT0: Any) -> dict[str, Any]:
        return {"OUTPUT0": INPUT0}

    @with_request_context
    @batch
    def wrapped(INPUT0: Any) -> dict[str, Any]:
        return {"OUTPUT0": INPUT0}

    home = tempfile.mkdtemp(prefix="nvcf-bench-")
    os.environ["PYTRITON_HOME"] = home
    port = free_port()
    config = triton_config(http_port=port, grpc_port=free_port(), metrics_port=free_port())
    try:
        with Triton(config=config) as triton:
            for name, func in (("bare", bare), ("wrapped", wrapped)):
                triton.bind(
                    name,
                    func,
                    inputs=[Tensor(name="INPUT0", dtype=np.float32, shape=(-1,))],
                    outputs=[Tensor(name="OUTPUT0", dtype=np.float32, shape=(-1,))],
                    config=ModelConfig(max_batch_size=8),
                )
            triton.run()
            client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
            rates = _compare(
                {
                    "bare": _client_call(client, "bare", (1, 4)),
                    "wrapped": _client_call(client, "wrapped", (1, 4)),
                },
                requests,
            )
            client.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(
        f"PyTriton      bare {rates['bare']:7.0f} req/s  with_request_context "
        f"{rates['wrapped']:7.0f} req/s  ratio {rates['wrapped'] / rates['bare']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per model")
    args = parser.parse_args()
    bench_startup()
    bench_tritonserver(args.requests)
    bench_pytriton(args.requests)


if __name__ == "__main__":
    main()
