"""NVCF's HTTP API, served locally with aiohttp.

Routes follow the API tables of NVCF's documentation: function and version
reads, deployments, invocation (``pexec``) with polling, assets, queues. Two
routes under ``/_local/`` stand in for the pre-signed S3 URLs NVCF hands out
(asset uploads and large-result downloads); like those, they need no API key,
only the unguessable token in their path.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.asset_store import AssetStore, UnknownAssetError
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.store import Invocation, InvocationStore
from nvcf_helpers.local.worker import (
    ASSET_REFERENCES_HEADER,
    Forward,
    Worker,
    problem_body,
)

__all__ = ["MAX_BODY_BYTES", "MAX_POLL_SECONDS", "build_app"]

logger = logging.getLogger("nvcf_helpers.local")

#: The largest invocation body NVCF accepts.
MAX_BODY_BYTES = names.MAX_REQUEST_BODY_BYTES
DEFAULT_POLL_SECONDS = names.DEFAULT_POLL_SECONDS
MAX_POLL_SECONDS = names.MAX_POLL_SECONDS
#: The largest asset S3 would take (5 GB).
MAX_ASSET_BYTES = 5 * 1000 * 1000 * 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success, carried up to the problem-details middleware."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=problem_body(status, detail),
        content_type="application/problem+json",
        headers=headers,
    )


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

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Check the bearer key on API routes and answer every error as problem details."""
        try:
            if request.path.startswith("/v2/nvcf/"):
                self._authorise(request)
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
            key.strip().encode(), self.api_key.encode()
        ):
            raise ApiError(
                401,
                "the API key is wrong: send 'Authorization: Bearer <key>' with the key "
                "nvcf-helpers local was started with (--api-key)",
                {"WWW-Authenticate": "Bearer"},
            )

    # -- functions ----------------------------------------------------------------------------

    def _check_function(self, request: web.Request) -> None:
        function_id = request.match_info["function_id"]
        if function_id != self.function.function_id:
            raise ApiError(
                404,
                f"function {function_id} not found: this local NVCF serves only function "
                f"{self.function.function_id} ({self.function.spec.name})",
            )
        version_id = request.match_info.get("version_id")
        if version_id is not None and version_id != self.function.version_id:
            raise ApiError(
                404,
                f"version {version_id} of function {function_id} not found: its only version "
                f"is {self.function.version_id}",
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
        body = await self._read_body(request)
        poll_seconds = _poll_seconds(request)
        asset_ids = self._asset_references(request)
        if self.function.status is not FunctionStatus.ACTIVE:
            reason = f" ({self.function.error})" if self.function.error else ""
            raise ApiError(
                503,
                f"function {self.function.spec.name} is {self.function.status.value}{reason}: "
                "it takes invocations only once ACTIVE (GET /v2/nvcf/functions shows its status)",
                {"Retry-After": "1"} if self.function.status is FunctionStatus.DEPLOYING else {},
            )
        invocation = Invocation(self.function.function_id, self.function.version_id)
        forward = Forward(
            body=body,
            headers=list(request.headers.items()),
            asset_ids=asset_ids,
            poll_deadline=time.monotonic() + poll_seconds,
        )
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self.worker.stream(invocation, forward, request)
        self.worker.submit(invocation, forward)
        await invocation.wait(poll_seconds)
        return self._answer(request, invocation)

    async def status(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/pexec/status/{requestId}``."""
        invocation = self._invocation(request)
        await invocation.wait(_poll_seconds(request))
        return self._answer(request, invocation)

    def _invocation(self, request: web.Request) -> Invocation:
        request_id = request.match_info["request_id"]
        invocation = self.store.get(request_id)
        if invocation is None:
            raise ApiError(
                404,
                f"request {request_id} is unknown or its result was already delivered "
                "(a result is delivered exactly once)",
            )
        return invocation

    def _answer(self, request: web.Request, invocation: Invocation) -> web.Response:
        if invocation.result is not None:
            result = self.store.take(invocation)
            if result is None:
                raise ApiError(
                    404,
                    f"the result of request {invocation.request_id} was "
                    "already delivered to another caller",
                )
            headers = dict(result.headers)
            headers[names.REQUEST_ID] = invocation.request_id
            headers[names.STATUS] = result.nvcf_status
            if result.zip_token is not None:
                headers["Location"] = (
                    f"{request.scheme}://{request.host}/_local/results/{result.zip_token}"
                )
            return web.Response(status=result.status, body=result.body, headers=headers)
        headers = {
            names.REQUEST_ID: invocation.request_id,
            names.STATUS: invocation.state.value,
            names.PERCENT_COMPLETE: str(invocation.progress),
        }
        if invocation.partial_response is None:
            return web.Response(status=202, headers=headers)
        return web.json_response(invocation.partial_response, status=202, headers=headers)

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
        raw = request.headers.get(ASSET_REFERENCES_HEADER, "")
        asset_ids = tuple(part.strip() for part in raw.split(",") if part.strip())
        try:
            self.assets.check_references(list(asset_ids))
        except UnknownAssetError as exc:
            raise ApiError(400, f"{ASSET_REFERENCES_HEADER}: {exc}") from None
        return asset_ids

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The stand-in for the pre-signed URL of a large result's zip."""
        path = self.worker.zips.get(request.match_info["token"])
        if path is None or not path.exists():
            raise ApiError(404, "no such result: the link is wrong or the local NVCF restarted")
        return web.FileResponse(path, headers={"Content-Type": "application/zip"})

    # -- queues -------------------------------------------------------------------------------

    async def queue_length(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/queues/functions/{functionId}[/versions/{versionId}]``."""
        self._check_function(request)
        function = self.function
        return web.json_response(
            {
                "functionId": function.function_id,
                "queues": [
                    {
                        "functionVersionId": function.version_id,
                        "functionName": function.spec.name,
                        "functionStatus": function.status.value,
                        "queueLength": len(self.store.queued(function.function_id)),
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
        """The stand-in for an asset's pre-signed upload URL (an S3 ``PUT``)."""
        record = self.assets.get(request.match_info["asset_id"])
        if record is None or not hmac.compare_digest(
            record.token.encode(), request.match_info["token"].encode()
        ):
            raise ApiError(403, "the upload URL is not valid: create the asset again")
        for header, expected in (
            ("Content-Type", record.content_type),
            (names.ASSET_DESCRIPTION, record.description),
        ):
            sent = request.headers.get(header)
            if sent != expected:
                raise ApiError(
                    403,
                    f"the signature does not match: header {header} is {sent!r} but the asset "
                    f"was created with {expected!r}; send exactly the signed headers",
                )
        if request.content_length is not None and request.content_length > MAX_ASSET_BYTES:
            raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
        path = self.assets.path(record.asset_id)
        partial = path.with_name(path.name + ".upload")
        size = 0
        try:
            with partial.open("wb") as stream:
                async for chunk in request.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_ASSET_BYTES:
                        raise ApiError(413, f"an asset holds at most {MAX_ASSET_BYTES} bytes")
                    stream.write(chunk)
            partial.replace(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        record.uploaded = True
        record.size = size
        return web.Response(status=200)


def _poll_seconds(request: web.Request) -> int:
    raw = request.headers.get(names.POLL_SECONDS)
    if raw is None:
        return DEFAULT_POLL_SECONDS
    if not raw.strip().isdigit():
        raise ApiError(
            400,
            f"header {names.POLL_SECONDS} is {raw!r}: expected whole seconds, "
            f"0 to {MAX_POLL_SECONDS}",
        )
    seconds = int(raw)
    if seconds > MAX_POLL_SECONDS:
        logger.warning(
            "%s %d is over the maximum: waiting %d s",
            names.POLL_SECONDS,
            seconds,
            MAX_POLL_SECONDS,
        )
    return min(seconds, MAX_POLL_SECONDS)


def build_app(
    function: LocalFunction,
    store: InvocationStore,
    assets: AssetStore,
    worker: Worker,
    api_key: str | None,
) -> web.Application:
    """The aiohttp application serving NVCF's API for one function."""
    api = LocalApi(function, store, assets, worker, api_key)
    app = web.Application(middlewares=[api.middleware])
    fn = "/v2/nvcf/functions/{function_id}"
    version = "/versions/{version_id}"
    app.router.add_get("/v2/nvcf/functions", api.list_functions)
    app.router.add_get(fn + "/versions", api.list_versions)
    app.router.add_get(fn + version, api.get_version)
    app.router.add_get("/v2/nvcf/deployments/functions/{function_id}" + version, api.get_deployment)
    app.router.add_post("/v2/nvcf/pexec/functions/{function_id}", api.invoke)
    app.router.add_post("/v2/nvcf/pexec/functions/{function_id}" + version, api.invoke)
    app.router.add_get("/v2/nvcf/pexec/status/{request_id}", api.status)
    app.router.add_get("/v2/nvcf/queues/functions/{function_id}", api.queue_length)
    app.router.add_get("/v2/nvcf/queues/functions/{function_id}" + version, api.queue_length)
    app.router.add_get("/v2/nvcf/queues/{request_id}/position", api.queue_position)
    app.router.add_post("/v2/nvcf/assets", api.create_asset)
    app.router.add_get("/v2/nvcf/assets", api.list_assets)
    app.router.add_get("/v2/nvcf/assets/{asset_id}", api.get_asset)
    app.router.add_delete("/v2/nvcf/assets/{asset_id}", api.delete_asset)
    app.router.add_put("/_local/uploads/{asset_id}/{token}", api.upload)
    app.router.add_get("/_local/results/{token}", api.download)
    return app
