"""Function, version and deployment reads, and queue lengths and positions."""

from __future__ import annotations

import logging

from aiohttp import web

from nvcf_helpers.local.api_base import ApiBase
from nvcf_helpers.local.function import FunctionStatus
from nvcf_helpers.local.problems import ApiError

__all__ = ["FunctionRoutes"]

logger = logging.getLogger("nvcf_helpers.local")


class FunctionRoutes(ApiBase):
    """``/v2/nvcf/functions``, ``/v2/nvcf/deployments`` and ``/v2/nvcf/queues``."""

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
