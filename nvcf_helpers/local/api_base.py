"""What every group of the gateway's handlers shares: its state and its checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.cloud import LocalCloud
from nvcf_helpers.local.deployment import Deployment
from nvcf_helpers.local.function import FunctionStatus
from nvcf_helpers.local.gateway_http import gateway_headers
from nvcf_helpers.local.problems import ApiError, stopping_result
from nvcf_helpers.local.registry import RegistryError
from nvcf_helpers.local.store import Invocation, QueueFullError, Result

__all__ = ["ApiBase", "registry_errors"]

logger = logging.getLogger("nvcf_helpers.local")

_SERVING = (FunctionStatus.ACTIVE, FunctionStatus.DEGRADING)


class registry_errors:
    """Turn a :class:`RegistryError` into the API's problem answer."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, RegistryError):
            raise ApiError(exc.status, exc.detail) from None


class ApiBase:
    """The state the handlers share: the local NVCF's functions and deployments, and assets."""

    def __init__(self, cloud: LocalCloud, assets: AssetStore, api_key: str | None) -> None:
        self.cloud = cloud
        self.assets = assets
        self.api_key = api_key
        #: Set once a shutdown began: no new invocations, queued ones answered 503.
        self.stopping = False
        self._stopped = asyncio.Event()
        self._zip_expiry: dict[str, float] = {}
        self._housekeeping: list[asyncio.Task[None]] = []

    def _target_of(self, function_id: str, version_id: str | None) -> Deployment:
        with registry_errors():
            return self.cloud.target(function_id, version_id)

    def _target(self, request: web.Request) -> Deployment:
        """The deployment a request names by its path (``function_id``, ``version_id``)."""
        return self._target_of(
            request.match_info["function_id"], request.match_info.get("version_id")
        )

    def _check_accepting(self, deployment: Deployment) -> None:
        if self.stopping:
            raise ApiError(
                503,
                "the local NVCF is stopping: it takes no new invocations; invoke the function "
                "again once nvcf-helpers local runs again",
            )
        version = deployment.version
        if version.status not in _SERVING:
            reason = f" ({version.error})" if version.error else ""
            raise ApiError(
                503,
                f"function {version.name} is {version.status.value}{reason}: it takes "
                "invocations only once ACTIVE (GET /v2/nvcf/functions shows its status)",
                {"Retry-After": "1"} if version.status is FunctionStatus.DEPLOYING else {},
            )

    def _enqueue(
        self,
        deployment: Deployment,
        invocation: Invocation,
        start: Callable[[], None],
        *,
        pollable: bool = True,
    ) -> None:
        store = deployment.store
        try:
            store.enqueue(invocation, start, pollable=pollable)
        except QueueFullError:
            raise ApiError(
                429,
                f"the function's queue is full ({store.queue_size} requests wait for the "
                "container, --queue-size): retry later, or deploy more instances",
            ) from None

    def _gateway_timeout(self, deployment: Deployment, invocation: Invocation) -> web.Response:
        """NVCF's 504: nobody took the request within poll + 2 s; it is dropped from the queue."""
        store = deployment.store
        store.withdraw(invocation)
        invocation.cancel()
        reason = (
            f"request {invocation.request_id} waited in the queue past its poll window and "
            f"{names.POLL_GRACE_SECONDS} s more, so it was answered 504 and dropped, as NVCF "
            f"does: raise {names.POLL_SECONDS}, maxRequestConcurrency or the instances"
        )
        logger.warning("%s", reason)
        store.forget(invocation, reason)
        return web.Response(status=504, headers=gateway_headers(invocation, 504))

    def _invocation(self, request: web.Request) -> tuple[Deployment, Invocation]:
        request_id = request.match_info["request_id"]
        found = self.cloud.find(request_id)
        if found is None:
            reason = self.cloud.why_unknown(request_id)
            raise ApiError(
                404,
                f"request {request_id}: {reason}"
                if reason
                else f"request {request_id} is unknown: no invocation of this local NVCF has "
                "that id (a result is delivered once, and an id is forgotten once delivered)",
            )
        return found

    def _plain(self, invocation: Invocation, result: Result) -> web.Response:
        response = web.Response(status=result.status, body=result.body, headers=result.headers)
        response.headers.update(gateway_headers(invocation, result.status))
        response.headers[names.STATUS] = result.nvcf_status
        return response

    def _stopping_problem(self, invocation: Invocation, *, queued: bool) -> web.Response:
        return self._plain(invocation, stopping_result(invocation, queued=queued, grace=0))
