"""The local NVCF's added latency with its dashboard open, against with it closed.

    python benchmarks/observability.py [--calls 2000] [--block 100] [--verbose]

The echo container of ``benchmarks/local.py`` runs behind ``nvcf-helpers
local``. Sequential calls (a new connection each) go to the container
directly and through the gateway, interleaved one by one, in blocks; every
other pair of blocks (A B B A ...) a background thread plays an open
dashboard: each second it fetches ``/metrics``, ``/_local/state``,
``/_local/series`` and ``/_local/logs``. The figure: what the gateway adds
over direct (median against median) while observed, over what it adds while
not. Bound: at most 1.10x.

The servers' output goes to ``build/bench-logs/observability-*.log``.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from figures import Figure, interleaved_times, report
from local import new_connection_call
from servers import function_definition, log_path, one_line_failures

BOUND = 1.10
#: What an open dashboard (and a Prometheus scrape) fetches, once a second each.
OBSERVED_PATHS = ("/metrics", "/_local/state", "/_local/series?minutes=15", "/_local/logs")
LOCAL_BENCHMARK = Path(__file__).with_name("local.py")


class Dashboard:
    """A thread that fetches :data:`OBSERVED_PATHS` every second while it is open."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.open = threading.Event()
        self.fetches = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Dashboard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.open.set()
        self._thread.join()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.open.wait()
            if self._stop.is_set():
                return
            for path in OBSERVED_PATHS:
                self._fetch(path)
            next_at = max(next_at + 1.0, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def _fetch(self, path: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                self.failures.append(f"{path} answered {response.status}")
            self.fetches += 1
        finally:
            connection.close()


def added_latency(
    direct: Callable[[], None],
    gateway: Callable[[], None],
    dashboard: Dashboard,
    calls: int,
    block: int,
) -> dict[str, float]:
    """Median gateway minus median direct, with the dashboard closed and open, in seconds."""
    times: dict[str, dict[str, list[float]]] = {
        condition: {"direct": [], "gateway": []} for condition in ("closed", "open")
    }
    sides = {"direct": direct, "gateway": gateway}
    for side in sides.values():  # warm-up
        for _ in range(200):
            side()
    for index in range(2 * (calls // block)):
        condition = "closed" if index % 4 in (0, 3) else "open"
        if condition == "open":
            dashboard.open.set()
        else:
            dashboard.open.clear()
        for side, values in interleaved_times(sides, block, warmup=0).items():
            times[condition][side].extend(values)
    dashboard.open.clear()
    return {
        condition: statistics.median(sides_times["gateway"])
        - statistics.median(sides_times["direct"])
        for condition, sides_times in times.items()
    }


def measure(calls: int, block: int, verbose: bool = False) -> list[Figure]:
    from nvcf_helpers.local import LocalNvcf
    from nvcf_helpers.testing import free_port

    container = free_port()
    spec = function_definition("benchmark", container, "local/echo:latest")
    command = [sys.executable, str(LOCAL_BENCHMARK), "--container", str(container)]
    with LocalNvcf(spec, command, output=log_path("observability-local-nvcf")) as nvcf:
        gateway = int(nvcf.base_url.rsplit(":", 1)[1])
        path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
        with Dashboard(gateway) as dashboard:
            added = added_latency(
                new_connection_call(container, "/infer"),
                new_connection_call(gateway, path),
                dashboard,
                calls,
                block,
            )
        if dashboard.failures or not dashboard.fetches:
            raise SystemExit(f"the dashboard's fetches failed: {dashboard.failures[:3]}")
    if verbose:
        print(
            f"added latency: {added['closed'] * 1000:.3f} ms closed, "
            f"{added['open'] * 1000:.3f} ms open; {dashboard.fetches} dashboard fetches",
            flush=True,
        )
    return [
        Figure(
            "local gateway: added latency, dashboard open / closed",
            added["open"] / added["closed"],
            BOUND,
            at_least=False,
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls to each side, each way")
    parser.add_argument("--block", type=int, default=100, help="calls to each side per block")
    parser.add_argument("--verbose", action="store_true", help="print the two latencies too")
    args = parser.parse_args()
    with one_line_failures():
        return report(measure(args.calls, args.block, args.verbose))


if __name__ == "__main__":
    sys.exit(main())
