"""What the local NVCF counts: Prometheus metrics, recent invocations, and series over time.

``GET /metrics`` serves :class:`Metrics`' own registry (never the process-wide
one). Every metric has the labels ``function_id`` and ``version_id``. Where
NVCF's worker exports a metric for the same thing (``NVCF_SOURCE_FACTS.md``
§6) it has NVCF's name:

- ``nvcf_worker_service_request_latency_seconds`` (histogram: NVCF's buckets
  from 0.1 s to 5000 s, and finer ones below 0.1 s for local calls),
  ``nvcf_worker_service_inference_request_time_seconds_total``: the time from
  the worker's call to the container's answer;
- ``nvcf_worker_service_large_response_uploads_total`` and
  ``..._large_response_bytes_total``: results that became a 302 zip;
- ``nvcf_worker_service_progress_monitor_watches``: progress files watched now;
- ``request_total``, ``response_total{error_code}`` (``"0"`` when fulfilled,
  else the HTTP status) and ``response_bytes_total``: the names NVCF's worker
  library shares, unprefixed as it lists them.

The local NVCF's own names start with ``nvcf_local_``:
``invocations_total{outcome,status_code}`` (``fulfilled``, ``errored``, or
``rejected``: refused 429 with the queue full), ``progress_updates_total``,
and the gauges ``instances`` (ACTIVE now), ``instances_min``,
``instances_max``, ``queue_depth`` and ``in_flight``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from nvcf_helpers.local.logs import HISTORY_SECONDS, iso_millis
from nvcf_helpers.local.store import Invocation, InvocationState

__all__ = [
    "CONTENT_TYPE",
    "RECENT_INVOCATIONS",
    "SAMPLE_SECONDS",
    "Metrics",
    "RecentInvocations",
    "VersionMetrics",
    "VersionState",
]

#: The content type of ``GET /metrics``.
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Invocations ``GET /_local/state`` lists, newest first.
RECENT_INVOCATIONS = 200
#: Seconds between two points of a version's series.
SAMPLE_SECONDS = 5
#: Points kept per version: NVCF's 48 hours.
SERIES_POINTS = int(HISTORY_SECONDS / SAMPLE_SECONDS)
_NVCF = "nvcf_worker_service_"
_LOCAL = "nvcf_local_"
_LABELS = ("function_id", "version_id")
# NVCF's buckets go from 0.1 s to 5000 s; local calls take milliseconds.
_FINE_BUCKETS = (0.005, 0.01, 0.025, 0.05)
_NVCF_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_BUCKETS: tuple[float, ...] = (*_FINE_BUCKETS, *_NVCF_BUCKETS)


@dataclass(frozen=True)
class VersionState:
    """A deployed version's gauges, read when they are asked for."""

    function_id: str
    version_id: str
    instances: int
    min_instances: int
    max_instances: int
    queue_depth: int
    in_flight: int


class _Families:
    """The metric families, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, *extra: str) -> Counter:
            return Counter(name, text, (*_LABELS, *extra), registry=registry)

        self.requests = counter("request", "Requests handed to a worker")
        self.responses = counter("response", "Answers, by error code (0: fulfilled)", "error_code")
        self.response_bytes = counter("response_bytes", "Bytes of the answers' bodies")
        self.invocations = counter(
            _LOCAL + "invocations", "Invocations answered or refused", "outcome", "status_code"
        )
        self.progress_updates = counter(_LOCAL + "progress_updates", "Progress updates accepted")
        self.inference_time = counter(
            _NVCF + "inference_request_time_seconds", "Seconds the container took to answer"
        )
        self.large_uploads = counter(_NVCF + "large_response_uploads", "Results sent as a zip")
        self.large_bytes = counter(_NVCF + "large_response_bytes", "Bytes of the result zips")
        self.latency = Histogram(
            _NVCF + "request_latency_seconds",
            "Seconds from the worker's call to the container's answer",
            _LABELS,
            buckets=_BUCKETS,
            registry=registry,
        )
        self.watches = Gauge(
            _NVCF + "progress_monitor_watches",
            "Progress files watched now",
            _LABELS,
            registry=registry,
        )


class _StateCollector:
    """The gauges read from the deployments at each scrape (nothing to keep up to date)."""

    def __init__(self, states: Callable[[], Iterable[VersionState]]) -> None:
        self.states = states

    def collect(self) -> Iterator[Metric]:
        gauges = {
            "instances": GaugeMetricFamily(
                _LOCAL + "instances", "Instances ACTIVE now", labels=_LABELS
            ),
            "min_instances": GaugeMetricFamily(
                _LOCAL + "instances_min", "minInstances of the deployment", labels=_LABELS
            ),
            "max_instances": GaugeMetricFamily(
                _LOCAL + "instances_max", "maxInstances of the deployment", labels=_LABELS
            ),
            "queue_depth": GaugeMetricFamily(
                _LOCAL + "queue_depth", "Requests waiting for a slot", labels=_LABELS
            ),
            "in_flight": GaugeMetricFamily(
                _LOCAL + "in_flight", "Requests holding a slot", labels=_LABELS
            ),
        }
        for state in self.states():
            labels = [state.function_id, state.version_id]
            for field, family in gauges.items():
                family.add_metric(labels, getattr(state, field))
        yield from gauges.values()


class VersionMetrics:
    """One version's metrics, bound to its labels once: a count is one increment.

    Also keeps the running totals its series are sampled from, and its points.
    """

    def __init__(self, families: _Families, recent: RecentInvocations, labels: tuple[str, str]):
        self.function_id, self.version_id = labels
        self._families = families
        self._recent = recent
        self._requests = families.requests.labels(*labels)
        self._response_bytes = families.response_bytes.labels(*labels)
        self._inference_time = families.inference_time.labels(*labels)
        self._latency = families.latency.labels(*labels)
        self._watches = families.watches.labels(*labels)
        self._large_uploads = families.large_uploads.labels(*labels)
        self._large_bytes = families.large_bytes.labels(*labels)
        #: Called with each accepted progress update.
        self.progress_update: Callable[[], None] = families.progress_updates.labels(*labels).inc
        self._outcomes: dict[tuple[str, int], tuple[Any, Any]] = {}
        #: Invocations answered or refused, those of them not fulfilled, and the
        #: answered ones' count and seconds: what the series are sampled from.
        self.finished = 0
        self.failed = 0
        self.timed = 0
        self.seconds = 0.0
        self._mark = (0, 0, 0, 0.0)
        #: ``(time, invocations, failures, queue depth, seconds, timed, instances)``.
        self.points: deque[tuple[float, int, int, int, float, int, int]] = deque(
            maxlen=SERIES_POINTS
        )

    def enqueued(self, invocation: Invocation) -> None:
        """A pollable invocation was queued: list it among the recent ones."""
        self._recent.add(invocation)

    def dispatched(self) -> None:
        """A request was handed to a worker."""
        self._requests.inc()

    def rejected(self) -> None:
        """A request was refused: the queue was full (429)."""
        self._count("rejected", 429)
        self.finished += 1
        self.failed += 1

    def answered(self, status: int, nvcf_status: str, seconds: float, size: int) -> None:
        """A request's answer is in: its status, ``NVCF-STATUS``, time and body bytes."""
        outcome = "fulfilled" if nvcf_status == "fulfilled" else "errored"
        self._count(outcome, status)
        self._latency.observe(seconds)
        self._inference_time.inc(seconds)
        if size:
            self._response_bytes.inc(size)
        self.finished += 1
        self.timed += 1
        self.seconds += seconds
        if outcome != "fulfilled":
            self.failed += 1

    def _count(self, outcome: str, status: int) -> None:
        children = self._outcomes.get((outcome, status))
        if children is None:
            labels = (self.function_id, self.version_id)
            code = "0" if outcome == "fulfilled" else str(status)
            children = self._outcomes[(outcome, status)] = (
                self._families.invocations.labels(*labels, outcome, str(status)),
                self._families.responses.labels(*labels, code),
            )
        children[0].inc()
        children[1].inc()

    def watching(self, change: int) -> None:
        """A progress file is watched (1), or no longer (-1)."""
        self._watches.inc(change)

    def large_result(self, size: int) -> None:
        """A result went out as a zip of ``size`` bytes."""
        self._large_uploads.inc()
        self._large_bytes.inc(size)

    def sample(self, now: float, queue_depth: int, instances: int) -> None:
        """Add the point for the interval that ends now."""
        finished, failed, timed, seconds = self._mark
        self.points.append(
            (
                now,
                self.finished - finished,
                self.failed - failed,
                queue_depth,
                self.seconds - seconds,
                self.timed - timed,
                instances,
            )
        )
        self._mark = (self.finished, self.failed, self.timed, self.seconds)


class _Recent:
    """The summary of one recent invocation; it lets go of the invocation once answered."""

    __slots__ = (
        "accepted",
        "finished",
        "function_id",
        "http_status",
        "invocation",
        "outcome",
        "partial",
        "progress",
        "request_id",
        "version_id",
        "zip_token",
    )

    def __init__(self, invocation: Invocation) -> None:
        self.invocation: Invocation | None = invocation
        self.request_id = invocation.request_id
        self.function_id = invocation.function_id
        self.version_id = invocation.version_id
        self.accepted = time.time() - (time.monotonic() - invocation.accepted_at)
        self.finished: float | None = None
        self.outcome: str | None = None
        self.http_status: int | None = None
        self.progress = 0
        self.partial: dict[str, Any] | None = None
        self.zip_token: str | None = None

    def done(self, invocation: Invocation) -> None:
        result = invocation.result
        assert result is not None
        self.finished = time.time()
        self.outcome = "fulfilled" if result.nvcf_status == "fulfilled" else "errored"
        self.http_status = result.status
        self.zip_token = result.zip_token
        self.progress = invocation.progress
        self.partial = invocation.partial_response
        self.invocation = None  # its body is not ours to keep

    def to_json(self, zips: Mapping[str, Path]) -> dict[str, Any]:
        invocation = self.invocation
        status = self.outcome
        progress, partial = self.progress, self.partial
        if invocation is not None:
            progress, partial = invocation.progress, invocation.partial_response
            if invocation.state is InvocationState.RUNNING:
                status = "running"
            else:  # dropped from the queue (504, the caller left) or still waiting
                status = "errored" if invocation.cancelled.is_set() else "queued"
        finished = self.finished
        token = self.zip_token
        return {
            "requestId": self.request_id,
            "functionId": self.function_id,
            "versionId": self.version_id,
            "status": status,
            "httpStatus": self.http_status,
            "progress": progress,
            "partialResponse": partial,
            "acceptedAt": iso_millis(self.accepted),
            "finishedAt": iso_millis(finished) if finished is not None else None,
            "seconds": round(finished - self.accepted, 6) if finished is not None else None,
            "resultUrl": f"/_local/results/{token}" if token and token in zips else None,
        }


class RecentInvocations:
    """The last :data:`RECENT_INVOCATIONS` invocations, as summaries (never their bodies)."""

    def __init__(self, size: int = RECENT_INVOCATIONS) -> None:
        self._items: deque[_Recent] = deque(maxlen=size)

    def add(self, invocation: Invocation) -> None:
        """List an invocation; its summary follows it until it is answered."""
        entry = _Recent(invocation)
        self._items.append(entry)
        invocation.on_finish(entry.done)

    def to_json(self, zips: Mapping[str, Path]) -> list[dict[str, Any]]:
        """Newest first; ``zips`` are the result zips still served, by token."""
        return [entry.to_json(zips) for entry in reversed(self._items)]


class Metrics:
    """The local NVCF's metrics registry, its recent invocations and its series.

    Args:
        states: the deployed versions' gauges, read at each scrape and sample.
    """

    def __init__(self, states: Callable[[], Iterable[VersionState]] = tuple) -> None:
        self.registry = CollectorRegistry()
        self._families = _Families(self.registry)
        self.registry.register(_StateCollector(states))
        self.states = states
        self.recent = RecentInvocations()
        self.versions: dict[str, VersionMetrics] = {}

    def version(self, function_id: str, version_id: str) -> VersionMetrics:
        """A version's metrics (the same object again after a redeployment: counts go on)."""
        metrics = self.versions.get(version_id)
        if metrics is None:
            metrics = VersionMetrics(self._families, self.recent, (function_id, version_id))
            self.versions[version_id] = metrics
        return metrics

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    def sample(self, now: float | None = None) -> None:
        """Add every version's point for the interval that ends now."""
        now = time.time() if now is None else now
        states = {state.version_id: state for state in self.states()}
        for version_id, metrics in self.versions.items():
            state = states.get(version_id)
            if state is None:
                metrics.sample(now, 0, 0)
            else:
                metrics.sample(now, state.queue_depth, state.instances)

    def series(
        self, function_id: str | None, version_id: str | None, since: float
    ) -> list[dict[str, Any]]:
        """The points since ``since`` of the versions asked for, summed per sample."""
        merged: dict[float, list[float]] = {}
        for metrics in self.versions.values():
            if function_id is not None and metrics.function_id != function_id:
                continue
            if version_id is not None and metrics.version_id != version_id:
                continue
            for point in reversed(metrics.points):
                if point[0] < since:
                    break
                total = merged.setdefault(point[0], [0, 0, 0, 0.0, 0, 0])
                for index, value in enumerate(point[1:]):
                    total[index] += value
        return [_point(moment, merged[moment]) for moment in sorted(merged)]


def _point(moment: float, total: list[float]) -> dict[str, Any]:
    invocations, failures, queue_depth, seconds, timed, instances = total
    return {
        "time": iso_millis(moment),
        "invocations": int(invocations),
        "failures": int(failures),
        "queueDepth": int(queue_depth),
        "inferenceSeconds": round(seconds / timed, 6) if timed else None,
        "instances": int(instances),
    }
