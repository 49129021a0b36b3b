"""One instance of a deployed version: its identity, definition, lifecycle status and health."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.spec import FunctionSpec

__all__ = ["FunctionStatus", "HealthVerdict", "LocalFunction", "iso_time"]

logger = logging.getLogger("nvcf_helpers.local")

#: The NCA id the local NVCF reports for its (single, imaginary) organisation.
LOCAL_NCA_ID = "local-nca-id"


class FunctionStatus(str, enum.Enum):
    """NVCF's function version lifecycle."""

    INACTIVE = "INACTIVE"
    DEPLOYING = "DEPLOYING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    DEGRADING = "DEGRADING"
    DEGRADED = "DEGRADED"


def iso_time(timestamp: float) -> str:
    """A time as NVCF's API writes it: ISO 8601, UTC, seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "Z"


@dataclass(frozen=True)
class HealthVerdict:
    """The outcome of one health check of the container, as the status API reports it.

    Attributes:
        healthy: the check answered the expected status.
        request: what was asked, e.g. ``GET http://127.0.0.1:8000/v2/health/ready``.
        answer: what came back: a status code, ``connection refused``, ``no answer within 10 s``.
        cause: why that counts as unhealthy, in a sentence (empty when healthy).
        fix: what to change so that it passes (empty when healthy).
        checked_at: when the check ended (``time.time()``).
    """

    healthy: bool
    request: str
    answer: str
    cause: str = ""
    fix: str = ""
    checked_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The check in the status API's ``healthInfo.healthCheck``."""
        return {
            "healthy": self.healthy,
            "request": self.request,
            "answer": self.answer,
            "checkedAt": iso_time(self.checked_at),
        }


@dataclass
class LocalFunction:
    """One running instance of a function version (the registry keeps the version itself).

    ``status`` moves INACTIVE -> DEPLOYING -> ACTIVE, or to ERROR when the
    container process exits or never becomes healthy; ``error`` says why and
    ``fix`` what to do. After ACTIVE the container's health is checked on:
    while ``health`` is unhealthy the function stays ACTIVE (NVCF's control
    plane still counts the running instance) but its worker takes no new
    work, so invocations wait in the queue (:meth:`wait_until_taking_work`).
    Change ``status`` and ``health`` through :meth:`set_status`,
    :meth:`fail` and :meth:`report_health`, which wake those waiters.
    """

    spec: FunctionSpec
    function_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: FunctionStatus = FunctionStatus.INACTIVE
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    #: The latest health check after start-up (``None`` until ACTIVE).
    health: HealthVerdict | None = None
    #: What to do about ``error``.
    fix: str | None = None
    #: The container's exit status, once it has exited on its own.
    exit_status: int | None = None
    #: The last lines the container wrote (stdout and stderr) before it exited.
    last_output: tuple[str, ...] = ()
    _changed: asyncio.Event = field(
        default_factory=asyncio.Event, init=False, repr=False, compare=False
    )

    @property
    def taking_work(self) -> bool:
        """Whether the worker may hand the container new work: ACTIVE and healthy."""
        return self.status is FunctionStatus.ACTIVE and (self.health is None or self.health.healthy)

    async def wait_until_taking_work(self) -> None:
        """Wait while the function is ACTIVE but unhealthy, as NVCF's worker stops pulling.

        Returns at once when the function takes work, or is not ACTIVE (a
        caller then refuses the request as for any other status).
        """
        while self.status is FunctionStatus.ACTIVE and not self.taking_work:
            await self._changed.wait()

    async def wait_for_change(self) -> None:
        """Wait until the status or the health changes (to serve the queue on recovery)."""
        await self._changed.wait()

    def _notify(self) -> None:
        # A fresh event per change: every waiter wakes, re-checks, and waits on the new one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set_status(self, status: FunctionStatus) -> None:
        """Move to ``status`` (DEPLOYING, ACTIVE)."""
        self.status = status
        self._notify()

    def fail(
        self,
        error: str,
        fix: str | None = None,
        *,
        exit_status: int | None = None,
        last_output: tuple[str, ...] = (),
    ) -> bool:
        """Move to ERROR, saying why and what to do; ``False`` if it already was."""
        if self.status is FunctionStatus.ERROR:
            return False
        self.status = FunctionStatus.ERROR
        self.error = error
        self.fix = fix
        self.exit_status = exit_status
        self.last_output = last_output
        self._notify()
        return True

    def report_health(self, verdict: HealthVerdict) -> bool:
        """Record a health check; ``True`` when it changed healthy to unhealthy or back."""
        changed = self.health is None or self.health.healthy != verdict.healthy
        self.health = verdict
        self._notify()
        return changed

    def health_info(self) -> dict[str, Any] | None:
        """What is wrong, for the status API; ``None`` when nothing is (as NVCF omits it)."""
        unhealthy = self.health is not None and not self.health.healthy
        if self.error is None and not unhealthy:
            return None
        info: dict[str, Any] = {}
        if self.error is not None:
            info["error"] = self.error
            if self.fix:
                info["fix"] = self.fix
        elif self.health is not None:
            info["error"] = self.health.cause
            info["fix"] = self.health.fix
        if self.health is not None:
            info["healthCheck"] = self.health.to_json()
        if self.status is FunctionStatus.ACTIVE:
            info["takingWork"] = self.taking_work
        if self.exit_status is not None:
            info["exitStatus"] = self.exit_status
        if self.last_output:
            info["lastOutput"] = list(self.last_output)
        return info

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
