"""NVCF's HTTP API, served locally with aiohttp, answering as NVCF's gateway does.

Routes follow NVCF's API: function and version reads, deployments, invocation
(``pexec``) with polling, assets, queues, and direct invocation (a
``function-id`` header on any path). Two routes under ``/_local/`` stand in
for the pre-signed S3 URLs NVCF hands out (asset uploads and large-result
downloads); like those, they need no API key, only the unguessable token in
their path. What the local NVCF shows of itself (``/metrics``, ``/_local/state``,
``/_local/series``, ``/_local/logs`` and the dashboard at ``/``) takes the key
as a bearer header or as the dashboard's cookie. Gateway errors are RFC 9457
problem details with ``title``, ``status`` and ``detail``, as NVCF's gateway
writes them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from nvcf_helpers.local.asset_routes import AssetRoutes
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.cloud import LocalCloud
from nvcf_helpers.local.direct_routes import DirectRoutes
from nvcf_helpers.local.gateway_http import (
    MAX_POLL_SECONDS,
    direct_route,
    header_problem,
    poll_seconds,
)
from nvcf_helpers.local.invocation_routes import MAX_BODY_BYTES
from nvcf_helpers.local.observe_routes import ObserveRoutes
from nvcf_helpers.local.problems import ApiError, gateway_problem, problem
from nvcf_helpers.local.shutdown import Housekeeping

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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Paths that show the local NVCF's data: with --api-key, the key as a header or a cookie.
KEYED_PATHS = frozenset({"/metrics", "/_local/state", "/_local/series", "/_local/logs"})


class LocalApi(DirectRoutes, ObserveRoutes, AssetRoutes, Housekeeping):
    """The handlers, bound to one function, its worker and its stores.

    Each group of routes lives in its own module (invocation, direct calls,
    functions and queues, what the local NVCF shows of itself, assets,
    shutdown); this class adds the middleware every route passes through, and
    the routing table.
    """

    def __init__(self, cloud: LocalCloud, assets: AssetStore, api_key: str | None) -> None:
        super().__init__(cloud, assets, api_key)
        cloud.on_forget = self._forgotten

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Route direct calls, check the key, and answer every error as problem details."""
        try:
            route = direct_route(request)
            if route is not None or request.path.startswith("/v2/nvcf/"):
                self._authorise(request)
            elif request.path in KEYED_PATHS and not self.key_accepted(request):
                raise ApiError(
                    401,
                    f"{request.path} needs the API key nvcf-helpers local was started with "
                    "(--api-key): send 'Authorization: Bearer <key>', or log in on the "
                    "dashboard at / (it keeps the key in a cookie)",
                    {"WWW-Authenticate": "Bearer"},
                )
            refusal = header_problem(request)
            if refusal is not None:
                raise ApiError(400, refusal)
            if route is not None:
                return await self.direct(request, route)
            return await handler(request)
        except ApiError as exc:
            return problem(exc.status, exc.detail, exc.headers)
        except web.HTTPMethodNotAllowed as exc:
            return problem(
                405,
                f"{request.method} is not allowed on {request.path}",
                {"Allow": ",".join(sorted(exc.allowed_methods))},
            )
        except web.HTTPNotFound:
            return problem(404, f"no such endpoint: {request.method} {request.path}")
        except Exception as exc:  # a bug: the caller still gets problem details, not a traceback
            logger.exception("%s %s: the local NVCF failed", request.method, request.path)
            return problem(
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
        deployments = "/v2/nvcf/deployments/functions/{function_id}" + version
        app.router.add_get("/v2/nvcf/functions", self.list_functions)
        app.router.add_post("/v2/nvcf/functions", self.create_function)
        app.router.add_get(fn + "/versions", self.list_versions)
        app.router.add_post(fn + "/versions", self.create_version)
        app.router.add_get(fn + version, self.get_version)
        app.router.add_delete(fn + version, self.delete_version)
        app.router.add_get(deployments, self.get_deployment)
        app.router.add_post(deployments, self.create_deployment)
        app.router.add_put(deployments, self.update_deployment)
        app.router.add_delete(deployments, self.delete_deployment)
        app.router.add_get("/v2/nvcf/supportedGpus", self.supported_gpus)
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
        self._observe_routes(app)
        return app

    def _observe_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/_local/state", self.state)
        app.router.add_get("/_local/series", self.series)
        app.router.add_get("/_local/logs", self.logs)
        app.router.add_post("/_local/login", self.login)
        app.router.add_post("/_local/logout", self.logout)
        app.router.add_get("/", self.dashboard)
        app.router.add_get("/_local/dashboard/{name:.+}", self.dashboard_file)


def build_app(cloud: LocalCloud, assets: AssetStore, api_key: str | None) -> web.Application:
    """The aiohttp application serving NVCF's API for the local NVCF's functions."""
    return LocalApi(cloud, assets, api_key).application()
