"""Invocation and polling: ``pexec``, its status polls, and event streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.api_base import ApiBase
from nvcf_helpers.local.asset_store import UnknownAssetError
from nvcf_helpers.local.deployment import Deployment
from nvcf_helpers.local.gateway_http import (
    EVENT_STREAM,
    connected,
    gateway_headers,
    parse_uuid,
    poll_seconds,
)
from nvcf_helpers.local.problems import ApiError, shown
from nvcf_helpers.local.store import Invocation, Result
from nvcf_helpers.local.worker import Forward

__all__ = ["MAX_BODY_BYTES", "InvocationRoutes"]

#: The largest invocation body NVCF accepts.
MAX_BODY_BYTES = names.MAX_REQUEST_BODY_BYTES
_CHUNK_BYTES = 1 << 20

logger = logging.getLogger("nvcf_helpers.local")


class _OneWrite(web.StreamResponse):
    """A streamed answer whose head goes out with the first piece of its body, in one send.

    (``web.Response`` buffers its head this way; a stream sends it on ``prepare``
    unless told otherwise. Older aiohttp versions ignore the attribute.)
    """

    _send_headers_immediately = False


class InvocationRoutes(ApiBase):
    """``POST /v2/nvcf/pexec/functions/...`` and ``GET /v2/nvcf/pexec/status/...``."""

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        """``POST /v2/nvcf/pexec/functions/{functionId}[/versions/{versionId}]``."""
        deployment = self._target(request)
        poll = poll_seconds(request.headers)
        body = await self._read_body(request)
        asset_ids = self._asset_references(request)
        self._check_accepting(deployment)
        version = deployment.version
        invocation = Invocation(version.function_id, version.version_id)
        forward = Forward(
            body=body,
            headers=list(request.headers.items()),
            asset_ids=asset_ids,
            poll_deadline=time.monotonic() + poll,
        )
        if EVENT_STREAM in request.headers.get("Accept", ""):
            return await self._stream(request, deployment, invocation, forward, poll)
        self._enqueue(deployment, invocation, lambda: deployment.submit(invocation, forward))
        try:
            return await self._answer(request, deployment, invocation, poll)
        except asyncio.CancelledError:
            self._caller_left(deployment, invocation)
            raise

    def _caller_left(self, deployment: Deployment, invocation: Invocation) -> None:
        """The caller hung up before any answer: nobody knows its id, so NVCF cancels it."""
        if invocation.result is not None:
            return  # it stays for a poll until it expires
        invocation.cancel()
        store = deployment.store
        if store.withdraw(invocation):
            store.forget(invocation, "the caller left while it waited in the queue")
        else:
            invocation.abandoned = True

    async def _answer(
        self, request: web.Request, deployment: Deployment, invocation: Invocation, poll: float
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
                delivered = await self._deliver(request, deployment, invocation)
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
                    return self._gateway_timeout(deployment, invocation)
            await invocation.wait_for_change(left)

    def _accepted(
        self, invocation: Invocation, update: tuple[int, dict[str, Any] | None] | None = None
    ) -> web.Response:
        """A 202: empty, or carrying one progress update (NVCF's worker sends each once)."""
        invocation.touch()
        headers = gateway_headers(invocation, 202)
        warning = self._progress_warning(invocation)
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

    async def _deliver(
        self, request: web.Request, deployment: Deployment, invocation: Invocation
    ) -> web.StreamResponse | None:
        """Send the result; it is forgotten only once sent, else it waits for the next poll.

        ``None`` when it cannot be sent here: the caller is gone, or another
        poll is delivering it right now.
        """
        if not connected(request):
            return None
        store = deployment.store
        result = store.claim(invocation)
        if result is None:
            return None
        response = self._result_response(request, invocation, result)
        delivered = False
        sent: list[bool] = []  # one entry once every byte of the body is written
        try:
            await self._send(request, response, result, sent)
            delivered = True
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the caller closes; one that closed
            # after the last byte has read its answer.
            delivered = bool(sent)
            raise
        except ConnectionError as exc:
            logger.info(
                "request %s: the caller left while its result was sent (%s); the result "
                "waits for the next status poll",
                invocation.request_id,
                exc,
            )
        finally:
            store.settle(invocation, delivered=delivered)
        if delivered and result.zip_token is not None:
            self._zip_expiry[result.zip_token] = time.monotonic() + store.result_ttl
        return response

    def _progress_warning(self, invocation: Invocation) -> str | None:
        for deployment in self.cloud:
            for instance in deployment.instances:
                warning = instance.worker.warning(invocation)
                if warning:
                    return warning
        return None

    def _result_response(
        self, request: web.Request, invocation: Invocation, result: Result
    ) -> web.StreamResponse:
        response = _OneWrite(status=result.status)
        for name, value in result.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                response.headers[name] = value
        response.headers.update(gateway_headers(invocation, result.status))
        response.headers[names.STATUS] = result.nvcf_status
        if result.zip_token is not None:
            response.headers["Location"] = (
                f"{request.scheme}://{request.host}/_local/results/{result.zip_token}"
            )
        response.content_length = result.size
        return response

    async def _send(
        self, request: web.Request, response: web.StreamResponse, result: Result, sent: list[bool]
    ) -> None:
        """Write the result; raises ``ConnectionError`` if the caller left before all of it.

        ``sent`` gets an entry once the last byte of the body is written.
        """
        body, path = result.body, result.body_path
        await response.prepare(request)
        if path is None:
            await response.write(body)
        else:
            left = result.size
            with path.open("rb") as stream:
                # Stop at the known size: one more read would give a caller that
                # already has everything the time to close and cancel us.
                while left > 0:
                    chunk = await asyncio.to_thread(stream.read, min(_CHUNK_BYTES, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    await response.write(chunk)
        sent.append(True)
        # Every byte went out: a caller that closes now has read its answer (and then
        # the final flush fails, which must not make the result count as undelivered).
        with contextlib.suppress(ConnectionError):
            await response.write_eof()

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``GET /v2/nvcf/pexec/status/{requestId}``."""
        poll = poll_seconds(request.headers)
        deployment, invocation = self._invocation(request)
        return await self._answer(request, deployment, invocation, poll)

    async def _read_body(self, request: web.Request) -> bytes:
        too_large = ApiError(
            413,
            f"the request body exceeds NVCF's limit of {MAX_BODY_BYTES} bytes: send large "
            f"inputs as assets (POST /v2/nvcf/assets, then {names.INPUT_ASSET_REFERENCES})",
        )
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise too_large
        if request.content_length is not None:
            body = await request.content.read()  # all of it: its length is within the limit
        else:
            body = await self._read_chunked(request, too_large)
        try:
            json.loads(body)
        except ValueError as exc:
            raise ApiError(
                400, f"the request body is not JSON ({exc}): NVCF takes a JSON body"
            ) from None
        return body

    @staticmethod
    async def _read_chunked(request: web.Request, too_large: ApiError) -> bytes:
        chunks: list[bytes] = []
        size = 0
        # read(n) returns what has arrived so far, not n bytes: read until the end.
        while chunk := await request.content.read(1 << 20):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _asset_references(self, request: web.Request) -> tuple[str, ...]:
        """The assets ``NVCF-INPUT-ASSET-REFERENCES`` names: UUIDs, comma-separated."""
        raw = request.headers.get(names.INPUT_ASSET_REFERENCES, "")
        asset_ids = tuple(part.strip() for part in raw.split(",") if part.strip())
        for asset_id in asset_ids:
            if parse_uuid(asset_id) is None:
                raise ApiError(
                    400,
                    f"{names.INPUT_ASSET_REFERENCES}: {shown(asset_id)} is not an asset id "
                    "(a UUID): give the assetId POST /v2/nvcf/assets answered",
                )
        try:
            self.assets.check_references(list(asset_ids))
        except UnknownAssetError as exc:
            raise ApiError(404, f"{names.INPUT_ASSET_REFERENCES}: {exc}") from None
        return asset_ids

    async def _stream(
        self,
        request: web.Request,
        deployment: Deployment,
        invocation: Invocation,
        forward: Forward,
        poll: int,
    ) -> web.StreamResponse:
        """A ``text/event-stream`` invocation: the worker relays it once it has a slot."""
        early = await self._take_slot(deployment, invocation, poll)
        if early is not None:
            return early
        try:
            return await deployment.pick().worker.stream(invocation, forward, request)
        finally:
            deployment.store.release_slot(invocation)

    async def _take_slot(
        self, deployment: Deployment, invocation: Invocation, poll: int
    ) -> web.Response | None:
        """Queue a request that is answered in place; an answer if it never gets a slot."""
        store = deployment.store
        self._enqueue(deployment, invocation, lambda: None, pollable=False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + poll + names.POLL_GRACE_SECONDS
        try:
            while not invocation.dispatched:
                if self.stopping:
                    store.withdraw(invocation)
                    return self._stopping_problem(invocation, queued=True)
                left = deadline - loop.time()
                if left <= 0:
                    return self._gateway_timeout(deployment, invocation)
                await invocation.wait_for_change(left)
        except asyncio.CancelledError:
            store.withdraw(invocation)
            store.release_slot(invocation)
            raise
        return None
