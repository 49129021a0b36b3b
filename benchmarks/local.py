"""The local NVCF gateway against calling the container directly: the latency it adds.

    python benchmarks/local.py [--calls 3000]      (or: make bench)

One contract server (tests/local/contract_server.py) runs as the child of
``nvcf-helpers local``; the same server is called two ways in this one run,
one call at a time, alternating A B B A ...: through the gateway, and
straight to the container with the NVCF headers a worker would send (so the
container does the same work), each over its own keep-alive connection.
The figure is the difference of the median latencies. Bound: at most 3 ms.

The local NVCF's and the container's output go to
``build/bench-logs/local-nvcf.log``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from figures import Figure, interleaved_medians, report
from servers import ROOT, log_path, one_line_failures

from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import fake_request, free_port

CONTRACT_SERVER = ROOT / "tests" / "local" / "contract_server.py"
BODY = json.dumps({"text": "benchmark"}).encode()
ADDED_LATENCY_BOUND_MS = 3.0


class Caller:
    """One keep-alive HTTP connection that POSTs the same body to one path."""

    def __init__(self, port: int, path: str, headers: Mapping[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.path = path
        self.headers = {"Content-Type": "application/json", **headers}

    def __call__(self) -> None:
        self.connection.request("POST", self.path, body=BODY, headers=self.headers)
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{self.path} answered {response.status}")

    def close(self) -> None:
        self.connection.close()


def added_latency(calls: int) -> Figure:
    """Median gateway latency minus median direct latency, in milliseconds."""
    port = free_port()
    spec = {
        "name": "benchmark",
        "inferenceUrl": "/infer",
        "inferencePort": port,
        "health": {"uri": "/health", "port": port},
        "containerImage": "local/contract-server:latest",
    }
    command = [sys.executable, str(CONTRACT_SERVER), str(port)]
    with (
        tempfile.TemporaryDirectory() as scratch,
        LocalNvcf(spec, command, output=log_path("local-nvcf")) as nvcf,
    ):
        # What a worker sends, so the container does the same work on both paths.
        direct_headers = fake_request(Path(scratch), function_id=nvcf.function_id).to_headers()
        gateway_port = int(nvcf.base_url.rsplit(":", 1)[1])
        gateway_path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
        direct = Caller(port, "/infer", direct_headers)
        gateway = Caller(gateway_port, gateway_path, {})
        try:
            medians = interleaved_medians({"direct": direct, "gateway": gateway}, calls, 50)
        finally:
            direct.close()
            gateway.close()
    added_ms = (medians["gateway"] - medians["direct"]) * 1000
    return Figure(
        "local gateway: added latency (median)",
        added_ms,
        ADDED_LATENCY_BOUND_MS,
        unit="ms",
        at_least=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls to each path")
    args = parser.parse_args()
    with one_line_failures():
        return report([added_latency(args.calls)])


if __name__ == "__main__":
    sys.exit(main())
