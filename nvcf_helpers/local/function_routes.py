"""The function API: functions, versions, deployments, queues, as NVCF's answers them."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from nvcf_helpers.errors import SpecError
from nvcf_helpers.local.api_base import ApiBase, registry_errors
from nvcf_helpers.local.function import FunctionStatus
from nvcf_helpers.local.problems import ApiError
from nvcf_helpers.local.registry import FunctionVersion
from nvcf_helpers.spec import DeploymentSpec, FunctionSpec, parse_deployment, parse_spec

__all__ = ["FunctionRoutes"]

logger = logging.getLogger("nvcf_helpers.local")

#: What ``GET /v2/nvcf/supportedGpus`` offers: the one kind of machine a laptop is.
LOCAL_GPU = "local"


class FunctionRoutes(ApiBase):
    """``/v2/nvcf/functions``, ``/v2/nvcf/deployments``, ``/v2/nvcf/queues``, ``supportedGpus``."""

    # -- reads --------------------------------------------------------------------------------

    def _describe(self, version: FunctionVersion) -> dict[str, Any]:
        body = version.to_json()
        deployment = self.cloud.deployments.get(version.version_id)
        info = deployment.health_info() if deployment is not None else None
        if info is None and version.error:
            info = {"error": version.error, **({"fix": version.fix} if version.fix else {})}
        elif info is not None and version.status is not FunctionStatus.ACTIVE and version.error:
            info = {**info, "error": info.get("error", version.error)}
        if info is not None:
            body["healthInfo"] = info
        return body

    def _version(self, request: web.Request) -> FunctionVersion:
        with registry_errors():
            return self.cloud.registry.get(
                request.match_info["function_id"], request.match_info["version_id"]
            )

    async def list_functions(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions``: every version of every function."""
        versions = self.cloud.registry.functions()
        return web.json_response({"functions": [self._describe(v) for v in versions]})

    async def list_versions(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions/{functionId}/versions``."""
        with registry_errors():
            versions = self.cloud.registry.versions(request.match_info["function_id"])
        return web.json_response({"functions": [self._describe(v) for v in versions]})

    async def get_version(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/functions/{functionId}/versions/{functionVersionId}``."""
        return web.json_response({"function": self._describe(self._version(request))})

    # -- registration -------------------------------------------------------------------------

    async def create_function(self, request: web.Request) -> web.Response:
        """``POST /v2/nvcf/functions``: a new function, its first version INACTIVE."""
        spec = _definition(await _json_body(request))
        version = self.cloud.register(spec)
        logger.info(
            "function %s registered: id %s, version %s",
            spec.name,
            version.function_id,
            version.version_id,
        )
        return web.json_response({"function": self._describe(version)})

    async def create_version(self, request: web.Request) -> web.Response:
        """``POST /v2/nvcf/functions/{functionId}/versions``: another version, INACTIVE."""
        spec = _definition(await _json_body(request))
        with registry_errors():
            version = self.cloud.register(spec, request.match_info["function_id"])
        return web.json_response({"function": self._describe(version)})

    async def delete_version(self, request: web.Request) -> web.Response:
        """``DELETE /v2/nvcf/functions/{functionId}/versions/{functionVersionId}``."""
        with registry_errors():
            await self.cloud.delete(
                request.match_info["function_id"], request.match_info["version_id"]
            )
        return web.Response(status=204)

    # -- deployments --------------------------------------------------------------------------

    def _deployment_body(self, version: FunctionVersion) -> dict[str, Any]:
        deployment = self.cloud.deployments.get(version.version_id)
        body: dict[str, Any] = {
            "functionId": version.function_id,
            "functionVersionId": version.version_id,
            "functionName": version.name,
            "functionStatus": version.status.value,
            "deploymentSpecifications": [spec.to_json() for spec in version.deployment or ()],
        }
        if deployment is not None:
            body["instances"] = [
                {
                    "instance": instance.index,
                    "status": instance.state.status.value,
                    "inferencePort": instance.state.spec.inference_port,
                    "takingWork": instance.state.taking_work,
                    **(
                        {"healthInfo": info}
                        if (info := instance.state.health_info()) is not None
                        else {}
                    ),
                }
                for instance in deployment.instances
            ]
        if version.error:
            body["healthInfo"] = [
                {
                    "gpu": LOCAL_GPU,
                    "backend": LOCAL_GPU,
                    "instanceType": LOCAL_GPU,
                    "error": version.error + (f"; fix: {version.fix}" if version.fix else ""),
                }
            ]
        return {"deployment": body}

    async def get_deployment(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/deployments/functions/{functionId}/versions/{functionVersionId}``."""
        version = self._version(request)
        if version.deployment is None:
            raise ApiError(
                404,
                f"version {version.version_id} of function {version.name} has no deployment "
                f"(it is {version.status.value}): create one with POST on this path",
            )
        return web.json_response(self._deployment_body(version))

    async def create_deployment(self, request: web.Request) -> web.Response:
        """``POST /v2/nvcf/deployments/...``: start instances; DEPLOYING, then ACTIVE or ERROR."""
        version = self._version(request)
        specs = _deployment(await _json_body(request))
        with registry_errors():
            await self.cloud.deploy(version, specs)
        return web.json_response(self._deployment_body(version))

    async def update_deployment(self, request: web.Request) -> web.Response:
        """``PUT /v2/nvcf/deployments/...``: new specifications; the instances follow."""
        version = self._version(request)
        specs = _deployment(await _json_body(request))
        with registry_errors():
            await self.cloud.update(version, specs)
        return web.json_response(self._deployment_body(version))

    async def delete_deployment(self, request: web.Request) -> web.Response:
        """``DELETE /v2/nvcf/deployments/...``: stop the instances; the version is INACTIVE."""
        version = self._version(request)
        with registry_errors():
            await self.cloud.undeploy(version)
        return web.json_response({"function": self._describe(version)})

    async def supported_gpus(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/supportedGpus``: the local NVCF runs everything on this machine."""
        return web.json_response({"gpus": [LOCAL_GPU]})

    # -- queues -------------------------------------------------------------------------------

    async def queue_length(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/queues/functions/{functionId}[/versions/{versionId}]``."""
        function_id = request.match_info["function_id"]
        version_id = request.match_info.get("version_id")
        with registry_errors():
            versions = (
                [self.cloud.registry.get(function_id, version_id)]
                if version_id
                else self.cloud.registry.versions(function_id)
            )
        shown = [
            v for v in versions if v.status in (FunctionStatus.ACTIVE, FunctionStatus.DEPLOYING)
        ]
        if not shown:
            states = ", ".join(sorted({v.status.value for v in versions}))
            raise ApiError(
                404,
                f"function {function_id} has no ACTIVE or DEPLOYING version (it is {states}), "
                "so it has no queue to show",
            )
        queues = []
        for version in shown:
            deployment = self.cloud.deployments.get(version.version_id)
            depth = len(deployment.store.queued()) if deployment is not None else 0
            queues.append(
                {
                    "functionVersionId": version.version_id,
                    "functionName": version.name,
                    "functionStatus": version.status.value,
                    "queueDepth": depth,
                }
            )
        return web.json_response({"functionId": function_id, "queues": queues})

    async def queue_position(self, request: web.Request) -> web.Response:
        """``GET /v2/nvcf/queues/{requestId}/position``."""
        deployment, invocation = self._invocation(request)
        return web.json_response(
            {
                "requestId": invocation.request_id,
                "positionInQueue": min(deployment.store.position(invocation), 1000),
            }
        )


async def _json_body(request: web.Request) -> Any:
    """The request's JSON body; 400 naming the problem when it is not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not JSON ({exc}): send a JSON object") from None


def _definition(body: Any) -> FunctionSpec:
    """A function definition NVCF's API accepts; 400 naming every problem otherwise."""
    try:
        return parse_spec(body, "the function definition")
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None


def _deployment(body: Any) -> tuple[DeploymentSpec, ...]:
    """Deployment specifications NVCF's API accepts; 400 naming every problem otherwise."""
    try:
        return parse_deployment(body, "the deployment")
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None
