"""What every group of the gateway's handlers shares: its state and its checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.gateway_http import gateway_headers
from nvcf_helpers.local.problems import ApiError, stopping_result
from nvcf_helpers.local.store import Invocation, InvocationStore, QueueFullError, Result
from nvcf_helpers.local.worker import Worker

__all__ = ["ApiBase"]

logger = logging.getLogger("nvcf_helpers.local")


class ApiBase:
    """The state the handlers share, bound to one function, its worker and its stores."""

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
        return web.Response(status=504, headers=gateway_headers(invocation, 504))

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

    def _plain(self, invocation: Invocation, result: Result) -> web.Response:
        response = web.Response(status=result.status, body=result.body, headers=result.headers)
        response.headers.update(gateway_headers(invocation, result.status))
        response.headers[names.STATUS] = result.nvcf_status
        return response

    def _stopping_problem(self, invocation: Invocation, *, queued: bool) -> web.Response:
        return self._plain(invocation, stopping_result(invocation, queued=queued, grace=0))
