"""The worker: what NVCF's worker does between the invocation API and the container.

For each invocation it creates the request's asset and large-output
directories, copies the input assets, sets every ``NVCF-*`` header from the
function and the request (replacing any the caller sent), forwards the body to
``inferenceUrl`` on ``inferencePort``, has the ``progress`` file watched while the
container works, and turns the answer into a result: the body (200), a zip of
the body and the large outputs (302), or a problem-details error. The
directories are removed as soon as the result has been collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from nvcf_helpers import names
from nvcf_helpers.context import HEADER_NAMES, RequestContext
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.function import LOCAL_NCA_ID, FunctionStatus, LocalFunction
from nvcf_helpers.local.progress_watch import ProgressWatcher
from nvcf_helpers.local.store import Invocation, InvocationState, InvocationStore, Result
from nvcf_helpers.outputs import PARTIAL_SUFFIX
from nvcf_helpers.progress import PROGRESS_FILE

__all__ = ["CONTRACT_WARNING_HEADER", "Forward", "Worker", "problem_body"]

logger = logging.getLogger("nvcf_helpers.local")

#: Response header that reports a contract violation found in a container's answer.
CONTRACT_WARNING_HEADER = names.LOCAL_WARNING
#: NVCF's worker sends the time left in the poll window in lower case.
POLL_HEADER = names.POLL_SECONDS.lower()
ASSET_REFERENCES_HEADER = names.INPUT_ASSET_REFERENCES

# Client headers that never reach the container: the worker's own names (so a
# caller cannot spoof them), the API's own headers, the caller's key, and
# hop-by-hop headers that belong to the caller's connection, not the worker's.
_STRIPPED = frozenset(
    {name.lower() for name in HEADER_NAMES.values()}
    | {
        POLL_HEADER,
        ASSET_REFERENCES_HEADER.lower(),
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "expect",
    }
)
# Container response headers that the API answers with its own values.
_NOT_RELAYED = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)
_EXIT_NOTICE_SECONDS = 2.0
_CONTAINER_ERROR_TYPE = "urn:nvcf-worker-service:problem-details:inference-service-error"


def problem_body(
    status: int, detail: str, *, kind: str = "", request_id: str | None = None
) -> bytes:
    """A problem-details (RFC 9457) JSON body in the shape NVCF answers errors with."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    slug = kind or title.lower().replace(" ", "-")
    problem: dict[str, Any] = {
        "type": _CONTAINER_ERROR_TYPE
        if kind == "container"
        else f"urn:nvcf:problem-details:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id is not None:
        problem["requestId"] = request_id
        problem["instance"] = f"/v2/nvcf/pexec/status/{request_id}"
    return json.dumps(problem).encode("utf-8")


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
        session: the HTTP session that talks to the container.
        max_concurrency: requests the container is given at once (NVCF's
            ``maxRequestConcurrency``); the rest wait in the function's queue.
        max_response_bytes: the largest body passed back inline.
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
        max_response_bytes: int,
    ) -> None:
        self.function = function
        self.store = store
        self.assets = assets
        self.session = session
        self.max_response_bytes = max_response_bytes
        self.asset_root = root / "inputAssets"
        self.output_root = root / "response"
        self.zip_root = root / "results"
        for directory in (self.asset_root, self.output_root, self.zip_root):
            directory.mkdir(mode=0o755, exist_ok=True)
        self.zips: dict[str, Path] = {}
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: set[Invocation] = set()
        self.progress = ProgressWatcher()
        self._container_exited = asyncio.Event()
        spec = function.spec
        self.url = f"http://127.0.0.1:{spec.inference_port}{spec.inference_path}"

    # -- invocation ---------------------------------------------------------------------------

    def submit(self, invocation: Invocation, forward: Forward) -> None:
        """Queue an invocation; its result lands in the store when the container answers."""
        self.store.add(invocation)
        task = asyncio.create_task(self._run(invocation, forward))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, invocation: Invocation, forward: Forward) -> None:
        directories: list[Path] = []
        try:
            async with self._slots:
                result = await self._call(invocation, forward, directories)
        except Exception as exc:  # the result must always land, or the caller polls forever
            logger.exception("request %s: the local NVCF failed", invocation.request_id)
            result = _problem(500, f"the local NVCF failed: {exc}", invocation.request_id)
        invocation.finish(result)
        # After the result is out, as NVCF's worker does: yielding once lets the waiting
        # handler send the answer before the (slow, on ext4) rmdirs run.
        await asyncio.sleep(0)
        await _remove_directories(*directories)
        logger.info(
            "request %s: %d in %.3f s",
            invocation.request_id,
            result.status,
            time.monotonic() - invocation.accepted_at,
        )

    def _refusal(self, invocation: Invocation) -> Result | None:
        if self.function.status is FunctionStatus.ACTIVE:
            return None
        reason = f": {self.function.error}" if self.function.error else ""
        return _problem(
            503,
            f"function {self.function.spec.name} is {self.function.status.value}{reason}; "
            "invoke it once it is ACTIVE",
            invocation.request_id,
            nvcf_status="errored",
        )

    async def _call(
        self, invocation: Invocation, forward: Forward, directories: list[Path]
    ) -> Result:
        refusal = self._refusal(invocation)
        if refusal is not None:
            return refusal
        invocation.state = InvocationState.RUNNING
        asset_dir, output_dir = self._make_directories(invocation)
        directories += (asset_dir, output_dir)
        self._in_flight.add(invocation)
        self.progress.watch(invocation, output_dir)
        try:
            if forward.asset_ids:
                await asyncio.to_thread(self.assets.copy_into, list(forward.asset_ids), asset_dir)
            headers = self._headers(invocation, forward, asset_dir, output_dir)
            try:
                async with self.session.post(self.url, data=forward.body, headers=headers) as reply:
                    body = await reply.read()
                    status = reply.status
                    reply_headers = reply.headers
            except (aiohttp.ClientError, OSError) as exc:
                return await self._lost(invocation, exc)
            finally:
                self.progress.unwatch(invocation)
            return await self._package(invocation, status, reply_headers, body, output_dir)
        finally:
            self.progress.unwatch(invocation)
            self._in_flight.discard(invocation)

    async def _lost(self, invocation: Invocation, exc: BaseException) -> Result:
        # A dropped connection is most often a dying container: give its exit a moment
        # to be noticed, so the caller learns the real cause.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._container_exited.wait(), _EXIT_NOTICE_SECONDS)
        if self.function.status is FunctionStatus.ERROR:
            detail = (
                f"the container died while handling the request ({self.function.error}); "
                "see its output above"
            )
        else:
            detail = (
                f"the container closed the connection without answering "
                f"({type(exc).__name__}: {exc}); see its output above"
            )
        logger.error("request %s: %s", invocation.request_id, detail)
        return _problem(500, detail, invocation.request_id, nvcf_status="errored")

    def _make_directories(self, invocation: Invocation) -> tuple[Path, Path]:
        asset_dir = self.asset_root / invocation.request_id
        output_dir = self.output_root / invocation.request_id
        asset_dir.mkdir(mode=0o755)
        output_dir.mkdir()
        os.chmod(output_dir, 0o777)  # noqa: S103 - NVCF's worker creates it world-writable
        return asset_dir, output_dir

    def _headers(
        self, invocation: Invocation, forward: Forward, asset_dir: Path, output_dir: Path
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value) for name, value in forward.headers if name.lower() not in _STRIPPED
        )
        function = self.function
        poll_left = max(0, round(forward.poll_deadline - time.monotonic()))
        context = RequestContext(
            request_id=invocation.request_id,
            subject=f"local.{function.function_id}",
            nca_id=LOCAL_NCA_ID,
            function_name=function.spec.name,
            function_id=function.function_id,
            function_version_id=function.version_id,
            asset_dir=None if function.spec.kind == "helm" else asset_dir,
            large_output_dir=output_dir,
            max_response_bytes=self.max_response_bytes,
            nspect_id="local",
            backend="local",
            instance_type="local",
            region="local",
            env="local",
            asset_ids=tuple(forward.asset_ids),
        )
        headers.update(context.to_headers())
        headers[POLL_HEADER] = str(poll_left)
        return headers

    async def _package(
        self,
        invocation: Invocation,
        status: int,
        reply_headers: Mapping[str, str],
        body: bytes,
        output_dir: Path,
    ) -> Result:
        if status >= 400:
            return _container_error(invocation, status, body)
        headers = {
            name: value for name, value in reply_headers.items() if name.lower() not in _NOT_RELAYED
        }
        # Most calls leave nothing (or only 'progress'): a scandir on the event loop
        # answers that in microseconds; walking a real tree goes to a thread.
        with os.scandir(output_dir) as entries:
            left = any(entry.name != PROGRESS_FILE for entry in entries)
        files = await asyncio.to_thread(_large_outputs, output_dir) if left else []
        partials = [name for name in files if name.endswith(PARTIAL_SUFFIX)]
        if partials:
            warning = (
                f"contract violation: the container left unfinished large outputs "
                f"{', '.join(partials)}; NVCF ships them as they are: write '<name>.partial' "
                "and rename it when complete (nvcf_helpers.large_output does)"
            )
            logger.warning("request %s: %s", invocation.request_id, warning)
            headers[CONTRACT_WARNING_HEADER] = warning
        if not files and len(body) <= self.max_response_bytes:
            return Result(status, body, headers)
        token = secrets.token_urlsafe(24)
        zip_path = self.zip_root / f"{token}.zip"
        await asyncio.to_thread(_zip, zip_path, invocation.request_id, body, output_dir, files)
        self.zips[token] = zip_path
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return Result(302, b"", headers, zip_token=token)

    # -- streaming ------------------------------------------------------------------------------

    async def stream(
        self, invocation: Invocation, forward: Forward, request: web.Request
    ) -> web.StreamResponse:
        """Forward a ``text/event-stream`` request and relay the events as they arrive."""
        async with self._slots:
            refusal = self._refusal(invocation)
            if refusal is not None:
                return _to_response(refusal, invocation)
            invocation.state = InvocationState.RUNNING
            asset_dir, output_dir = self._make_directories(invocation)
            self._in_flight.add(invocation)
            try:
                if forward.asset_ids:
                    await asyncio.to_thread(
                        self.assets.copy_into, list(forward.asset_ids), asset_dir
                    )
                headers = self._headers(invocation, forward, asset_dir, output_dir)
                return await self._relay(invocation, forward, headers, request)
            finally:
                self._in_flight.discard(invocation)
                await _remove_directories(asset_dir, output_dir)

    async def _relay(
        self,
        invocation: Invocation,
        forward: Forward,
        headers: CIMultiDict[str],
        request: web.Request,
    ) -> web.StreamResponse:
        try:
            async with self.session.post(self.url, data=forward.body, headers=headers) as reply:
                if reply.status >= 400:
                    body = await reply.read()
                    return _to_response(
                        _container_error(invocation, reply.status, body), invocation
                    )
                response = web.StreamResponse(status=reply.status)
                response.content_type = reply.content_type
                response.headers[names.REQUEST_ID] = invocation.request_id
                response.headers[names.STATUS] = "fulfilled"
                response.headers["Cache-Control"] = "no-cache"
                await response.prepare(request)
                try:
                    async for chunk in reply.content.iter_any():
                        await response.write(chunk)
                except (aiohttp.ClientError, OSError) as exc:
                    logger.error("request %s: the stream broke: %s", invocation.request_id, exc)
                    return response
                await response.write_eof()
                return response
        except (aiohttp.ClientError, OSError) as exc:
            return _to_response(await self._lost(invocation, exc), invocation)

    # -- shutdown -------------------------------------------------------------------------------

    def container_exited(self) -> None:
        """Called when the container dies: its in-flight requests fail as their connections drop."""
        self._container_exited.set()
        for invocation in list(self._in_flight):
            logger.error("request %s: the container died while handling it", invocation.request_id)

    async def close(self) -> None:
        """Wait briefly for running invocations, then cancel the rest."""
        await self.progress.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _problem(status: int, detail: str, request_id: str, *, nvcf_status: str = "errored") -> Result:
    return Result(
        status,
        problem_body(status, detail, request_id=request_id),
        {"Content-Type": "application/problem+json"},
        nvcf_status=nvcf_status,
    )


def _container_error(invocation: Invocation, status: int, body: bytes) -> Result:
    """NVCF's mapping of a container 4xx/5xx: its JSON ``error`` text becomes ``detail``."""
    detail = "Inference error"
    with contextlib.suppress(ValueError):
        document = json.loads(body)
        if isinstance(document, dict) and document.get("error") not in (None, ""):
            error = document["error"]
            detail = error if isinstance(error, str) else json.dumps(error)
    return Result(
        status,
        problem_body(status, detail, kind="container", request_id=invocation.request_id),
        {"Content-Type": "application/problem+json"},
        nvcf_status="errored",
    )


def _to_response(result: Result, invocation: Invocation) -> web.Response:
    response = web.Response(status=result.status, body=result.body, headers=result.headers)
    response.headers[names.REQUEST_ID] = invocation.request_id
    response.headers[names.STATUS] = result.nvcf_status
    return response


def _large_outputs(output_dir: Path) -> list[str]:
    """Every file the container left, as paths relative to the directory (``progress`` aside)."""
    names = []
    for path in sorted(output_dir.rglob("*")):
        relative = path.relative_to(output_dir).as_posix()
        if relative == PROGRESS_FILE or not path.is_file():
            continue
        names.append(relative)
    return names


def _zip(zip_path: Path, request_id: str, body: bytes, output_dir: Path, files: list[str]) -> None:
    with zipfile.ZipFile(
        zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
    ) as bundle:
        bundle.writestr(names.response_member(request_id), body)
        for name in files:
            bundle.write(output_dir / name, name)


async def _remove_directories(*directories: Path) -> None:
    """Remove request directories: empty ones at once, full trees in a thread."""
    full = []
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:
            full.append(directory)
    if full:
        await asyncio.to_thread(_remove_trees, full)


def _remove_trees(directories: list[Path]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
