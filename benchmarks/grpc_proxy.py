"""The local NVCF's gRPC proxy against calling Triton's gRPC port directly.

    python benchmarks/grpc_proxy.py [--calls 2000]

``nvcf-helpers serve`` of the test repository runs as a gRPC function of an
``nvcf-helpers local``; one tritonclient.grpc client calls Triton directly,
another through the local NVCF's gRPC endpoint (metadata ``function-id``),
interleaved one by one. The figure is what the proxy adds at p50 (the
difference of the medians). Bound: at most 1 ms. Output goes to
``build/bench-logs/grpc-*.log``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from figures import Figure, interleaved_medians, report
from servers import function_definition, log_path, one_line_failures

REPOSITORY = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "triton_repository"
BOUND_MS = 1.0


def _caller(port: int, headers: dict[str, str]) -> Callable[[], None]:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    tensor = grpcclient.InferInput("INPUT0", [4], "FP32")
    tensor.set_data_from_numpy(np.arange(4, dtype=np.float32))

    def call() -> None:
        client.infer("nvcf_echo", [tensor], headers=headers)

    return call


def measure(calls: int) -> list[Figure]:
    from nvcf_helpers import names
    from nvcf_helpers.local import LocalNvcf
    from nvcf_helpers.testing import free_port

    grpc_port, http_port = free_port(), free_port()
    spec = function_definition(
        "grpc-benchmark",
        grpc_port,
        "nvcr.io/local/grpc-benchmark:1",
        inference_url="/grpc",
        health_protocol="gRPC",
        health_uri="/",
    )
    command = [sys.executable, "-m", "nvcf_helpers", "serve", str(REPOSITORY)]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    with LocalNvcf(spec, command, output=log_path("grpc-nvcf"), startup_timeout=180) as nvcf:
        assert nvcf.info is not None
        proxied = _caller(int(nvcf.info["grpcPort"]), {names.DIRECT_FUNCTION_ID: nvcf.function_id})
        direct = _caller(grpc_port, {})
        for _ in range(200):  # warm both paths: channels, the Python backend stub
            direct()
            proxied()
        medians = interleaved_medians({"direct": direct, "proxy": proxied}, calls)
    added_ms = (medians["proxy"] - medians["direct"]) * 1000
    print(
        f"# p50 direct {medians['direct'] * 1000:.2f} ms, through the local NVCF "
        f"{medians['proxy'] * 1000:.2f} ms",
        flush=True,
    )
    return [Figure("local gRPC proxy: added latency at p50", added_ms, BOUND_MS, "ms", False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls to each side")
    args = parser.parse_args()
    with one_line_failures():
        return report(measure(args.calls))


if __name__ == "__main__":
    sys.exit(main())
