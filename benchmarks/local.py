"""Benchmark of the local NVCF gateway against calling the container directly.

    python benchmarks/local.py [--calls 400] [--callers 16]

One contract server (tests/local/contract_server.py) runs as the child of
``nvcf-helpers local``; the same server is called two ways in this one run:

1. Added latency: the median of sequential calls through the gateway minus
   the median of the same calls straight to the container (both over a
   keep-alive connection, the direct calls carrying the NVCF headers a worker
   would send, so the container does the same work). Bound: at most 3 ms.
   The cost of the per-request directories on this filesystem is printed
   beside it, measured on its own.
2. Throughput with N concurrent callers (one keep-alive connection each),
   through the gateway (``--max-concurrency`` = N) against straight to the
   container, as a ratio of requests per second.

Direct and gateway rounds alternate, so drift on a shared machine hits both.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import fake_request, free_port

ROOT = Path(__file__).resolve().parents[1]
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


def sequential(call: Callable[[], None], count: int) -> list[float]:
    """Seconds each of ``count`` back-to-back calls took."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def directory_cost(count: int) -> tuple[float, float]:
    """Median seconds to create one request's directories (2 mkdir, chmod) and to remove them."""
    create, remove = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            asset_dir = Path(scratch) / f"a{index}"
            output_dir = Path(scratch) / f"o{index}"
            start = time.perf_counter()
            asset_dir.mkdir(mode=0o755)
            output_dir.mkdir()
            os.chmod(output_dir, 0o777)
            middle = time.perf_counter()
            os.rmdir(asset_dir)
            os.rmdir(output_dir)
            create.append(middle - start)
            remove.append(time.perf_counter() - middle)
    return statistics.median(create), statistics.median(remove)


def throughput(make_caller: Callable[[], Caller], callers: int, calls: int) -> float:
    """Requests per second with ``callers`` threads sharing ``calls`` calls."""
    workers = [make_caller() for _ in range(callers)]
    per_worker = calls // callers
    barrier = threading.Barrier(callers + 1)
    errors: list[BaseException] = []

    def work(caller: Caller) -> None:
        barrier.wait()
        try:
            for _ in range(per_worker):
                caller()
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.close()
    if errors:
        raise errors[0]
    return per_worker * callers / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per measurement")
    parser.add_argument("--callers", type=int, default=16, help="concurrent callers")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()

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
        LocalNvcf(
            spec, command, max_concurrency=args.callers, output=Path(scratch) / "log"
        ) as nvcf,
    ):
        # What a worker sends, so the container does the same work on both paths.
        direct_headers = fake_request(Path(scratch), function_id=nvcf.function_id).to_headers()
        gateway_port = int(nvcf.base_url.rsplit(":", 1)[1])
        gateway_path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"

        def direct() -> Caller:
            return Caller(port, "/infer", direct_headers)

        def gateway() -> Caller:
            return Caller(gateway_port, gateway_path, {})

        direct_caller, gateway_caller = direct(), gateway()
        sequential(direct_caller, 50)  # warm up both paths
        sequential(gateway_caller, 50)
        direct_times: list[float] = []
        gateway_times: list[float] = []
        direct_rates: list[float] = []
        gateway_rates: list[float] = []
        for _ in range(args.rounds):
            direct_times += sequential(direct_caller, args.calls // args.rounds)
            gateway_times += sequential(gateway_caller, args.calls // args.rounds)
        direct_caller.close()
        gateway_caller.close()
        for _ in range(args.rounds):
            direct_rates.append(throughput(direct, args.callers, args.calls))
            gateway_rates.append(throughput(gateway, args.callers, args.calls))

    direct_ms = statistics.median(direct_times) * 1000
    gateway_ms = statistics.median(gateway_times) * 1000
    added = gateway_ms - direct_ms
    direct_rate = max(direct_rates)
    gateway_rate = max(gateway_rates)
    print(f"sequential, {len(direct_times)} calls each path (median):")
    print(f"  direct to the container   {direct_ms:7.3f} ms")
    print(f"  through nvcf-helpers local {gateway_ms:6.3f} ms")
    verdict = "within" if added <= ADDED_LATENCY_BOUND_MS else "OVER"
    bound = f"{verdict} the {ADDED_LATENCY_BOUND_MS:g} ms bound"
    print(f"  added latency             {added:7.3f} ms ({bound})")
    create, remove = (seconds * 1000 for seconds in directory_cost(args.calls))
    print(f"  of which creating the request directories {create:.3f} ms (removing them,")
    print(f"  {remove:.3f} ms, happens after the answer); the rest is the second HTTP hop")
    print(f"{args.callers} concurrent callers, {args.calls} calls, best of {args.rounds} rounds:")
    print(f"  direct to the container   {direct_rate:7.0f} req/s")
    print(f"  through nvcf-helpers local {gateway_rate:6.0f} req/s")
    print(f"  throughput ratio (gateway / direct) {gateway_rate / direct_rate:.2f}")
    return 0 if added <= ADDED_LATENCY_BOUND_MS else 1


if __name__ == "__main__":
    sys.exit(main())
