"""The local NVCF as a whole: the registry, each deployed version's runtime, shared files.

:class:`LocalCloud` is what the HTTP API and the server drive: register and
remove versions, deploy, update and undeploy them (starting and stopping
their instances), and find the deployment an invocation goes to, with NVCF's
answers when there is none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.deployment import Deployment, DeploymentSettings, Launch
from nvcf_helpers.local.function import FunctionStatus
from nvcf_helpers.local.logs import LogStore
from nvcf_helpers.local.metrics import Metrics, VersionState
from nvcf_helpers.local.registry import FunctionVersion, Registry, RegistryError
from nvcf_helpers.local.store import Invocation
from nvcf_helpers.local.worker import WorkerFiles
from nvcf_helpers.spec import DeploymentSpec, FunctionSpec

__all__ = ["LocalCloud"]

logger = logging.getLogger("nvcf_helpers.local")

#: Seconds an undeployed instance has between SIGTERM and SIGKILL.
UNDEPLOY_GRACE_SECONDS = 5.0


class LocalCloud:
    """Functions, versions and the deployments running them.

    Args:
        settings: what every deployment shares (root, limits).
        assets: the account's asset store.
        launches: the command (or image) that runs each ``containerImage``.
        default_launch: what runs an image that ``launches`` does not name,
            if anything (the ``--spec`` function's command).
    """

    def __init__(
        self,
        settings: DeploymentSettings,
        *,
        assets: AssetStore,
        launches: Mapping[str, Launch] | None = None,
        default_launch: Launch | None = None,
    ) -> None:
        self.settings = settings
        self.assets = assets
        self.launches = dict(launches or {})
        self.default_launch = default_launch
        self.registry = Registry()
        self.files = WorkerFiles.under(settings.root, settings.root / "uncollected")
        self.deployments: dict[str, Deployment] = {}
        #: Called with each invocation a deployment's store forgets undelivered.
        self.on_forget: Callable[[Invocation], None] | None = None
        #: Every instance's output lines.
        self.logs = LogStore(settings.log_budget_bytes)
        #: The metrics of every version, the recent invocations and the series.
        self.metrics = Metrics(self.states)

    # -- lifecycle ----------------------------------------------------------------------------

    def register(self, spec: FunctionSpec, function_id: str | None = None) -> FunctionVersion:
        """A new function (or, with ``function_id``, a new version of one): INACTIVE."""
        if function_id is None:
            return self.registry.create_function(spec)
        return self.registry.create_version(function_id, spec)

    def launch_for(self, version: FunctionVersion) -> Launch:
        """What runs this version's container here.

        Raises:
            RegistryError: 400, nothing is known to run its image.
        """
        image = version.spec.container_image
        launch = self.launches.get(image or "") or self.default_launch
        if launch is None:
            known = ", ".join(sorted(self.launches)) or "none"
            raise RegistryError(
                400,
                f"the local NVCF has no command for image {image!r} (it knows: {known}): start "
                f"it with --image-command '{image}=COMMAND' (a command with {{port}} can run "
                "many instances), or --spec with -- COMMAND",
            )
        return launch

    def prepare(self, version: FunctionVersion, specs: Sequence[DeploymentSpec]) -> Deployment:
        """Deploy a version: DEPLOYING, its instances made (:meth:`Deployment.start` starts them).

        Raises:
            RegistryError: 400, the version cannot be deployed (not INACTIVE,
                no command for its image, many instances of a command without
                ``{port}``).
        """
        launch = self.launch_for(version)
        self.registry.deploy(version, specs)
        deployment = Deployment(
            version,
            launch,
            self.settings,
            files=self.files,
            assets=self.assets,
            metrics=self.metrics.version(version.function_id, version.version_id),
            logs=self.logs,
        )
        try:
            deployment.prepare()
        except NvcfHelperError as exc:
            self.registry.undeploy(version)
            raise RegistryError(400, str(exc)) from None
        deployment.store.on_forget = self.on_forget
        self.deployments[version.version_id] = deployment
        return deployment

    async def deploy(self, version: FunctionVersion, specs: Sequence[DeploymentSpec]) -> Deployment:
        """Deploy a version and start its instances; it is DEPLOYING until enough are healthy."""
        deployment = self.prepare(version, specs)
        await deployment.start()
        return deployment

    async def update(self, version: FunctionVersion, specs: Sequence[DeploymentSpec]) -> None:
        """New deployment specifications: the instances follow (more, or fewer)."""
        deployment = self._deployment_of(version)
        before = version.deployment
        self.registry.update_deployment(version, specs)
        try:
            deployment.check_launch()
        except NvcfHelperError as exc:
            version.deployment = before
            raise RegistryError(400, str(exc)) from None
        await deployment.scale()

    async def undeploy(self, version: FunctionVersion) -> None:
        """Stop the version's instances: INACTIVE; its queued requests are refused."""
        deployment = self._deployment_of(version)
        del self.deployments[version.version_id]
        self.registry.undeploy(version)
        await deployment.stop(UNDEPLOY_GRACE_SECONDS)

    async def delete(self, function_id: str, version_id: str) -> FunctionVersion:
        """Undeploy (if deployed) and forget a version."""
        version = self.registry.get(function_id, version_id)
        if version.version_id in self.deployments:
            await self.undeploy(version)
        return self.registry.remove(function_id, version_id)

    def _deployment_of(self, version: FunctionVersion) -> Deployment:
        deployment = self.deployments.get(version.version_id)
        if deployment is None:
            raise RegistryError(
                404,
                f"version {version.version_id} of function {version.name} has no deployment: "
                "create one (POST /v2/nvcf/deployments/functions/.../versions/...)",
            )
        return deployment

    # -- invocation ---------------------------------------------------------------------------

    def target(self, function_id: str, version_id: str | None) -> Deployment:
        """The deployment an invocation of ``function_id`` (``version_id``) goes to.

        Raises:
            RegistryError: 404 unknown or not deployed; 400 only DEGRADED versions.
        """
        if version_id is None:
            version = self.registry.pick(function_id)
        else:
            version = self.registry.get(function_id, version_id)
        deployment = self.deployments.get(version.version_id)
        if deployment is None:
            raise RegistryError(
                404,
                f"version {version.version_id} of function {version.name} is "
                f"{version.status.value}, not deployed: deploy it (nvcf-helpers deploy create "
                f"{version.function_id} {version.version_id} --wait) before invoking it",
            )
        return deployment

    def find(self, request_id: str) -> tuple[Deployment, Invocation] | None:
        """The deployment and invocation of a request id, if any deployment knows it."""
        for deployment in self.deployments.values():
            invocation = deployment.store.get(request_id)
            if invocation is not None:
                return deployment, invocation
        return None

    def why_unknown(self, request_id: str) -> str | None:
        """Why a recently known request id is gone, if a deployment remembers."""
        for deployment in self.deployments.values():
            reason = deployment.store.why_unknown(request_id)
            if reason is not None:
                return reason
        return None

    def __iter__(self) -> Iterator[Deployment]:
        return iter(list(self.deployments.values()))

    def states(self) -> Iterator[VersionState]:
        """Each deployed version's gauges: instances, queue, requests in flight."""
        for deployment in self:
            version = deployment.version
            specs = version.deployment or ()
            store = deployment.store
            yield VersionState(
                version.function_id,
                version.version_id,
                instances=sum(
                    instance.state.status is FunctionStatus.ACTIVE
                    for instance in deployment.instances
                ),
                min_instances=version.min_instances,
                max_instances=sum(spec.max_instances for spec in specs),
                queue_depth=len(store.queued()),
                in_flight=len(store.running),
            )

    def active(self) -> bool:
        """Whether any version runs."""
        return any(
            d.version.status in (FunctionStatus.ACTIVE, FunctionStatus.DEGRADING) for d in self
        )

    async def close(self, grace: float) -> None:
        """Stop every deployment's instances; wait for request directories being removed."""
        await asyncio.gather(*(deployment.stop(grace) for deployment in self))
        await self.files.directories.close()

    async def dismiss_guards(self) -> None:
        """Every container is stopped: end the clean-up guards."""
        for deployment in self:
            await deployment.dismiss_guards()
