"""The one function a local NVCF serves: its identity, definition and lifecycle status."""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.spec import FunctionSpec

__all__ = ["FunctionStatus", "LocalFunction"]

logger = logging.getLogger("nvcf_helpers.local")

#: The NCA id the local NVCF reports for its (single, imaginary) organisation.
LOCAL_NCA_ID = "local-nca-id"


class FunctionStatus(str, enum.Enum):
    """NVCF's function version lifecycle."""

    INACTIVE = "INACTIVE"
    DEPLOYING = "DEPLOYING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "Z"


@dataclass
class LocalFunction:
    """A function version as NVCF's API describes it, with a fresh id per run.

    ``status`` moves INACTIVE -> DEPLOYING -> ACTIVE, or to ERROR when the
    container process exits or never becomes healthy; ``error`` says why.
    """

    spec: FunctionSpec
    function_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: FunctionStatus = FunctionStatus.INACTIVE
    error: str | None = None
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The function version in the shape of NVCF's ``GET /v2/nvcf/functions``."""
        body: dict[str, Any] = {
            "id": self.function_id,
            "versionId": self.version_id,
            "ncaId": LOCAL_NCA_ID,
            "status": self.status.value,
            "functionType": "DEFAULT",
            "createdAt": _iso(self.created_at),
            **self.spec.to_json(),
        }
        if self.error is not None:
            body["healthInfo"] = {"error": self.error}
        return body

    def container_environment(self) -> dict[str, str]:
        """The variables NVCF gives the container: ``containerEnvironment``, then the identity.

        The ``NVCF_*`` identity is set last: the prefix is NVCF's, so the
        function definition cannot override it.
        """
        variables: dict[str, str] = {}
        entries = self.spec.raw.get("containerEnvironment") or []
        if not isinstance(entries, list):
            entries = [entries]
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
                logger.warning(
                    "containerEnvironment entry %r ignored: expected {'key': ..., 'value': ...}",
                    entry,
                )
                continue
            if entry["key"].startswith(names.RESERVED_ENV_PREFIX):
                logger.warning(
                    "containerEnvironment %s ignored: the prefix %s is reserved by NVCF",
                    entry["key"],
                    names.RESERVED_ENV_PREFIX,
                )
                continue
            value = entry.get("value")
            variables[entry["key"]] = "" if value is None else str(value)
        variables.update(self.environment())
        return variables

    def environment(self) -> dict[str, str]:
        """The ``NVCF_*`` identity variables NVCF sets in the container's environment."""
        identity = {
            "backend": "local",
            "env": "local",
            "function_id": self.function_id,
            "function_name": self.spec.name,
            "function_version_id": self.version_id,
            "instance_type": "local",
            "nca_id": LOCAL_NCA_ID,
            "region": "local",
        }
        return {names.CONTEXT_ENVIRONMENT[field]: value for field, value in identity.items()}
