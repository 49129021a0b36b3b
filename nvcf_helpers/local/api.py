"""NVCF's HTTP API, served locally with aiohttp, answering as NVCF's gateway does.

Routes follow NVCF's API: function and version reads, deployments, invocation
(``pexec``) with polling, assets, queues, and direct invocation (a
``function-id`` header on any path). Two routes under ``/_local/`` stand in
for the pre-signed S3 URLs NVCF hands out (asset uploads and large-result
downloads); like those, they need no API key, only the unguessable token in
their path. Gateway errors are RFC 9457 problem details with ``title``,
``status`` and ``detail``, as NVCF's gateway writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from nvcf_helpers import names
from nvcf_helpers.local.asset_store import AssetStore, UnknownAssetError, decode_metadata
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.store import (
    Invocation,
    InvocationState,
    InvocationStore,
    QueueFullError,
    Result,
)
from nvcf_helpers.local.worker import Forward, Worker

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_POLL_SECONDS",
    "ApiError",
    "LocalApi",
    "build_app",
    "gateway_problem",
    "poll_seconds",
]

logger = logging.getLogger("nvcf_helpers.local")

#: The largest invocation body NVCF accepts.
MAX_BODY_BYTES = names.MAX_REQUEST_BODY_BYTES
MAX_POLL_SECONDS = names.MAX_POLL_SECONDS
#: The largest asset S3 would take (5 GB).
MAX_ASSET_BYTES = 5 * 1000 * 1000 * 1000
#: NVCF's gateway lets browsers read the request id of every answer it relays.
EXPOSE_HEADERS = "Access-Control-Expose-Headers"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_EVENT_STREAM = "text/event-stream"
_PROBLEM_JSON = "application/problem+json"
# NVCF parses NVCF-POLL-SECONDS as a Rust u64: ASCII digits, an optional '+', at most 2**64-1.
_U64 = re.compile(r"\+?[0-9]+")
_U64_DIGITS = 20
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_CHUNK_BYTES = 1 << 20
_SHOWN_CHARACTERS = 40


class ApiError(Exception):
    """An answer other than success, carried up to the problem-details middleware."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def gateway_problem(status: int, detail: str) -> bytes:
    """A problem-details body as NVCF's gateway writes one: ``title``, ``status``, ``detail``.

    ``type`` is left out, which RFC 9457 reads as ``about:blank``.
    """
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = ""
    return json.dumps({"title": title, "status": status, "detail": detail}).encode("utf-8")


def _problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=gateway_problem(status, detail),
        content_type=_PROBLEM_JSON,
        headers=headers,
    )


def _shown(text: str) -> str:
    """A header value for a message: quoted, and cut short when it is long."""
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def poll_seconds(headers: Mapping[str, str], *, direct: bool = False) -> int:
    """The poll window of a request, as NVCF's gateway reads ``NVCF-POLL-SECONDS``.

    Absent: 60 s, or 1200 s when ``Accept`` is exactly ``text/event-stream``
    (not for direct calls). Values below 1 count as 1; above 3600, or not a
    whole number, are refused.

    Raises:
        ApiError: 400, "failed to parse poll duration", naming the value.
    """
    raw = headers.get(names.POLL_SECONDS)
    if raw is not None and not raw.isascii():
        logger.warning(
            "%s %s is not ASCII text: NVCF's gateway ignores it and waits the default",
            names.POLL_SECONDS,
            _shown(raw),
        )
        raw = None
    if raw is None:
        if not direct and headers.get("Accept") == _EVENT_STREAM:
            return names.DEFAULT_STREAM_POLL_SECONDS
        return names.DEFAULT_POLL_SECONDS
    digits = raw.removeprefix("+").lstrip("0") or "0"
    # Checked before int(): Python refuses to convert more than 4300 digits (a 500).
    seconds = int(digits) if _U64.fullmatch(raw) and len(digits) <= _U64_DIGITS else None
    if seconds is None or seconds >= 1 << 64 or seconds > names.MAX_POLL_SECONDS:
        raise ApiError(
            400,
            f"failed to parse poll duration: {names.POLL_SECONDS} is {_shown(raw)}; send "
            f"whole seconds up to {names.MAX_POLL_SECONDS} (0 counts as "
            f"{names.MIN_POLL_SECONDS})",
        )
    return max(seconds, names.MIN_POLL_SECONDS)


def nvcf_status(status: int) -> str:
    """``NVCF-STATUS`` of an answer NVCF's gateway relays: by its status code."""
    if status == 202:
        return "in-progress"
    return "fulfilled" if 200 <= status < 400 else "errored"


def _gateway_headers(invocation: Invocation, status: int) -> dict[str, str]:
    return {
        names.REQUEST_ID: invocation.request_id,
        names.STATUS: nvcf_status(status),
        EXPOSE_HEADERS: names.REQUEST_ID,
    }


def _parse_uuid(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def direct_route(request: web.Request) -> tuple[str, str | None] | None:
    """The function (and version) a direct invocation names, or ``None`` for a normal route.

    As NVCF's gateway: a ``function-id`` header holding a UUID (with an
    optional ``function-version-id``), else a host name that starts with
    ``<functionId>.`` or ``<versionId>.<functionId>.``. The stand-ins for
    S3's pre-signed URLs are never routed there.
    """
    if request.path.startswith("/_local/"):
        return None
    function_id = _parse_uuid(request.headers.get(names.DIRECT_FUNCTION_ID))
    if function_id is not None:
        return function_id, _parse_uuid(request.headers.get(names.DIRECT_FUNCTION_VERSION_ID))
    host = request.headers.get("Host", "")
    first = _parse_uuid(host[:36])
    if first is None:
        return None
    second = _parse_uuid(host[37:73]) if host[36:37] == "." else None
    return (second, first) if second is not None else (first, None)


def _header_problem(request: web.Request) -> str | None:
    """Why a request header cannot be handled (not UTF-8 text), or ``None``."""
    for name, value in request.headers.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "surrogateescape")[:_SHOWN_CHARACTERS]
            return (
                f"header {name} is not UTF-8 text ({shown!r}): send header values as "
                "ASCII or UTF-8 (NVCF cannot forward it either)"
            )
    return None


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


class LocalApi:
    """The handlers, bound to one function, its worker and its stores."""

    def __init__(
        self,
        function: LocalFunction,
        store: InvocationStore,
        assets: AssetStore,
        worker: Worker,
        api_key: str | None,
    ) -> None:
        self.function = function
        self.store = store
        self.assets = assets
        self.worker = worker
        self.api_key = api_key
        #: Set once a shutdown began: no new invocations, queued ones answered 503.
        self.stopping = False
        self._stopped = asyncio.Event()
        self._zip_expiry: dict[str, float] = {}
        self._housekeeping: list[asyncio.Task[None]] = []
        store.on_forget = self._forgotten

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Route direct calls, check the key, and answer every error as problem details."""
        try:
            route = direct_route(request)
            if route is not None or request.path.startswith("/v2/nvcf/"):
                self._authorise(request)
            problem = _header_problem(request)
            if problem is not None:
                raise ApiError(400, problem)
            if route is not None:
                return await self.direct(request, route)
            return await handler(request)
        except ApiError as exc:
            return _problem(exc.status, exc.detail, exc.headers)
        except web.HTTPMethodNotAllowed as exc:
            return _problem(
                405,
                f"{request.method} is not allowed on {request.path}",
                {"Allow": ",".join(sorted(exc.allowed_methods))},
            )
        except web.HTTPNotFound:
            return _problem(404, f"no such endpoint: {request.method} {request.path}")
        except Exception as exc:  # a bug: the caller still gets problem details, not a traceback
            logger.exception("%s %s: the local NVCF failed", request.method, request.path)
            return _problem(
                500,
                f"the local NVCF failed while answering {request.method} {request.path} "
                f"({type(exc).__name__}: {exc}); its log has the details: please report it",
            )

    def _authorise(self, request: web.Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if not header:
            raise ApiError(
                401,
                "the Authorization header is missing: send 'Authorization: Bearer <key>' "
                "with the key nvcf-helpers local was started with (--api-key)",
                {"WWW-Authenticate": "Bearer"},
            )
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            key.strip().encode("utf-8", "surrogateescape"), self.api_key.encode()
        ):
            raise ApiError(
                401,
                "the API key is wrong: send 'Authorization: Bearer <key>' with the key "
                "nvcf-helpers local was started with (--api-key)",
                {"WWW-Authenticate": "Bearer"},
            )

    # -- functions ----------------------------------------------------------------------------

    def _check_ids(self, function_id: str, version_id: str | None) -> None:
        if function_id != self.function.function_id:
            raise ApiError(
                404,
                f"function {function_id} not found: this local NVCF serves only function "
                f"{self.function.function_id} ({self.function.spec.name})",
            )
        if version_id is not None and version_id != self.function.version_id:
            raise ApiError(
                404,
                f"version {version_id} of function {function_id} not found: its only version "
                f"is {self.function.version_id}",
            )

    def _check_function(self, request: web.Request) -> None:
        self._check_ids(request.match_info["function_id"], request.match_info.get("version_id"))

    def _check_accepting(self) -> None:
        if self.stopping:
            raise ApiError(
                503,
                "the local NVCF is stopping: it takes no new invocations; invoke the function "
                "again once nvcf-helpers local runs again",
            )
        if self.function.status is not FunctionStatus.ACTIVE:
            reason = f" ({self.function.error})" if self.function.error else ""
            raise ApiError(
                503,
                f"function {self.function.spec.name} is {self.function.status.value}{reason}: "
                "it takes invocations only once ACTIVE (GET /v2/nvcf/functions shows its status)",
                {"Retry-After": "1"} if self.function.status is FunctionStatus.DEPLOYING else {},
            )

    async def list_functions(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions``."""
        return web.json_response({"functions": [self.function.to_json()]})

    async def list_versions(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions/{functionId}/versions``."""
        self._check_function(request)
        return web.json_response({"functions": [self.function.to_json()]})

    async def get_version(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions/{functionId}/versions/{functionVersionId}``."""
        self._check_function(request)
        return web.json_response({"function": self.function.to_json()})

    async def get_deployment(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/deployments/functions/{functionId}/versions/{functionVersionId}``."""
        self._check_function(request)
        function = self.function
        return web.json_response(
            {
                "deployment": {
                    "functionId": function.function_id,
                    "functionVersionId": function.version_id,
                    "functionName": function.spec.name,
                    "functionStatus": function.status.value,
                    "deploymentSpecifications": [
                        {
                            "backend": "local",
                            "gpu": "local",
                            "instanceType": "local",
                            "minInstances": 1,
                            "maxInstances": 1,
                            "maxRequestConcurrency": self.worker.max_concurrency,
                        }
                    ],
                }
            }
        )

    # -- invocation ---------------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        """``POST /v2/nvcf/pexec/functions/{functionId}[/versions/{versionId}]``."""
        self._check_function(request)
        poll = poll_seconds(request.headers)
        body = await self._read_body(request)
        asset_ids = self._asset_references(request)
        self._check_accepting()
        invocation = Invocation(self.function.function_id, self.function.version_id)
        forward = Forward(
            body=body,
            headers=list(request.headers.items()),
            asset_ids=asset_ids,
            poll_deadline=time.monotonic() + poll,
        )
        if _EVENT_STREAM in request.headers.get("Accept", ""):
            return await self._stream(request, invocation, forward, poll)
        self._enqueue(invocation, lambda: self.worker.submit(invocation, forward))
        try:
            return await self._answer(request, invocation, poll)
        except asyncio.CancelledError:
            self._caller_left(invocation)
            raise

    def _enqueue(
        self, invocation: Invocation, start: Callable[[], None], *, pollable: bool = True
    ) -> None:
        try:
            self.store.enqueue(invocation, start, pollable=pollable)
        except QueueFullError:
            raise ApiError(
                429,
                f"the function's queue is full ({self.store.queue_size} requests wait for the "
                "container, --queue-size): retry later, or raise --max-concurrency",
            ) from None

    def _caller_left(self, invocation: Invocation) -> None:
        """The caller hung up before any answer: nobody knows its id, so NVCF cancels it."""
        if invocation.result is not None:
            return  # it stays for a poll until it expires
        invocation.cancel()
        if self.store.withdraw(invocation):
            self.store.forget(invocation, "the caller left while it waited in the queue")
        else:
            invocation.abandoned = True

    async def _answer(
        self, request: web.Request, invocation: Invocation, poll: float
    ) -> web.StreamResponse:
        """Wait for the result, a progress update or the end of the poll window, as NVCF does.

        A result or an update answers at once; at the end of the window the
        answer is an empty 202, or 504 (the request dropped) when the request
        is still queued ``POLL_GRACE_SECONDS`` after it.
        """
        loop = asyncio.get_running_loop()
        window_end = loop.time() + poll
        while True:
            if invocation.result is not None:
                delivered = await self._deliver(request, invocation)
                return delivered if delivered is not None else self._accepted(invocation)
            update = invocation.take_update()
            if update is not None:
                return self._accepted(invocation, update)
            left = window_end - loop.time()
            if left <= 0:
                if invocation.dispatched:
                    return self._accepted(invocation)
                left += names.POLL_GRACE_SECONDS
                if left <= 0:
                    return self._gateway_timeout(invocation)
            await invocation.wait_for_change(left)

    def _accepted(
        self, invocation: Invocation, update: tuple[int, dict[str, Any] | None] | None = None
    ) -> web.Response:
        """A 202: empty, or carrying one progress update (NVCF's worker sends each once)."""
        invocation.touch()
        headers = _gateway_headers(invocation, 202)
        warning = self.worker.warning(invocation)
        if warning:
            headers[names.LOCAL_WARNING] = warning
        if update is None:
            return web.Response(status=202, headers=headers)
        percent, partial = update
        headers[names.PERCENT_COMPLETE] = str(percent)
        return web.Response(
            status=202,
            body=json.dumps(partial).encode("utf-8"),
            content_type="application/json",
            headers=headers,
        )

    def _gateway_timeout(self, invocation: Invocation) -> web.Response:
        """NVCF's 504: nobody took the request within poll + 2 s; it is dropped from the queue."""
        self.store.withdraw(invocation)
        invocation.cancel()
        reason = (
            f"request {invocation.request_id} waited in the queue past its poll window and "
            f"{names.POLL_GRACE_SECONDS} s more, so it was answered 504 and dropped, as NVCF "
            f"does: raise {names.POLL_SECONDS} or --max-concurrency"
        )
        logger.warning("%s", reason)
        self.store.forget(invocation, reason)
        return web.Response(status=504, headers=_gateway_headers(invocation, 504))

    async def _deliver(
        self, request: web.Request, invocation: Invocation
    ) -> web.StreamResponse | None:
        """Send the result; it is forgotten only once sent, else it waits for the next poll.

        ``None`` when it cannot be sent here: the caller is gone, or another
        poll is delivering it right now.
        """
        if not _connected(request):
            return None
        result = self.store.claim(invocation)
        if result is None:
            return None
        response = self._result_response(request, invocation, result)
        delivered = False
        try:
            await self._send(request, response, result)
            delivered = True
        except ConnectionError as exc:
            logger.info(
                "request %s: the caller left while its result was sent (%s); the result "
                "waits for the next status poll",
                invocation.request_id,
                exc,
            )
        finally:
            self.store.settle(invocation, delivered=delivered)
        if delivered and result.zip_token is not None:
            self._zip_expiry[result.zip_token] = time.monotonic() + self.store.result_ttl
        return response

    def _result_response(
        self, request: web.Request, invocation: Invocation, result: Result
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=result.status)
        for name, value in result.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                response.headers[name] = value
        response.headers.update(_gateway_headers(invocation, result.status))
        response.headers[names.STATUS] = result.nvcf_status
        if result.zip_token is not None:
            response.headers["Location"] = (
                f"{request.scheme}://{request.host}/_local/results/{result.zip_token}"
            )
        response.content_length = result.size
        return response

    async def _send(
        self, request: web.Request, response: web.StreamResponse, result: Result
    ) -> None:
        """Write the result; raises ``ConnectionError`` if the caller left before all of it."""
        body, path = result.body, result.body_path
        await response.prepare(request)
        if path is None:
            await response.write(body)
        else:
            with path.open("rb") as stream:
                while chunk := await asyncio.to_thread(stream.read, _CHUNK_BYTES):
                    await response.write(chunk)
        # Every byte went out: a caller that closes now has read its answer (and then
        # the final flush fails, which must not make the result count as undelivered).
        with contextlib.suppress(ConnectionError):
            await response.write_eof()

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2/nvcf/pexec/status/{requestId}``."""
        poll = poll_seconds(request.headers)
        invocation = self._invocation(request)
        return await self._answer(request, invocation, poll)

    def _invocation(self, request: web.Request) -> Invocation:
        request_id = request.match_info["request_id"]
        invocation = self.store.get(request_id)
        if invocation is None:
            reason = self.store.why_unknown(request_id)
            raise ApiError(
                404,
                f"request {request_id}: {reason}"
                if reason
                else f"request {request_id} is unknown: no invocation of this local NVCF has "
                "that id (a result is delivered once, and an id is forgotten once delivered)",
            )
        return invocation

    async def _read_body(self, request: web.Request) -> bytes:
        too_large = ApiError(
            413,
            f"the request body exceeds NVCF's limit of {MAX_BODY_BYTES} bytes: send large "
            f"inputs as assets (POST /v2/nvcf/assets, then {names.INPUT_ASSET_REFERENCES})",
        )
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        # read(n) returns what has arrived so far, not n bytes: read until the end.
        while chunk := await request.content.read(1 << 20):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            json.loads(body)
        except ValueError as exc:
            raise ApiError(
                400, f"the request body is not JSON ({exc}): NVCF takes a JSON body"
            ) from None
        return body

    def _asset_references(self, request: web.Request) -> tuple[str, ...]:
        """The assets ``NVCF-INPUT-ASSET-REFERENCES`` names: UUIDs, comma-separated."""
        raw = request.headers.get(names.INPUT_ASSET_REFERENCES, "")
        asset_ids = tuple(part.strip() for part in raw.split(",") if part.strip())
        for asset_id in asset_ids:
            if _parse_uuid(asset_id) is None:
                raise ApiError(
                    400,
                    f"{names.INPUT_ASSET_REFERENCES}: {_shown(asset_id)} is not an asset id "
                    "(a UUID): give the assetId POST /v2/nvcf/assets answered",
                )
        try:
            self.assets.check_references(list(asset_ids))
        except UnknownAssetError as exc:
            raise ApiError(404, f"{names.INPUT_ASSET_REFERENCES}: {exc}") from None
        return asset_ids

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The stand-in for the pre-signed URL of a large result's zip."""
        path = self.worker.zips.get(request.match_info["token"])
        if path is None or not path.exists():
            raise ApiError(
                404,
                "no such result: the link is wrong, expired (--result-ttl) or the local NVCF "
                "restarted",
            )
        return web.FileResponse(path, headers={"Content-Type": "application/zip"})

    # -- streams and direct calls ---------------------------------------------------------------

    async def _stream(
        self, request: web.Request, invocation: Invocation, forward: Forward, poll: int
    ) -> web.StreamResponse:
        """A ``text/event-stream`` invocation: the worker relays it once it has a slot."""
        early = await self._take_slot(invocation, poll)
        if early is not None:
            return early
        try:
            return await self.worker.stream(invocation, forward, request)
        finally:
            self.store.release_slot(invocation)

    async def _take_slot(self, invocation: Invocation, poll: int) -> web.Response | None:
        """Queue a request that is answered in place; an answer if it never gets a slot."""
        self._enqueue(invocation, lambda: None, pollable=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + poll + names.POLL_GRACE_SECONDS
        try:
            while not invocation.dispatched:
                if self.stopping:
                    self.store.withdraw(invocation)
                    return self._stopping_problem(invocation, queued=True)
                left = deadline - loop.time()
                if left <= 0:
                    return self._gateway_timeout(invocation)
                await invocation.wait_for_change(left)
        except asyncio.CancelledError:
            self.store.withdraw(invocation)
            self.store.release_slot(invocation)
            raise
        return None

    async def direct(
        self, request: web.Request, route: tuple[str, str | None]
    ) -> web.StreamResponse:
        """A direct invocation: the request reaches the container at its own path, untouched.

        As NVCF's direct routes: it queues like any invocation, the worker adds
        its ``NVCF-*`` headers with compatibility mode off, and the answer
        streams back as the container sends it (no rewrap, zip or progress).
        """
        self._check_ids(*route)
        poll = poll_seconds(request.headers, direct=True)
        self._check_accepting()
        invocation = Invocation(self.function.function_id, self.function.version_id)
        early = await self._take_slot(invocation, poll)
        if early is not None:
            return early
        deadline = asyncio.get_running_loop().time() + poll + names.POLL_GRACE_SECONDS
        try:
            return await self._proxy(request, invocation, poll, deadline)
        finally:
            self.store.release_slot(invocation)

    async def _proxy(
        self, request: web.Request, invocation: Invocation, poll: int, deadline: float
    ) -> web.StreamResponse:
        invocation.state = InvocationState.RUNNING
        asset_dir, output_dir = self.worker._make_directories(invocation)
        try:
            forward = Forward(b"", list(request.headers.items()), (), time.monotonic() + poll)
            headers = self.worker._headers(invocation, forward, asset_dir, output_dir)
            headers[names.DISABLE_WORKER_COMPATIBILITY] = "true"
            if request.content_length is not None:
                headers["Content-Length"] = str(request.content_length)
            port = self.function.spec.inference_port
            call = self.worker.session.request(
                request.method,
                URL(f"http://127.0.0.1:{port}{request.raw_path}", encoded=True),
                headers=headers,
                data=request.content.iter_chunked(1 << 16) if request.can_read_body else None,
                allow_redirects=False,
                skip_auto_headers=("Accept", "Content-Type"),
            )
            reply = await self._head(call, invocation, deadline)
            if isinstance(reply, web.StreamResponse):
                return reply
            try:
                return await self._relay(request, invocation, reply)
            finally:
                reply.release()
        finally:
            await asyncio.to_thread(_remove_trees, asset_dir, output_dir)

    async def _head(
        self,
        call: Awaitable[aiohttp.ClientResponse],
        invocation: Invocation,
        deadline: float,
    ) -> aiohttp.ClientResponse | web.StreamResponse:
        """The container's answer head; 504 past the deadline, 503 when stopping, as NVCF."""
        pending = asyncio.ensure_future(call)
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            await asyncio.wait(
                {pending, stopped}, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if pending.done():
                try:
                    return pending.result()
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                    result = await self.worker._lost(invocation, exc)
                    return self._plain(invocation, result)
            if stopped.done():
                return self._stopping_problem(invocation, queued=False)
            logger.warning(
                "request %s: the container sent no answer head within the poll window "
                "and %d s more: 504, as NVCF answers",
                invocation.request_id,
                names.POLL_GRACE_SECONDS,
            )
            return web.Response(status=504, headers=_gateway_headers(invocation, 504))
        finally:
            stopped.cancel()
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    async def _relay(
        self, request: web.Request, invocation: Invocation, reply: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        """Stream the container's status, headers and body to the caller, unchanged."""
        response = web.StreamResponse(status=reply.status, reason=reply.reason)
        for name, value in reply.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                response.headers.add(name, value)
        response.headers.update(_gateway_headers(invocation, reply.status))
        await response.prepare(request)
        try:
            async for chunk in reply.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientError, OSError) as exc:
            logger.error(
                "request %s: the container's answer broke off: %s", invocation.request_id, exc
            )
            response.force_close()
            return response
        await response.write_eof()
        return response

    def _plain(self, invocation: Invocation, result: Result) -> web.Response:
        response = web.Response(status=result.status, body=result.body, headers=result.headers)
        response.headers.update(_gateway_headers(invocation, result.status))
        response.headers[names.STATUS] = result.nvcf_status
        return response

    # -- shutdown -------------------------------------------------------------------------------

    def _stopping_result(self, invocation: Invocation, *, queued: bool, grace: float) -> Result:
        if queued:
            detail = (
                f"the local NVCF is stopping, and request {invocation.request_id} was still "
                "waiting in the queue: invoke it again once nvcf-helpers local runs again"
            )
        else:
            detail = (
                f"the local NVCF is stopping, and request {invocation.request_id} did not "
                f"finish within the {grace:g} s it was given: invoke it again once "
                "nvcf-helpers local runs again"
            )
        return Result(
            503,
            gateway_problem(503, detail),
            {"Content-Type": _PROBLEM_JSON},
            nvcf_status="errored",
        )

    def _stopping_problem(self, invocation: Invocation, *, queued: bool) -> web.Response:
        return self._plain(invocation, self._stopping_result(invocation, queued=queued, grace=0))

    async def shutdown(self, grace: float) -> None:
        """Give every caller a final answer: results within ``grace`` seconds, else 503.

        Queued requests are answered 503 at once; running ones get their result
        if it lands within ``grace``, else a 503 problem saying the local NVCF
        is stopping. New invocations are refused with 503 from now on.
        """
        self.stopping = True
        for invocation in self.store.queued():
            self.store.withdraw(invocation)
            invocation.cancel()
            invocation.finish(self._stopping_result(invocation, queued=True, grace=grace))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.store.running and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._stopped.set()
        for invocation in self.store.running:
            invocation.cancel()
            invocation.finish(self._stopping_result(invocation, queued=False, grace=grace))
            logger.warning(
                "request %s: not finished within the %g s grace: the local NVCF is stopping",
                invocation.request_id,
                grace,
            )

    # -- housekeeping ---------------------------------------------------------------------------

    async def _start_sweeper(self, app: web.Application) -> None:
        self._housekeeping = [
            asyncio.create_task(self._sweep_forever()),
            asyncio.create_task(self._follow_health()),
        ]

    async def _stop_sweeper(self, app: web.Application) -> None:
        for task in self._housekeeping:
            task.cancel()
        await asyncio.gather(*self._housekeeping, return_exceptions=True)
        await self.store.close()

    async def _follow_health(self) -> None:
        """Serve the queue again once an unhealthy container recovers."""
        while True:
            await asyncio.sleep(0.1)
            if self.store.queued():
                self.store.poke()

    async def _sweep_forever(self) -> None:
        interval = min(60.0, max(0.2, self.store.result_ttl / 4))
        while True:
            await asyncio.sleep(interval)
            self.store.sweep()
            now = time.monotonic()
            for token, expiry in list(self._zip_expiry.items()):
                if expiry < now:
                    self._remove_zip(token)

    def _forgotten(self, invocation: Invocation) -> None:
        if invocation.result is not None and invocation.result.zip_token is not None:
            self._remove_zip(invocation.result.zip_token)

    def _remove_zip(self, token: str) -> None:
        self._zip_expiry.pop(token, None)
        path = self.worker.zips.pop(token, None)
        if path is not None:
            path.unlink(missing_ok=True)

    # -- queues -------------------------------------------------------------------------------

    async def queue_length(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/queues/functions/{functionId}[/versions/{versionId}]``."""
        self._check_function(request)
        function = self.function
        if function.status not in (FunctionStatus.ACTIVE, FunctionStatus.DEPLOYING):
            raise ApiError(
                404,
                f"function {function.function_id} has no ACTIVE or DEPLOYING version (it is "
                f"{function.status.value}), so it has no queue to show",
            )
        return web.json_response(
            {
                "functionId": function.function_id,
                "queues": [
                    {
                        "functionVersionId": function.version_id,
                        "functionName": function.spec.name,
                        "functionStatus": function.status.value,
                        "queueDepth": len(self.store.queued(function.function_id)),
                    }
                ],
            }
        )

    async def queue_position(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/queues/{requestId}/position``."""
        invocation = self._invocation(request)
        return web.json_response(
            {
                "requestId": invocation.request_id,
                "positionInQueue": min(self.store.position(invocation), 1000),
            }
        )

    # -- assets -------------------------------------------------------------------------------

    async def create_asset(self, request: web.Request) -> web.Response:
        """``POST /v2/nvcf/assets`` with ``{"contentType", "description"}``."""
        try:
            document: Any = await request.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or not all(
            isinstance(document.get(key), str) and document.get(key)
            for key in ("contentType", "description")
        ):
            raise ApiError(
                400,
                "the body must be a JSON object with string 'contentType' and 'description', "
                'e.g. {"contentType": "image/png", "description": "input image"}',
            )
        record = self.assets.create(document["contentType"], document["description"])
        upload_url = (
            f"{request.scheme}://{request.host}/_local/uploads/{record.asset_id}/{record.token}"
        )
        return web.json_response({**record.to_json(), "uploadUrl": upload_url})

    async def list_assets(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/assets``."""
        return web.json_response({"assets": [record.to_json() for record in self.assets.records()]})

    async def get_asset(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/assets/{assetId}``."""
        record = self.assets.get(request.match_info["asset_id"])
        if record is None:
            raise ApiError(404, f"asset {request.match_info['asset_id']} not found")
        return web.json_response({"asset": record.to_json()})

    async def delete_asset(self, request: web.Request) -> web.Response:
        """``DELETE /v2/nvcf/assets/{assetId}``."""
        if not self.assets.delete(request.match_info["asset_id"]):
            raise ApiError(404, f"asset {request.match_info['asset_id']} not found")
        return web.Response(status=204)

    async def upload(self, request: web.Request) -> web.Response:
        """The stand-in for an asset's pre-signed upload URL (an S3 ``PUT``).

        The signed ``x-amz-meta-nvcf-asset-description`` may carry non-ASCII
        text RFC 2047-encoded, as S3 takes metadata (or as raw UTF-8).
        """
        record = self.assets.get(request.match_info["asset_id"])
        if record is None or not hmac.compare_digest(
            record.token.encode(), request.match_info["token"].encode()
        ):
            raise ApiError(403, "the upload URL is not valid: create the asset again")
        sent_description = request.headers.get(names.ASSET_DESCRIPTION)
        for header, sent, expected in (
            ("Content-Type", request.headers.get("Content-Type"), record.content_type),
            (
                names.ASSET_DESCRIPTION,
                None if sent_description is None else decode_metadata(sent_description),
                record.description,
            ),
        ):
            if sent != expected:
                raise ApiError(
                    403,
                    f"the signature does not match: header {header} is {sent!r} but the asset "
                    f"was created with {expected!r}; send exactly the signed headers",
                )
        if request.content_length is not None and request.content_length > MAX_ASSET_BYTES:
            raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
        record.size = await self._store_upload(request, self.assets.path(record.asset_id))
        record.uploaded = True
        return web.Response(status=200)

    async def _store_upload(self, request: web.Request, path: Path) -> int:
        partial = path.with_name(path.name + ".upload")
        size = 0
        try:
            with partial.open("wb") as stream:
                async for chunk in request.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_ASSET_BYTES:
                        raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
                    await asyncio.to_thread(stream.write, chunk)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return size

    # -- the application ----------------------------------------------------------------------

    def application(self) -> web.Application:
        """The aiohttp application serving these handlers."""
        app = web.Application(middlewares=[self.middleware])
        app.on_startup.append(self._start_sweeper)
        app.on_cleanup.append(self._stop_sweeper)
        fn = "/v2/nvcf/functions/{function_id}"
        version = "/versions/{version_id}"
        pexec = "/v2/nvcf/pexec/functions/{function_id}"
        queues = "/v2/nvcf/queues/functions/{function_id}"
        app.router.add_get("/v2/nvcf/functions", self.list_functions)
        app.router.add_get(fn + "/versions", self.list_versions)
        app.router.add_get(fn + version, self.get_version)
        app.router.add_get(
            "/v2/nvcf/deployments/functions/{function_id}" + version, self.get_deployment
        )
        app.router.add_post(pexec, self.invoke)
        app.router.add_post(pexec + version, self.invoke)
        app.router.add_get("/v2/nvcf/pexec/status/{request_id}", self.status)
        app.router.add_get(queues, self.queue_length)
        app.router.add_get(queues + version, self.queue_length)
        app.router.add_get("/v2/nvcf/queues/{request_id}/position", self.queue_position)
        app.router.add_post("/v2/nvcf/assets", self.create_asset)
        app.router.add_get("/v2/nvcf/assets", self.list_assets)
        app.router.add_get("/v2/nvcf/assets/{asset_id}", self.get_asset)
        app.router.add_delete("/v2/nvcf/assets/{asset_id}", self.delete_asset)
        app.router.add_put("/_local/uploads/{asset_id}/{token}", self.upload)
        app.router.add_get("/_local/results/{token}", self.download)
        return app


def _remove_trees(*directories: Path) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def build_app(
    function: LocalFunction,
    store: InvocationStore,
    assets: AssetStore,
    worker: Worker,
    api_key: str | None,
) -> web.Application:
    """The aiohttp application serving NVCF's API for one function."""
    return LocalApi(function, store, assets, worker, api_key).application()
