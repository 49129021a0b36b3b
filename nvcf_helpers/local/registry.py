"""The local NVCF's functions, versions and deployments, as NVCF's function API keeps them.

Plain classes, no HTTP and no processes: the API, the worker and the command
line sit on top. A function has versions; a version may have a deployment
(its deployment specifications); the version's status follows NVCF's source
(facts §5): a new version is INACTIVE, a deploy is allowed only from
INACTIVE, DEPLOYING lasts until ``minInstances`` instances are healthy
(ACTIVE), or ERROR when every required instance failed; a running version is
DEGRADED with no running instance, DEGRADING below ``minInstances``;
undeploying makes it INACTIVE again. What runs the instances
(:mod:`~nvcf_helpers.local.deployment`) reports their states through
:meth:`FunctionVersion.follow_instances`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nvcf_helpers.local.function import LOCAL_NCA_ID, FunctionStatus, iso_time
from nvcf_helpers.spec import DeploymentSpec, FunctionSpec

__all__ = ["FunctionVersion", "Registry", "RegistryError", "version_status"]

_RUNNING = (FunctionStatus.ACTIVE, FunctionStatus.DEGRADING, FunctionStatus.DEGRADED)


class RegistryError(Exception):
    """A request the registry refuses: ``status`` is the HTTP status NVCF's API answers."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def version_status(
    current: FunctionStatus, min_instances: int, instances: Sequence[FunctionStatus]
) -> FunctionStatus:
    """A deployed version's status from its instances' states, as NVCF's scheduler sets it.

    An instance is INACTIVE (not started), DEPLOYING (starting), ACTIVE
    (running and healthy) or ERROR (failed or exited).
    """
    healthy = sum(state is FunctionStatus.ACTIVE for state in instances)
    # An instance not started yet (INACTIVE) counts as starting.
    starting = sum(
        state in (FunctionStatus.DEPLOYING, FunctionStatus.INACTIVE) for state in instances
    )
    if current not in (FunctionStatus.DEPLOYING, *_RUNNING):
        return current
    if healthy >= min_instances:
        return FunctionStatus.ACTIVE
    if current is FunctionStatus.DEPLOYING:
        # Every required instance failed: ERROR; otherwise still deploying.
        failed = bool(instances) and healthy + starting == 0
        return FunctionStatus.ERROR if failed else FunctionStatus.DEPLOYING
    return FunctionStatus.DEGRADED if healthy + starting == 0 else FunctionStatus.DEGRADING


@dataclass(eq=False)
class FunctionVersion:
    """One version of a function: its definition, status and deployment."""

    function_id: str
    spec: FunctionSpec
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: FunctionStatus = FunctionStatus.INACTIVE
    created_at: float = field(default_factory=time.time)
    #: The deployment specifications while deployed (``None`` when INACTIVE).
    deployment: tuple[DeploymentSpec, ...] | None = None
    #: Why the version is ERROR, DEGRADING or DEGRADED, in a sentence.
    error: str | None = None
    #: What to do about ``error``.
    fix: str | None = None

    @property
    def name(self) -> str:
        """The function's name."""
        return self.spec.name

    @property
    def min_instances(self) -> int:
        """Instances that must be healthy for ACTIVE: the sum over the specifications."""
        return sum(spec.min_instances for spec in self.deployment or ())

    @property
    def max_request_concurrency(self) -> int:
        """Requests one instance is given at once (the first specification's)."""
        specs = self.deployment or ()
        return specs[0].max_request_concurrency if specs else 1

    def follow_instances(
        self, instances: Sequence[FunctionStatus], reason: str | None = None, fix: str | None = None
    ) -> FunctionStatus:
        """Set the status from the instances' states; ``reason`` says why one is not healthy."""
        status = version_status(self.status, self.min_instances, instances)
        self.status = status
        if status is FunctionStatus.ACTIVE:
            self.error = self.fix = None
        elif status in (FunctionStatus.ERROR, FunctionStatus.DEGRADING, FunctionStatus.DEGRADED):
            self.error, self.fix = reason, fix
        return status

    def to_json(self) -> dict[str, Any]:
        """The version in the shape of NVCF's function API."""
        body: dict[str, Any] = {
            "id": self.function_id,
            "versionId": self.version_id,
            "ncaId": LOCAL_NCA_ID,
            "status": self.status.value,
            "functionType": "DEFAULT",
            "createdAt": iso_time(self.created_at),
            **self.spec.to_json(),
        }
        if "secrets" in body:  # NVCF never shows a secret's value again
            body["secrets"] = [secret.name for secret in self.spec.secrets]
        return body


class Registry:
    """Every function version of the local NVCF, by function id and version id."""

    def __init__(self) -> None:
        self._versions: dict[str, dict[str, FunctionVersion]] = {}

    def create_function(self, spec: FunctionSpec) -> FunctionVersion:
        """Register a new function with its first version (INACTIVE)."""
        version = FunctionVersion(str(uuid.uuid4()), spec)
        self._versions[version.function_id] = {version.version_id: version}
        return version

    def create_version(self, function_id: str, spec: FunctionSpec) -> FunctionVersion:
        """Register another version of a function (INACTIVE)."""
        versions = self._function(function_id)
        version = FunctionVersion(function_id, spec)
        versions[version.version_id] = version
        return version

    def add(self, version: FunctionVersion) -> None:
        """Register a version built elsewhere (the function's other versions stay)."""
        self._versions.setdefault(version.function_id, {})[version.version_id] = version

    def functions(self) -> list[FunctionVersion]:
        """Every version of every function, oldest first (NVCF lists versions)."""
        return [version for versions in self._versions.values() for version in versions.values()]

    def versions(self, function_id: str) -> list[FunctionVersion]:
        """The versions of one function, oldest first."""
        return list(self._function(function_id).values())

    def get(self, function_id: str, version_id: str) -> FunctionVersion:
        """One version.

        Raises:
            RegistryError: 404, the function or the version is unknown.
        """
        version = self._function(function_id).get(version_id)
        if version is None:
            raise RegistryError(
                404,
                f"version {version_id} of function {function_id} not found: GET "
                f"/v2/nvcf/functions/{function_id}/versions lists its versions",
            )
        return version

    def remove(self, function_id: str, version_id: str) -> FunctionVersion:
        """Forget a version (undeploy it first); the function goes with its last version."""
        version = self.get(function_id, version_id)
        versions = self._versions[function_id]
        del versions[version_id]
        if not versions:
            del self._versions[function_id]
        return version

    def deploy(self, version: FunctionVersion, specs: Sequence[DeploymentSpec]) -> None:
        """Start a deployment: allowed only from INACTIVE without one, as NVCF's API.

        Raises:
            RegistryError: 400, the version is deployed or not INACTIVE.
        """
        if version.status is not FunctionStatus.INACTIVE or version.deployment is not None:
            raise RegistryError(
                400,
                f"version {version.version_id} of function {version.name} is "
                f"{version.status.value}: NVCF deploys only an INACTIVE version; undeploy it "
                "first (DELETE /v2/nvcf/deployments/...) or update its deployment (PUT)",
            )
        version.deployment = tuple(specs)
        version.error = version.fix = None
        # Every specification at minInstances 0: ACTIVE at once (nothing must be healthy).
        version.status = (
            FunctionStatus.ACTIVE if version.min_instances == 0 else FunctionStatus.DEPLOYING
        )

    def update_deployment(self, version: FunctionVersion, specs: Sequence[DeploymentSpec]) -> None:
        """Change a deployment's specifications (instances follow them).

        Raises:
            RegistryError: 404, the version has no deployment.
        """
        self._deployed(version)
        version.deployment = tuple(specs)

    def undeploy(self, version: FunctionVersion) -> None:
        """End a deployment: the version is INACTIVE again.

        Raises:
            RegistryError: 404, the version has no deployment.
        """
        self._deployed(version)
        version.deployment = None
        version.status = FunctionStatus.INACTIVE
        version.error = version.fix = None

    def pick(self, function_id: str) -> FunctionVersion:
        """The version an unversioned invocation goes to: ACTIVE or DEGRADING, at random.

        Raises:
            RegistryError: 404 for an unknown function or none deployed; 400
                when its only running versions are DEGRADED, as NVCF's gateway.
        """
        versions = self.versions(function_id)
        serving = [
            v for v in versions if v.status in (FunctionStatus.ACTIVE, FunctionStatus.DEGRADING)
        ]
        if serving:
            return random.choice(serving)  # noqa: S311 - NVCF's spread, not a secret
        degraded = [v for v in versions if v.status is FunctionStatus.DEGRADED]
        if degraded:
            reasons = "; ".join(v.error for v in degraded if v.error) or "no instance runs"
            raise RegistryError(
                400,
                f"function {function_id} is DEGRADED ({reasons}): no instance can take the "
                "request; look at the deployment (GET /v2/nvcf/deployments/...) and redeploy",
            )
        return self._not_deployed(function_id, versions)

    def _not_deployed(
        self, function_id: str, versions: Iterable[FunctionVersion]
    ) -> FunctionVersion:
        states = ", ".join(sorted({v.status.value for v in versions}))
        raise RegistryError(
            404,
            f"function {function_id} has no ACTIVE version (its versions are {states}): deploy "
            "one (nvcf-helpers deploy create FUNCTION_ID VERSION_ID --wait) and invoke it once "
            "it is ACTIVE",
        )

    def _function(self, function_id: str) -> dict[str, FunctionVersion]:
        versions = self._versions.get(function_id)
        if versions is None:
            raise RegistryError(
                404,
                f"function {function_id} not found: GET /v2/nvcf/functions lists the functions "
                "of this local NVCF",
            )
        return versions

    @staticmethod
    def _deployed(version: FunctionVersion) -> None:
        if version.deployment is None:
            raise RegistryError(
                404,
                f"version {version.version_id} of function {version.name} has no deployment: "
                "create one (POST /v2/nvcf/deployments/functions/.../versions/...)",
            )
