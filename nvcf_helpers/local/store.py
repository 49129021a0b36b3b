"""The request store: every invocation in flight, and each result until it is delivered.

NVCF delivers a result exactly once: to the original ``POST`` (200 or 302) or
to one ``GET /v2/nvcf/pexec/status/{requestId}``; after that the request is
unknown (404). :meth:`InvocationStore.take` implements that rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Invocation", "InvocationState", "InvocationStore", "Result"]


class InvocationState(str, enum.Enum):
    """Where an invocation is; the value is what ``NVCF-STATUS`` reports while it is pending."""

    QUEUED = "pending-evaluation"
    RUNNING = "in-progress"
    DONE = "fulfilled"


@dataclass
class Result:
    """What the caller gets once the container has answered.

    Attributes:
        status: the HTTP status to answer (200, 302, or the container's error status).
        body: the response body (empty for a 302).
        headers: extra response headers (``Content-Type``, warnings).
        zip_token: for a 302, the token under which the zip is served.
        nvcf_status: ``fulfilled``, ``errored`` or ``rejected`` for ``NVCF-STATUS``.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    zip_token: str | None = None
    nvcf_status: str = "fulfilled"


@dataclass(eq=False)
class Invocation:
    """One invocation from the moment it is accepted until its result is taken."""

    function_id: str
    version_id: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: InvocationState = InvocationState.QUEUED
    progress: int = 0
    partial_response: dict[str, Any] | None = None
    result: Result | None = None
    accepted_at: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(self, result: Result) -> None:
        """Record the result and wake everyone waiting for it."""
        self.result = result
        self.state = InvocationState.DONE
        self.done.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the result; ``True`` once it is there."""
        if not self.done.is_set() and seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.done.wait(), seconds)
        return self.done.is_set()


class InvocationStore:
    """Invocations by request id, in the order they were accepted."""

    def __init__(self) -> None:
        self._items: dict[str, Invocation] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Invocation]:
        return iter(list(self._items.values()))

    def add(self, invocation: Invocation) -> None:
        """Track a newly accepted invocation."""
        self._items[invocation.request_id] = invocation

    def get(self, request_id: str) -> Invocation | None:
        """The invocation, or ``None`` when unknown or already delivered."""
        return self._items.get(request_id)

    def take(self, invocation: Invocation) -> Result | None:
        """Claim the result for delivery; ``None`` if it is not ready or was taken already.

        Only the first caller gets it; the request id is then forgotten, so
        later status requests answer 404, as NVCF's do.
        """
        if invocation.result is None or self._items.get(invocation.request_id) is not invocation:
            return None
        del self._items[invocation.request_id]
        return invocation.result

    def discard(self, invocation: Invocation) -> None:
        """Forget an invocation whose result nobody can collect (a streamed request)."""
        if self._items.get(invocation.request_id) is invocation:
            del self._items[invocation.request_id]

    def queued(self, function_id: str | None = None) -> list[Invocation]:
        """Invocations the container has not picked up yet, oldest first."""
        return [
            item
            for item in self._items.values()
            if item.state is InvocationState.QUEUED
            and (function_id is None or item.function_id == function_id)
        ]

    def position(self, invocation: Invocation) -> int:
        """1-based place in the queue; 0 once the container has picked it up."""
        if invocation.state is not InvocationState.QUEUED:
            return 0
        return self.queued().index(invocation) + 1
