"""Direct invocation: a ``function-id`` header on any path reaches the container untouched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

import aiohttp
from aiohttp import web
from yarl import URL

from nvcf_helpers import names
from nvcf_helpers.local.gateway_http import gateway_headers, poll_seconds
from nvcf_helpers.local.invocation_routes import InvocationRoutes
from nvcf_helpers.local.store import Invocation, InvocationState
from nvcf_helpers.local.worker import Forward, Worker

__all__ = ["DirectRoutes"]

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

logger = logging.getLogger("nvcf_helpers.local")


class DirectRoutes(InvocationRoutes):
    """Direct calls, relayed as NVCF's direct routes relay them (no rewrap, zip or progress)."""

    async def direct(
        self, request: web.Request, route: tuple[str, str | None]
    ) -> web.StreamResponse:
        """A direct invocation: the request reaches the container at its own path, untouched.

        As NVCF's direct routes: it queues like any invocation, the worker adds
        its ``NVCF-*`` headers with compatibility mode off, and the answer
        streams back as the container sends it (no rewrap, zip or progress).
        """
        deployment = self._target_of(*route)
        poll = poll_seconds(request.headers, direct=True)
        self._check_accepting(deployment)
        version = deployment.version
        invocation = Invocation(version.function_id, version.version_id)
        early = await self._take_slot(deployment, invocation, poll)
        if early is not None:
            return early
        deadline = asyncio.get_running_loop().time() + poll + names.POLL_GRACE_SECONDS
        try:
            return await self._proxy(request, deployment.pick().worker, invocation, poll, deadline)
        finally:
            deployment.store.release_slot(invocation)

    async def _proxy(
        self,
        request: web.Request,
        worker: Worker,
        invocation: Invocation,
        poll: int,
        deadline: float,
    ) -> web.StreamResponse:
        invocation.state = InvocationState.RUNNING
        asset_dir, output_dir = worker._make_directories(invocation)
        try:
            forward = Forward(b"", list(request.headers.items()), (), time.monotonic() + poll)
            headers = worker._headers(invocation, forward, asset_dir, output_dir)
            headers[names.DISABLE_WORKER_COMPATIBILITY] = "true"
            if request.content_length is not None:
                headers["Content-Length"] = str(request.content_length)
            port = worker.function.spec.inference_port
            call = worker.session.request(
                request.method,
                URL(f"http://127.0.0.1:{port}{request.raw_path}", encoded=True),
                headers=headers,
                data=request.content.iter_chunked(1 << 16) if request.can_read_body else None,
                allow_redirects=False,
                skip_auto_headers=("Accept", "Content-Type"),
            )
            reply = await self._head(call, worker, invocation, deadline)
            if isinstance(reply, web.StreamResponse):
                return reply
            try:
                return await self._relay(request, invocation, reply)
            finally:
                reply.release()
        finally:
            worker.directories.release(output_dir)  # no assets: no asset directory

    async def _head(
        self,
        call: Awaitable[aiohttp.ClientResponse],
        worker: Worker,
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
                    result = await worker._lost(invocation, exc)
                    return self._plain(invocation, result)
            if stopped.done():
                return self._stopping_problem(invocation, queued=False)
            logger.warning(
                "request %s: the container sent no answer head within the poll window "
                "and %d s more: 504, as NVCF answers",
                invocation.request_id,
                names.POLL_GRACE_SECONDS,
            )
            return web.Response(status=504, headers=gateway_headers(invocation, 504))
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
        response.headers.update(gateway_headers(invocation, reply.status))
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
