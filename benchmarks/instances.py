"""The local NVCF with many instances: deploy time, throughput by instances, RSS per instance.

    python benchmarks/instances.py [--calls 2000] [--rounds 9] [--cycles 3]

An empty ``nvcf-helpers local`` runs local.py's standard-library echo server
(``local.py --container {port}``) as every instance, each on its own port.
All in one run, in this order (the first on a fresh process, see below):

- memory: the local NVCF's own RSS (not the containers') with one instance
  of a function deployed, then with the deployment updated to 4 instances,
  each time after ``--calls`` invocations, so that every instance has served;
  ``(rss4 - rss1) / 3``. Measured first: a process that has run more
  instances before keeps that memory, which would hide the cost. Bound: at
  most 5 MB, a sanity bound (a hundred instances within half a GB).
- deploy time: seconds from the ``deploy create`` request
  (``POST /v2/nvcf/deployments/...``) until the version is ACTIVE, for 1 and
  for 4 instances, ``--cycles`` deploy/undeploy cycles each, interleaved
  (1 4 4 1 1 4); the medians. The local NVCF checks a starting container's
  health every 0.5 s, as NVCF's worker does, so these move in such steps.
  Bound: at most 10 s, a sanity bound only (NVCF itself takes minutes).
- throughput: 16 concurrent keep-alive callers through the gateway
  (``/v2/nvcf/pexec/functions/{id}``) to three functions deployed side by
  side with 1, 2 and 4 instances; rounds of ``--calls`` requests that
  alternate the three, the median round of each. Each instance has
  ``maxRequestConcurrency`` 16, the number of callers, so even one instance
  gives every caller a slot at once: no request waits in the gateway's queue,
  and only the instances and the machine set the pace.

The issue asks that throughput grow with instances while cores allow. On
these 2-core machines they do not allow it: with one instance the callers
(this process), the gateway and the container already keep both cores busy,
so more instances add processes, not CPU. The rates are printed for
information, with no bound (an absolute rate differs between machines of the
same kind); the ratios 2/1 and 4/1 are held to a floor that means something
here: at least 0.8 (local.py's floor for round-based throughput), as
spreading the requests over more instances must not cost the gateway
throughput. On a machine with cores to spare the ratios show the growth.

The servers' output goes to ``build/bench-logs/instances-nvcf.log``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from figures import Figure, report
from local import CALLERS, concurrent_calls, rss_mb
from servers import LOG_DIR, function_definition, log_path, one_line_failures

from nvcf_helpers.client import NvcfClient

IMAGE = "local/echo:latest"
#: The container: local.py's echo server, on each instance's own port.
CONTAINER = [sys.executable, str(Path(__file__).resolve().with_name("local.py")), "--container"]
INSTANCES = (1, 2, 4)
DEPLOY_SANITY_BOUND_S = 10.0
RSS_PER_INSTANCE_BOUND_MB = 5.0
RATIO_BOUND = 0.8
#: Seconds between status polls while a deployment starts (the deploy time's resolution).
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Rate(Figure):
    """Requests per second, printed for information: no bound holds across machines.

    figures.py has no such unit; the line keeps its columns, with ``info``
    where a bound's verdict would be. It never fails the run.
    """

    bound: float = 0.0
    unit: str = "req/s"

    @property
    def met(self) -> bool:
        return True

    def line(self) -> str:
        value = f"{self.value:.0f} req/s"  # two columns wider than the others' values
        return f"{self.name:<56} {value:>10}  {'(no bound)':<12} info"


def definition(name: str) -> dict[str, Any]:
    """A function definition for the echo container (its ports replaced per instance)."""
    return function_definition(name, 8000, IMAGE)


def specification(instances: int) -> list[dict[str, Any]]:
    """``instances`` instances, each with a slot for every caller."""
    return [
        {
            "gpu": "local",
            "instanceType": "local",
            "minInstances": instances,
            "maxInstances": instances,
            "maxRequestConcurrency": CALLERS,
        }
    ]


def until_active(
    client: NvcfClient, version: tuple[str, str], instances: int, timeout: float = 120.0
) -> None:
    """Poll the deployment until it is ACTIVE with ``instances`` instances all taking work."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get_deployment(*version)
        running = body.get("instances", [])
        if (
            body.get("functionStatus") == "ACTIVE"
            and len(running) == instances
            and all(instance.get("takingWork") for instance in running)
        ):
            return
        if body.get("functionStatus") in ("ERROR", "DEGRADED") or time.monotonic() > deadline:
            raise SystemExit(
                f"GET /v2/nvcf/deployments/functions/{version[0]}/versions/{version[1]} "
                f"answered {json.dumps(body)}; the servers' output is in {LOG_DIR}"
            )
        time.sleep(POLL_SECONDS)


def register(client: NvcfClient, name: str) -> tuple[str, str]:
    """A new function; its (function id, version id)."""
    created = client.create_function(definition(name))
    return str(created["id"]), str(created["versionId"])


def rss_figure(
    client: NvcfClient, pid: int, gateway: int, version: tuple[str, str], calls: int
) -> Figure:
    path = f"/v2/nvcf/pexec/functions/{version[0]}"
    client.create_deployment(*version, specification(1))
    until_active(client, version, 1)
    concurrent_calls(gateway, path, calls)
    one = rss_mb(pid)
    client.update_deployment(*version, specification(4))
    until_active(client, version, 4)
    concurrent_calls(gateway, path, calls)
    four = rss_mb(pid)
    return Figure(
        "local NVCF RSS per instance, (4 instances - 1) / 3",
        (four - one) / 3,
        RSS_PER_INSTANCE_BOUND_MB,
        unit="MB",
        at_least=False,
    )


def deploy_figures(client: NvcfClient, version: tuple[str, str], cycles: int) -> list[Figure]:
    """Median seconds from deploy create to ACTIVE, 1 and 4 instances, cycles interleaved."""
    seconds: dict[int, list[float]] = {1: [], 4: []}
    for index in range(cycles):
        for instances in (1, 4) if index % 2 == 0 else (4, 1):
            began = time.perf_counter()
            client.create_deployment(*version, specification(instances))
            until_active(client, version, instances)
            seconds[instances].append(time.perf_counter() - began)
            client.delete_deployment(*version)
    return [
        # A sanity bound: the issue sets none, and NVCF's own deployments take minutes.
        Figure(
            f"deploy create to ACTIVE, {count} instance{'s' * (count > 1)} (median of {cycles})",
            statistics.median(values),
            DEPLOY_SANITY_BOUND_S,
            unit="s",
            at_least=False,
        )
        for count, values in seconds.items()
    ]


def throughput_figures(
    gateway: int, functions: dict[int, str], calls: int, rounds: int
) -> list[Figure]:
    """Median requests/s through the gateway of each deployment, rounds alternating."""
    paths = {count: f"/v2/nvcf/pexec/functions/{fid}" for count, fid in functions.items()}
    for path in paths.values():
        concurrent_calls(gateway, path, calls)  # warm-up
    rates: dict[int, list[float]] = {count: [] for count in paths}
    order = list(paths)
    for index in range(rounds):
        for count in order if index % 2 == 0 else order[::-1]:
            rates[count].append(concurrent_calls(gateway, paths[count], calls))
    median = {count: statistics.median(values) for count, values in rates.items()}
    cores = os.cpu_count()
    figures: list[Figure] = [
        Rate(f"gateway throughput, {count} instance{'s' * (count > 1)}, {CALLERS} callers", rate)
        for count, rate in median.items()
    ]
    figures += [
        Figure(
            f"gateway throughput, {count} instances / 1 ({cores} cores)",
            median[count] / median[1],
            RATIO_BOUND,
        )
        for count in order
        if count > 1
    ]
    return figures


def measure(calls: int, rounds: int, cycles: int) -> Iterator[Figure]:
    from nvcf_helpers.local import LocalNvcf

    with LocalNvcf(
        None,
        image_commands={IMAGE: [*CONTAINER, "{port}"]},
        api_key=None,
        output=log_path("instances-nvcf"),
    ) as nvcf:
        assert nvcf.process is not None
        client = nvcf.client()
        gateway = int(nvcf.base_url.rsplit(":", 1)[1])
        four = register(client, "bench-four")
        yield rss_figure(client, nvcf.process.pid, gateway, four, calls)
        yield from deploy_figures(client, register(client, "bench-cycled"), cycles)
        functions = {4: four[0]}
        for count in (1, 2):
            version = register(client, f"bench-{count}")
            client.create_deployment(*version, specification(count))
            until_active(client, version, count)
            functions[count] = version[0]
        yield from throughput_figures(
            gateway, {count: functions[count] for count in INSTANCES}, calls, rounds
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="requests per throughput round")
    parser.add_argument("--rounds", type=int, default=9, help="throughput rounds of each side")
    parser.add_argument("--cycles", type=int, default=3, help="deploy/undeploy cycles of each")
    args = parser.parse_args()
    with one_line_failures():
        return report(measure(args.calls, args.rounds, args.cycles))


if __name__ == "__main__":
    sys.exit(main())
