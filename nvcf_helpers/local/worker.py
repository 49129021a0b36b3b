"""The worker: what NVCF's worker does between the invocation API and the container.

For each invocation it makes the request's output directory (and, when it
has input assets, its asset directory with the assets in it), and sends the
body to ``inferenceUrl`` with the headers NVCF's worker sets (facts §1 of
``NVCF_SOURCE_FACTS.md``), through
:mod:`~nvcf_helpers.local.exchange`: redirects are relayed, never followed, a
large body streams to a file rather than into memory, and the call is closed
as soon as the invocation is cancelled (504, caller gone, shutdown). In
compatibility mode (the default) it turns the answer into a result as NVCF's
worker does (facts §2): the container's own answer, a 302 to a zip when the
output directory holds any artifact or the body is over the inline limit, or
a rewrapped problem-details error; the ``progress`` file is watched meanwhile
(facts §3). Outside it (``Accept: text/event-stream``, or the caller's
``nvcf-feature-disable-worker-compatibility: true``) the answer passes through
untouched. The directories are removed once the result is out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from nvcf_helpers import names
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.container_http import ContainerClient, ContainerClosed
from nvcf_helpers.local.exchange import (
    CONNECTION_ERROR,
    EXCHANGE_ERRORS,
    INFERENCE_ERROR,
    WORKER_ERROR,
    Reply,
    failure,
    read_body,
    read_head,
    worker_problem,
)
from nvcf_helpers.local.function import LOCAL_NCA_ID, FunctionStatus, LocalFunction
from nvcf_helpers.local.metrics import VersionMetrics
from nvcf_helpers.local.output_dir import Walk, has_entries, zip_outputs
from nvcf_helpers.local.progress_watch import ProgressWatcher
from nvcf_helpers.local.request_dirs import RequestDirectories
from nvcf_helpers.local.store import Invocation, InvocationState, InvocationStore, Result

__all__ = [
    "CONTRACT_WARNING_HEADER",
    "Forward",
    "Worker",
    "WorkerFiles",
    "compatibility_mode",
    "container_headers",
    "go_canonical",
    "inference_problem",
    "problem_body",
]

logger = logging.getLogger("nvcf_helpers.local")

#: Response header that reports a contract violation found in a container's answer.
CONTRACT_WARNING_HEADER = names.LOCAL_WARNING
ASSET_REFERENCES_HEADER = names.INPUT_ASSET_REFERENCES
#: The region the local gateway reports in ``NVCF-INVOCATION-REGION``.
LOCAL_REGION = "local"

# The 15 names NVCF's worker owns: a client header of one of them never reaches the container.
_WORKER_OWNED = frozenset(
    header.lower() for field, header in names.CONTEXT_HEADERS.items() if field != "poll_seconds"
)
# Hop-by-hop headers (RFC 2616 13.5.1), which NVCF's gateway and worker both remove.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Client headers that do not reach the container: hop-by-hop ones and Authorization
# (the gateway removes them), and those the worker's HTTP client writes itself.
_NOT_FORWARDED = _HOP_BY_HOP | {"authorization", "host", "content-length", "expect"}
# Container response headers that the API answers with its own values.
_NOT_RELAYED = _HOP_BY_HOP | {"content-length", "date", "server"}
_REGION = names.INVOCATION_REGION.lower()
#: Why a Helm function's files in the output directory may not reach callers on NVCF.
HELM_OUTPUTS_WARNING = (
    "a Helm function left files in its output directory (progress or large outputs): "
    "NVCF's documentation says Helm functions do not support them, so callers may not get "
    "them there: return the answer in the body"
)
HELM_ASSETS_WARNING = (
    "a Helm function got input asset references: its service gets no "
    f"{names.ASSET_DIR} on NVCF, so it cannot read them: send the data in the body"
)
_EVENT_STREAM = "text/event-stream"
_EXIT_NOTICE_SECONDS = 2.0
_HTTP_TOKEN = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_MAX_HEADER_TEXT = 2000
_MAX_LISTED = 5


@functools.lru_cache(maxsize=1024)
def go_canonical(name: str) -> str:
    """A header name as Go's ``http.Header.Add`` stores it (``x-trace-id`` -> ``X-Trace-Id``)."""
    if not name or not all(character in _HTTP_TOKEN for character in name):
        return name  # Go leaves names with invalid bytes as they are
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


#: NVCF's worker sets the poll header with ``Header.Set``, which canonicalises it.
POLL_HEADER = go_canonical(names.POLL_SECONDS)


def problem_body(
    status: int, detail: str, *, kind: str = "", request_id: str | None = None
) -> bytes:
    """A problem-details (RFC 9457) JSON body for the local NVCF's own API errors."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    slug = kind or title.lower().replace(" ", "-")
    problem: dict[str, Any] = {
        "type": f"urn:nvcf:problem-details:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id is not None:
        problem["requestId"] = request_id
        problem["instance"] = f"/v2/nvcf/pexec/status/{request_id}"
    return json.dumps(problem).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _error_text(body: bytes) -> str | None:
    """The body's JSON ``error`` string, as Go decodes it (the name in any case, last wins)."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    text = None
    for key, value in document.items():
        if key.lower() == "error" and isinstance(value, str):
            text = value
    return text or None


def inference_problem(status: int, body: bytes) -> bytes:
    """NVCF's rewrap of a container's error answer (facts §2, "Errors").

    ``detail`` is the body's JSON ``error`` string, or "Inference error".
    """
    return worker_problem(INFERENCE_ERROR, status, _error_text(body) or "Inference error")


def compatibility_mode(headers: Mapping[str, str]) -> bool:
    """Whether NVCF's worker maps this request's answer (rewrap, zip, progress).

    It does not for an ``Accept`` media type of ``text/event-stream`` or for
    ``nvcf-feature-disable-worker-compatibility: true`` (facts §2).
    """
    accept = headers.get("Accept", "")
    if accept.split(";", 1)[0].strip().lower() == _EVENT_STREAM:
        return False
    return headers.get(names.DISABLE_WORKER_COMPATIBILITY) != "true"


def container_headers(
    client: Iterable[tuple[str, str]],
    worker: Iterable[tuple[str, str]],
    *,
    region: str,
    asset_ids: Sequence[str],
    poll_left: float,
) -> CIMultiDict[str]:
    """The headers NVCF's worker sends the container with a request (facts §1).

    Args:
        client: the caller's headers. Hop-by-hop ones, ``Authorization`` and
            the 15 worker-owned names are dropped; every other one is
            forwarded under Go's canonical spelling.
        worker: the worker's own headers, in their exact spellings.
        region: the gateway's region, for ``NVCF-INVOCATION-REGION``.
        asset_ids: the request's input assets, for ``NVCF-FUNCTION-ASSET-IDS``.
        poll_left: seconds left in the caller's poll window; sent truncated,
            0 or negative once the request has waited past it.
    """
    pairs = list(client)
    listed = _connection_listed(pairs)
    headers: CIMultiDict[str] = CIMultiDict(worker)
    for name, value in pairs:
        lowered = name.lower()
        if lowered in _NOT_FORWARDED or lowered in listed or lowered in _WORKER_OWNED:
            continue
        if lowered != _REGION:  # the gateway's own value replaces the caller's
            headers.add(go_canonical(name), value)
    headers[names.INVOCATION_REGION] = region
    if not headers.get("Content-Type"):
        headers["Content-Type"] = "application/json"
    if asset_ids:
        headers[names.FUNCTION_ASSET_IDS] = ",".join(asset_ids)
    headers[POLL_HEADER] = str(int(poll_left))
    return headers


def _connection_listed(pairs: list[tuple[str, str]]) -> set[str]:
    """The header names a ``Connection`` header lists: hop-by-hop for this message."""
    return {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }


def _relayed(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A container's response headers as the worker relays them: hop-by-hop ones removed."""
    pairs = list(headers)
    listed = _connection_listed(pairs)
    return {
        name: value
        for name, value in pairs
        if name.lower() not in _NOT_RELAYED and name.lower() not in listed
    }


def _gateway_status(status: int) -> str:
    """The gateway's ``NVCF-STATUS`` for a status code the worker relayed."""
    if status == 202:
        return "in-progress"
    return "fulfilled" if 200 <= status < 400 else "errored"


def _header_text(text: str) -> str:
    """Text made safe for a header value: printable ASCII, bounded in length."""
    safe = "".join(
        character if character.isascii() and character.isprintable() else ascii(character)[1:-1]
        for character in text
    )
    return safe if len(safe) <= _MAX_HEADER_TEXT else safe[: _MAX_HEADER_TEXT - 3] + "..."


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} and {len(items) - _MAX_LISTED} more"


def _walk_warnings(walk: Walk) -> list[str]:
    """What a container left in its output directory that breaks the documented contract."""
    warnings = []
    partials = [name for name in walk.files if name.endswith(names.PARTIAL_SUFFIX)]
    if partials:
        warnings.append(
            f"the container left unfinished large outputs {_listing(partials)}; NVCF ships "
            f"them as they are: write '<name>{names.PARTIAL_SUFFIX}' and rename it when "
            "complete (nvcf_helpers.large_output does)"
        )
    if walk.skipped:
        warnings.append(
            f"the output directory holds entries that are not regular files: "
            f"{_listing(walk.skipped)}; the local NVCF never reads them, NVCF's worker would "
            "(shipping a symlink's target, waiting on a FIFO): write regular files only"
        )
    return warnings


def _with_warnings(result: Result, warnings: Sequence[str]) -> Result:
    if warnings:
        result.headers[CONTRACT_WARNING_HEADER] = _header_text(" | ".join(warnings))
    return result


@dataclass(frozen=True)
class WorkerFiles:
    """Where workers keep request directories, large bodies and result zips.

    One per local NVCF: the workers of every instance share it (the names in
    it are request ids and random tokens, so they never collide).
    """

    directories: RequestDirectories
    zip_root: Path
    body_root: Path
    #: Result zips by their download token.
    zips: dict[str, Path]

    @classmethod
    def under(cls, root: Path, held_dir: Path | None = None) -> WorkerFiles:
        """Make the directories under ``root``; large bodies go to ``held_dir`` if given."""
        zip_root = root / "results"
        zip_root.mkdir(mode=0o755, exist_ok=True)
        #: Container bodies too large for memory, one file per request id: beside the
        #: uncollected bodies the store keeps on disk (it owns each once its result lands).
        body_root = held_dir or root / "bodies"
        body_root.mkdir(mode=0o700, exist_ok=True)
        return cls(RequestDirectories(root), zip_root, body_root, {})


@dataclass(frozen=True)
class Forward:
    """What the API hands the worker for one invocation."""

    body: bytes
    headers: Iterable[tuple[str, str]]
    asset_ids: tuple[str, ...]
    poll_deadline: float


class Worker:
    """Runs invocations against the container, at most ``max_concurrency`` at a time.

    Args:
        function: the function being served.
        store: where invocations wait for their result to be collected.
        assets: the asset store input assets are copied from.
        root: the local NVCF's temporary root; request directories live under it.
        session: the aiohttp session for direct invocations (streamed bodies, any
            method); pexec calls go through the worker's own :class:`ContainerClient`.
        max_concurrency: requests the container is given at once (NVCF's
            ``maxRequestConcurrency``); the rest wait in the function's queue.
        max_response_bytes: the largest body passed back inline, also sent as
            ``NVCF-MAX-RESPONSE-SIZE-BYTES`` (NVCF: always 5242880).
        region: the gateway region sent as ``NVCF-INVOCATION-REGION``.
        files: the request directories and result files, shared by every
            instance's worker (made under ``root`` when not given).
        metrics: where the version's requests are counted, if anywhere.
    """

    def __init__(
        self,
        function: LocalFunction,
        store: InvocationStore,
        assets: AssetStore,
        root: Path,
        session: aiohttp.ClientSession,
        *,
        max_concurrency: int,
        max_response_bytes: int = names.DEFAULT_MAX_RESPONSE_BYTES,
        region: str = LOCAL_REGION,
        files: WorkerFiles | None = None,
        metrics: VersionMetrics | None = None,
    ) -> None:
        self.function = function
        self.metrics = metrics
        self.store = store
        self.assets = assets
        self.session = session
        self.max_response_bytes = max_response_bytes
        self.region = region
        self.files = files or WorkerFiles.under(root, store.held_dir)
        self.directories = self.files.directories
        self.zip_root = self.files.zip_root
        self.body_root = self.files.body_root
        self._spool_prefix = f"{self.body_root}{os.sep}"
        self.zips = self.files.zips
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[Invocation] = set()
        self.progress = ProgressWatcher()
        self._container_exited = asyncio.Event()
        self._closing = False
        spec = function.spec
        self.client = ContainerClient("127.0.0.1", spec.inference_port, spec.inference_path)
        #: A Helm function: its service gets no asset directory, and NVCF's docs give it
        #: no progress or large outputs (the worker itself does not tell them apart).
        self.helm = spec.kind == "helm"
        # The worker's headers that are the same on every request, in NVCF's order.
        self._function_headers = (
            (names.SUBJECT, f"local.{function.function_id}"),
            (names.NCA_ID, LOCAL_NCA_ID),
            (names.FUNCTION_NAME, spec.name),
            (names.FUNCTION_ID, function.function_id),
            (names.FUNCTION_VERSION_ID, function.version_id),
        )
        self._instance_headers = (
            (names.MAX_RESPONSE_SIZE, str(max_response_bytes)),
            (names.NSPECT_ID, "local"),
            (names.BACKEND, "local"),
            (names.INSTANCE_TYPE, "local"),
            (names.REGION, "local"),
            (names.ENV, "local"),
        )

    def resize(self, max_concurrency: int) -> None:
        """Give the container ``max_concurrency`` slots from now on (running calls keep theirs)."""
        if max_concurrency != self.max_concurrency:
            self.max_concurrency = max_concurrency
            self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def load(self) -> int:
        """Invocations handed to this worker and not finished."""
        return len(self._tasks)

    # -- invocation ---------------------------------------------------------------------------

    def submit(self, invocation: Invocation, forward: Forward) -> None:
        """Queue an invocation; its result lands in the store when the container answers."""
        self.store.add(invocation)
        if self.metrics is not None:
            self.metrics.dispatched()
        task = asyncio.create_task(self._run(invocation, forward))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def warning(self, invocation: Invocation) -> str | None:
        """Contract warnings about a running request, for ``NVCF-LOCAL-WARNING`` on its 202s."""
        warning = self.progress.warning(invocation)
        return _header_text(warning) if warning else None

    async def _run(self, invocation: Invocation, forward: Forward) -> None:
        directories: list[str] = []
        started = time.monotonic()
        try:
            try:
                async with self._slots:
                    result = await self._call(invocation, forward, directories)
            except Exception as exc:  # the result must always land, or the caller polls forever
                logger.exception("request %s: the local NVCF failed", invocation.request_id)
                result = _problem(WORKER_ERROR, 500, f"the local NVCF failed: {exc}")
            if invocation.finish(result):
                if self.metrics is not None:
                    seconds = time.monotonic() - started
                    self.metrics.answered(result.status, result.nvcf_status, seconds, result.size)
                if self.store.get(invocation.request_id) is not invocation:
                    self._discard(result)  # nobody can collect it (answered 504, or forgotten)
        finally:
            # After the result is out, as NVCF's worker does (once the answer has gone).
            self.directories.release(*directories)
        logger.debug(
            "request %s: %d in %.3f s",
            invocation.request_id,
            result.status,
            time.monotonic() - invocation.accepted_at,
        )

    def _discard(self, result: Result) -> None:
        if result.body_path is not None:
            result.body_path.unlink(missing_ok=True)
        if result.zip_token is not None:
            zip_path = self.zips.pop(result.zip_token, None)
            if zip_path is not None:
                zip_path.unlink(missing_ok=True)

    def _refusal(self) -> Result | None:
        if self.function.status is FunctionStatus.ACTIVE:
            return None
        reason = f": {self.function.error}" if self.function.error else ""
        return _problem(
            WORKER_ERROR,
            503,
            f"function {self.function.spec.name} is {self.function.status.value}{reason}; "
            "invoke it once it is ACTIVE",
        )

    async def _call(
        self, invocation: Invocation, forward: Forward, directories: list[str]
    ) -> Result:
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        invocation.state = InvocationState.RUNNING
        asset_dir, output_dir = self._make_directories(invocation)
        directories.append(output_dir)
        self._in_flight.add(invocation)
        try:
            await self._deliver_assets(forward, asset_dir, directories)
            headers = self._headers(invocation, forward, asset_dir, output_dir)
            compatible = compatibility_mode(headers)
            early = [HELM_ASSETS_WARNING] if self.helm and forward.asset_ids else []
            if not compatible:
                reply = await self._exchange(invocation, forward, headers, compatible=False)
                if isinstance(reply, Result):
                    return reply
                return _inline(reply, nvcf_status=_gateway_status(reply.status))
            self.progress.watch(invocation, output_dir)
            metrics = self.metrics
            if metrics is not None:
                metrics.watching(1)
                invocation.on_progress = metrics.progress_update
            try:
                reply = await self._exchange(invocation, forward, headers, compatible=True)
            finally:
                warnings = (*early, *self.progress.unwatch(invocation))
                if metrics is not None:
                    metrics.watching(-1)
            if isinstance(reply, Result):
                return _with_warnings(reply, warnings)
            try:
                return await self._package(invocation, reply, output_dir, list(warnings))
            except BaseException:
                reply.body.discard()
                raise
        finally:
            self._in_flight.discard(invocation)

    async def _exchange(
        self,
        invocation: Invocation,
        forward: Forward,
        headers: CIMultiDict[str],
        *,
        compatible: bool,
    ) -> Reply | Result:
        """Send the request; the container's answer, or the problem NVCF gives when it fails.

        The call is cancelled (its connection closed, as NVCF's worker cancels
        the request) once the invocation is: 504, a caller gone, shutdown.
        """
        if invocation.cancelled.is_set():
            return _cancelled(invocation)
        # Cancelled in place (no task of its own: two fewer tasks on every request).
        task = asyncio.current_task()
        assert task is not None
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        invocation.on_cancel(interrupt)
        try:
            return await self._receive(invocation, forward, headers, compatible)
        except asyncio.CancelledError:
            if not interrupted or self._closing:
                raise  # this task itself is cancelled (the worker is closing)
            uncancel = getattr(task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            return _cancelled(invocation)
        except EXCHANGE_ERRORS as exc:
            return await self._lost(invocation, exc)
        finally:
            invocation.off_cancel(interrupt)

    async def _receive(
        self, invocation: Invocation, forward: Forward, headers: CIMultiDict[str], compatible: bool
    ) -> Reply:
        async with self.client.post(list(headers.items()), forward.body) as reply:
            # NVCF's worker reads an error body only up to the inline limit and one byte more.
            limit = self.max_response_bytes + 1 if compatible and reply.status >= 400 else None
            spool = self._spool_prefix + invocation.request_id
            body = await read_body(reply, spool, limit=limit)
            return Reply(reply.status, reply.headers, body)

    async def _lost(self, invocation: Invocation, exc: BaseException) -> Result:
        """NVCF's answer when the exchange fails, with the local NVCF's explanation beside it."""
        source, detail, cause = failure(exc)
        if source == CONNECTION_ERROR or isinstance(
            exc, (ContainerClosed, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)
        ):
            # A dropped connection is most often a dying container: give its exit a moment
            # to be noticed, so the caller learns the real cause.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._container_exited.wait(), _EXIT_NOTICE_SECONDS)
        if self.function.status is FunctionStatus.ERROR:
            cause = (
                f"the container died while handling the request ({self.function.error}); "
                "see its output above"
            )
        logger.error("request %s: %s", invocation.request_id, cause)
        return _with_warnings(_problem(source, 500, detail), [cause])

    def _make_directories(self, invocation: Invocation) -> tuple[str, str]:
        """The request's asset and output directories; only the output one exists yet."""
        return self.directories.make(invocation.request_id)

    async def _deliver_assets(self, forward: Forward, asset_dir: str, made: list[str]) -> None:
        """Make the asset directory and copy the assets in, for a request that has any.

        NVCF's worker makes the directory only then (``NVCF-ASSET-DIR`` names
        it either way): a container that expects it without assets fails there.
        """
        if forward.asset_ids:
            made.append(asset_dir)
            await asyncio.to_thread(self._copy_assets, list(forward.asset_ids), asset_dir)

    def _copy_assets(self, asset_ids: list[str], asset_dir: str) -> None:
        self.directories.make_asset_dir(asset_dir)
        self.assets.copy_into(asset_ids, Path(asset_dir))

    def _headers(
        self, invocation: Invocation, forward: Forward, asset_dir: str, output_dir: str
    ) -> CIMultiDict[str]:
        worker = (
            (names.REQUEST_ID, invocation.request_id),
            *self._function_headers,
            # A Helm function's pods do not share the worker's asset volume.
            *(() if self.helm else ((names.ASSET_DIR, asset_dir),)),
            (names.LARGE_OUTPUT_DIR, output_dir),
            *self._instance_headers,
        )
        return container_headers(
            forward.headers,
            worker,
            region=self.region,
            asset_ids=forward.asset_ids,
            poll_left=forward.poll_deadline - time.monotonic(),
        )

    async def _package(
        self, invocation: Invocation, reply: Reply, output_dir: str, warnings: list[str]
    ) -> Result:
        """NVCF's compatibility mapping of a container's answer (facts §2)."""
        body = reply.body
        if reply.status >= 400:
            size = self.max_response_bytes + 1
            head = await read_head(body, size)
            body.discard()
            result = Result(
                reply.status,
                inference_problem(reply.status, head),
                {"Content-Type": "application/problem+json"},
                nvcf_status="errored",
            )
            return _with_warnings(result, warnings)
        over = body.size > self.max_response_bytes
        # A scandir of the top level answers "nothing left" on the loop; walks go to a thread.
        if not over and not has_entries(output_dir):
            return _with_warnings(_inline(reply), warnings)
        if self.helm:
            warnings.append(HELM_OUTPUTS_WARNING)
        token = secrets.token_urlsafe(24)
        zip_path = self.zip_root / f"{token}.zip"
        try:
            walk, zip_size = await asyncio.to_thread(
                _zip_measured,
                zip_path,
                invocation.request_id,
                body.path or body.data,
                Path(output_dir),
            )
        except BaseException:
            zip_path.unlink(missing_ok=True)
            raise
        for warning in _walk_warnings(walk):
            logger.warning("request %s: contract violation: %s", invocation.request_id, warning)
            warnings.append(warning)
        if not over and not walk.files:
            zip_path.unlink(missing_ok=True)
            return _with_warnings(_inline(reply), warnings)
        body.discard()
        self.zips[token] = zip_path
        if self.metrics is not None:
            self.metrics.large_result(zip_size)
        # The container's status and headers are dropped: a 302 carries only Location.
        return _with_warnings(Result(302, b"", {}, zip_token=token), warnings)

    # -- streaming ------------------------------------------------------------------------------

    async def stream(
        self, invocation: Invocation, forward: Forward, request: web.Request
    ) -> web.StreamResponse:
        """Forward a ``text/event-stream`` request and relay the answer as it arrives.

        Outside compatibility mode, as in NVCF: status, headers and body pass
        through untouched (no rewrap, zip or progress).
        """
        metrics = self.metrics
        if metrics is not None:
            metrics.dispatched()
        started = time.monotonic()
        async with self._slots:
            refusal = self._refusal()
            if refusal is not None:
                return _to_response(refusal, invocation)
            invocation.state = InvocationState.RUNNING
            asset_dir, output_dir = self._make_directories(invocation)
            made = [output_dir]
            self._in_flight.add(invocation)
            try:
                await self._deliver_assets(forward, asset_dir, made)
                headers = self._headers(invocation, forward, asset_dir, output_dir)
                response = await self._relay(invocation, forward, headers, request)
                if metrics is not None:
                    seconds = time.monotonic() - started
                    status = response.status
                    metrics.answered(status, _gateway_status(status), seconds, 0)
                return response
            finally:
                self._in_flight.discard(invocation)
                self.directories.release(*made)

    async def _relay(
        self,
        invocation: Invocation,
        forward: Forward,
        headers: CIMultiDict[str],
        request: web.Request,
    ) -> web.StreamResponse:
        try:
            async with self.client.post(list(headers.items()), forward.body) as reply:
                response = web.StreamResponse(status=reply.status, headers=_relayed(reply.headers))
                response.headers[names.REQUEST_ID] = invocation.request_id
                response.headers[names.STATUS] = _gateway_status(reply.status)
                await response.prepare(request)
                try:
                    while chunk := await reply.read_chunk():
                        await response.write(chunk)
                except (*EXCHANGE_ERRORS, ConnectionError) as exc:
                    logger.error("request %s: the stream broke: %s", invocation.request_id, exc)
                    return response
                await response.write_eof()
                return response
        except EXCHANGE_ERRORS as exc:
            return _to_response(await self._lost(invocation, exc), invocation)

    # -- shutdown -------------------------------------------------------------------------------

    def container_exited(self) -> None:
        """Called when the container dies: its in-flight requests fail as their connections drop."""
        self._container_exited.set()
        for invocation in list(self._in_flight):
            logger.error("request %s: the container died while handling it", invocation.request_id)

    async def close(self) -> None:
        """Wait briefly for running invocations, then cancel the rest."""
        self._closing = True
        await self.progress.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()


def _zip_measured(
    zip_path: Path, request_id: str, body: Path | bytes, output_dir: Path
) -> tuple[Walk, int]:
    """:func:`zip_outputs`, and the zip's size (in the same thread: no stat on the loop)."""
    walk = zip_outputs(zip_path, request_id, body, output_dir)
    return walk, zip_path.stat().st_size if zip_path.exists() else 0


def _inline(reply: Reply, *, nvcf_status: str = "fulfilled") -> Result:
    """The container's answer as it is (its body in memory or in its file)."""
    body = reply.body
    return Result(
        reply.status,
        body.data,
        _relayed(reply.headers),
        nvcf_status=nvcf_status,
        body_path=body.path,
    )


def _cancelled(invocation: Invocation) -> Result:
    """The result of a request cancelled before the container answered (nobody collects it)."""
    logger.info("request %s: cancelled; the container call is closed", invocation.request_id)
    return _problem(WORKER_ERROR, 500, f"request {invocation.request_id} was cancelled")


def _problem(source: str, status: int, detail: str) -> Result:
    return Result(
        status,
        worker_problem(source, status, detail),
        {"Content-Type": "application/problem+json"},
        nvcf_status="errored",
    )


def _to_response(result: Result, invocation: Invocation) -> web.Response:
    response = web.Response(status=result.status, body=result.body, headers=result.headers)
    response.headers[names.REQUEST_ID] = invocation.request_id
    response.headers[names.STATUS] = result.nvcf_status
    return response
