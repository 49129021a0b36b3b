"""NVCF's health check of a function's container, as its worker runs it, and what a failure means.

One check (:func:`check_health`) is a GET of ``health.uri`` on
``health.port`` at 127.0.0.1. The expected status means healthy; a 404 is
asked again with exponential backoff from 2 s for up to 30 s (the server is
up but still loading); any other status, or a connection error, fails at
once; and the whole check fails when it takes longer than ``health.timeout``.
A gRPC check, without a gRPC stack here, is a TCP connection to the port.
The worker checks every 500 ms at start-up and every 10 s afterwards
(:class:`HealthTiming`). :func:`explain` turns a failed check into the
deployment mistake it looks like and its fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

from nvcf_helpers.spec import DEFAULT_HEALTH_URI, FunctionSpec, HealthCheck

__all__ = [
    "HealthTiming",
    "Probe",
    "candidate_uris",
    "check_health",
    "describe",
    "explain",
    "find_uri",
    "listening_sockets",
]


@dataclass(frozen=True)
class HealthTiming:
    """How often and how patiently the container is checked; NVCF's worker's values by default.

    Attributes:
        startup_interval: between checks until the first one passes (``W/worker.go:462``).
        interval: between checks once ACTIVE (``L/health/health.go:45``).
        not_found_retry: first wait before asking again after a 404 (``health.go:182``).
        not_found_window: how long 404s are asked again before the check fails.
        backoff_factor: growth of the wait after each 404 (the Go backoff's default).
        hint_after: not NVCF's: how long a start-up mistake must persist before the
            log points it out, well before the start-up timeout turns it into ERROR.
    """

    startup_interval: float = 0.5
    interval: float = 10.0
    not_found_retry: float = 2.0
    not_found_window: float = 30.0
    backoff_factor: float = 1.5
    hint_after: float = 5.0


ProbeKind = Literal["healthy", "status", "not_found", "refused", "timeout", "error"]


@dataclass(frozen=True)
class Probe:
    """The raw outcome of one check: what was asked, what kind of answer, and its words."""

    request: str
    kind: ProbeKind
    answer: str
    status: int | None = None

    @property
    def healthy(self) -> bool:
        """The check passed."""
        return self.kind == "healthy"


def describe(check: HealthCheck) -> str:
    """The request a check makes, in words: ``GET http://127.0.0.1:8000/v2/health/ready``."""
    if check.protocol == "gRPC":
        return f"grpc.health.v1.Health/Check on 127.0.0.1:{check.port}"
    return f"GET http://127.0.0.1:{check.port}{check.uri}"


async def check_health(
    check: HealthCheck, session: aiohttp.ClientSession, timing: HealthTiming
) -> Probe:
    """Run one health check as NVCF's worker does; never raises for what the container does."""
    request = describe(check)
    seen_404: list[float] = []
    attempts = (
        _grpc_health(check, request)
        if check.protocol == "gRPC"
        else _get_until_not_404(check, request, session, timing, seen_404)
    )
    try:
        return await asyncio.wait_for(attempts, check.timeout_seconds)
    except asyncio.TimeoutError:
        if seen_404:  # the health timeout cut the 404 retries short, as in NVCF
            return Probe(request, "not_found", f"404 for {check.timeout_seconds:g} s", 404)
        return Probe(request, "timeout", f"no answer within {check.timeout_seconds:g} s")


async def _get_until_not_404(
    check: HealthCheck,
    request: str,
    session: aiohttp.ClientSession,
    timing: HealthTiming,
    seen_404: list[float],
) -> Probe:
    url = f"http://127.0.0.1:{check.port}{check.uri}"
    started = time.monotonic()
    wait = timing.not_found_retry
    while True:
        try:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            return _connection_failure(request, exc)
        if status == check.expected_status_code:
            return Probe(request, "healthy", str(status), status)
        if status != 404:
            return Probe(request, "status", str(status), status)
        seen_404.append(time.monotonic())
        elapsed = time.monotonic() - started
        if elapsed + wait > timing.not_found_window:
            return Probe(request, "not_found", f"404 for {elapsed:.0f} s", 404)
        await asyncio.sleep(wait)
        wait *= timing.backoff_factor


async def _grpc_health(check: HealthCheck, request: str) -> Probe:
    """The standard ``grpc.health.v1.Health/Check``, as NVCF's worker asks it (insecure)."""
    try:
        import grpc
        from grpc import aio
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:  # pragma: no cover - the local extra installs both
        return await _connect(check, request)
    async with aio.insecure_channel(f"127.0.0.1:{check.port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=check.timeout_seconds
            )
        except aio.AioRpcError as exc:
            details = exc.details() or ""
            if exc.code() is grpc.StatusCode.UNAVAILABLE and "refused" in details.lower():
                return Probe(request, "refused", "connection refused")
            return Probe(request, "error", f"{exc.code().name}: {details}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status == health_pb2.HealthCheckResponse.SERVING:
        return Probe(request, "healthy", status)
    return Probe(request, "status", status)


async def _connect(check: HealthCheck, request: str) -> Probe:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", check.port)
    except OSError as exc:
        return _connection_failure(request, exc)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Probe(request, "healthy", "connected")


def _connection_failure(request: str, exc: BaseException) -> Probe:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    os_error = getattr(exc, "os_error", None) or cause
    if isinstance(os_error, ConnectionRefusedError) or (
        isinstance(os_error, OSError) and os_error.errno == errno.ECONNREFUSED
    ):
        return Probe(request, "refused", "connection refused")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Probe(request, "error", "the connection was closed without an answer")
    return Probe(request, "error", f"{type(exc).__name__}: {exc}")


# -- what a failed check means ----------------------------------------------------------------


def explain(
    probe: Probe,
    check: HealthCheck,
    *,
    listening: Sequence[tuple[str, int]] = (),
    suggested_uri: str | None = None,
    starting: bool = True,
) -> tuple[str, str]:
    """The cause of a failed check and its fix, in NVCF's function-definition terms.

    Args:
        probe: the failed check.
        check: the function's health definition.
        listening: the TCP addresses the container listens on, where known.
        suggested_uri: a path on the health port that does answer the expected status.
        starting: the check ran at start-up (before ACTIVE).
    """
    if probe.kind == "refused":
        return _refused(probe, check, listening, starting)
    if probe.kind == "not_found":
        return _not_found(probe, check, suggested_uri)
    if probe.kind == "status":
        cause = f"{probe.request} answered {probe.answer}, expected {check.expected_status_code}"
        if probe.status is not None and 200 <= probe.status < 300:
            return cause, (
                f"if {probe.status} is what your server answers when ready, set "
                f"health.expectedStatusCode to {probe.status}"
            )
        return cause, "the server says it is not ready: see its output for why"
    if probe.kind == "timeout":
        return f"{probe.request} got {probe.answer} (health.timeout)", (
            "answer the health route at once, also while requests are running (serve it "
            "from its own thread, e.g. ThreadingHTTPServer, never behind the model), or "
            "raise health.timeout"
        )
    return f"{probe.request} failed: {probe.answer}", "see the container's output for why"


def _not_found(probe: Probe, check: HealthCheck, suggested_uri: str | None) -> tuple[str, str]:
    cause = (
        f"{probe.request} answered {probe.answer}: a server runs on port {check.port} "
        f"but has no path {check.uri} (wrong health URI)"
    )
    if suggested_uri is not None:
        return cause, (
            f"set health.uri to {suggested_uri} (it answers {check.expected_status_code})"
        )
    return cause, (
        "set health.uri to the path your server answers when ready (Triton: "
        f"{DEFAULT_HEALTH_URI}; one model: /v2/models/<name>/ready)"
    )


def _refused(
    probe: Probe, check: HealthCheck, listening: Sequence[tuple[str, int]], starting: bool
) -> tuple[str, str]:
    port = check.port
    elsewhere = sorted({p for host, p in listening if p != port})
    other_hosts = sorted({host for host, p in listening if p == port})
    if other_hosts:  # bound, but not where NVCF's worker connects
        return (
            f"{probe.request}: connection refused; the container listens on port {port} "
            f"only at {', '.join(other_hosts)}",
            "make the server listen on 0.0.0.0 (or 127.0.0.1): NVCF's worker checks 127.0.0.1",
        )
    if elsewhere:
        ports = ", ".join(str(p) for p in elsewhere)
        return (
            f"{probe.request}: connection refused, nothing listens on port {port}; the "
            f"container listens on port {ports} (wrong health port)",
            f"set health.port (and inferencePort) in the function definition to the port "
            f"your server listens on ({ports}), or make it listen on {port}",
        )
    if starting:
        return (
            f"{probe.request}: connection refused, nothing listens on port {port}",
            f"make the server listen on port {port} (health.port), or set health.port to "
            "its port; if it is still loading, allow it more time with --startup-timeout "
            "(NVCF allows 30 min)",
        )
    return (
        f"{probe.request}: connection refused, the server no longer listens on port {port}",
        "see the container's output for why it closed its port",
    )


# -- evidence for the explanation --------------------------------------------------------------


def listening_sockets(process_group: int) -> list[tuple[str, int]]:
    """The TCP (host, port) pairs a process group listens on; empty where /proc is unknown."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and _group_of(entry.name) == process_group:
                inodes |= _socket_inodes(entry.name)
    found: set[tuple[str, int]] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.add((_address(address, family), int(port, 16)))
    return sorted(found)


def _group_of(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _socket_inodes(pid: str) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _address(hex_address: str, family: socket.AddressFamily) -> str:
    raw = bytes.fromhex(hex_address)
    # /proc/net/tcp* prints each 32-bit word of the address in host (little-endian) order.
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    host = socket.inet_ntop(family, ordered)
    return f"[{host}]" if family == socket.AF_INET6 else host


_MODEL_PATH = re.compile(r"^(/v2/models/[^/]+(?:/versions/[^/]+)?)/(?:infer|generate\w*)$")


def candidate_uris(spec: FunctionSpec) -> list[str]:
    """Health paths a server for ``spec`` is likely to answer, the model's own first."""
    candidates = []
    match = _MODEL_PATH.match(spec.inference_url)
    if match:
        candidates.append(f"{match.group(1)}/ready")
    candidates += [f"/v2/models/{model.name}/ready" for model in spec.models]
    candidates += [DEFAULT_HEALTH_URI, "/v1/health/ready", "/health", "/healthz", "/ready"]
    return [uri for uri in dict.fromkeys(candidates) if uri != spec.health.uri]


async def find_uri(spec: FunctionSpec, session: aiohttp.ClientSession) -> str | None:
    """A likely health path on the health port that answers the expected status, if any."""
    check = spec.health
    for uri in candidate_uris(spec):
        url = f"http://127.0.0.1:{check.port}{uri}"
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
            timeout = aiohttp.ClientTimeout(total=min(2.0, check.timeout_seconds))
            async with session.get(url, timeout=timeout, allow_redirects=False) as response:
                if response.status == check.expected_status_code:
                    return uri
    return None
