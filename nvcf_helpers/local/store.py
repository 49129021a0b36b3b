"""The request store: the function's queue, every invocation in flight, and results to collect.

NVCF keeps an invocation in the function's queue until a worker slot is free
(at most ``max_messages`` of them; beyond, 429), delivers a result exactly
once (to the original ``POST`` or to one status ``GET``; after that, 404), and
forgets a request id an hour after it last answered for it. The store does the
same, and keeps what nobody has collected yet bounded: a result is handed over
only when its delivery succeeded (otherwise it waits for the next ``GET``),
bodies over a threshold wait on disk, results expire after ``result_ttl``
seconds, and a byte budget evicts the oldest when it is exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nvcf_helpers import names

__all__ = [
    "DEFAULT_RESULT_BUDGET_BYTES",
    "SPILL_BYTES",
    "Invocation",
    "InvocationState",
    "InvocationStore",
    "QueueFullError",
    "Result",
]

logger = logging.getLogger("nvcf_helpers.local")

#: Bytes of uncollected results kept (memory and disk) before the oldest are dropped.
DEFAULT_RESULT_BUDGET_BYTES = 1 << 30
#: An uncollected body at least this large waits on disk, not in memory.
SPILL_BYTES = 64 * 1024
#: Request ids whose 404 can still say why they are gone.
_REMEMBERED_IDS = 10_000


class QueueFullError(Exception):
    """The function's queue holds ``queue_size`` requests already (NVCF answers 429)."""


class InvocationState(str, enum.Enum):
    """Where an invocation is."""

    QUEUED = "pending-evaluation"
    RUNNING = "in-progress"
    DONE = "fulfilled"


@dataclass
class Result:
    """What the caller gets once the container has answered.

    Attributes:
        status: the HTTP status to answer (200, 302, or the container's error status).
        body: the response body in memory (empty for a 302, or once ``body_path`` holds it).
        headers: extra response headers (``Content-Type``, warnings).
        zip_token: for a 302, the token under which the zip is served.
        nvcf_status: ``fulfilled``, ``errored`` or ``rejected`` for ``NVCF-STATUS``.
        body_path: a file holding the body instead of ``body``; the store owns
            it from :meth:`Invocation.finish` on and removes it once delivered.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    zip_token: str | None = None
    nvcf_status: str = "fulfilled"
    body_path: Path | None = None

    @property
    def size(self) -> int:
        """Bytes of the body, wherever it is."""
        if self.body_path is not None:
            with contextlib.suppress(OSError):
                return self.body_path.stat().st_size
            return 0
        return len(self.body)


@dataclass(eq=False)
class Invocation:
    """One invocation from the moment it is accepted until its result is delivered.

    Progress is delivered as NVCF's worker delivers it: each accepted update
    answers one poll (:meth:`take_update`); assigning :attr:`progress` or
    :attr:`partial_response` records an update and wakes the waiting poll.
    """

    function_id: str
    version_id: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: InvocationState = InvocationState.QUEUED
    result: Result | None = None
    accepted_at: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: The container's slot was given to it (NVCF's worker pulled it from the queue).
    dispatched: bool = field(default=False, init=False)
    #: A delivery of its result is under way.
    claimed: bool = field(default=False, init=False)
    #: Nobody can collect its result (the caller left before learning its id).
    abandoned: bool = field(default=False, init=False)
    #: Set when the request is cancelled (504, caller gone, shutdown): stop working on it.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    #: When the local NVCF last answered for it, or its result landed (``time.monotonic``).
    last_contact: float = field(default_factory=time.monotonic, init=False)
    #: Called with each accepted progress update (the metrics' count), if set.
    on_progress: Callable[[], None] | None = field(default=None, init=False, repr=False)
    _progress: int = field(default=0, init=False, repr=False)
    _partial: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _updates: int = field(default=0, init=False, repr=False)
    _delivered_updates: int = field(default=0, init=False, repr=False)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, init=False, repr=False)
    _listeners: list[Callable[[Invocation], None]] = field(
        default_factory=list, init=False, repr=False
    )
    _cancel_listeners: list[Callable[[], None]] = field(
        default_factory=list, init=False, repr=False
    )

    @property
    def progress(self) -> int:
        """The latest accepted progress, in percent."""
        return self._progress

    @progress.setter
    def progress(self, value: int) -> None:
        self._progress = value
        if self.on_progress is not None:
            self.on_progress()
        self._note_update()

    @property
    def partial_response(self) -> dict[str, Any] | None:
        """The latest accepted partial response."""
        return self._partial

    @partial_response.setter
    def partial_response(self, value: dict[str, Any] | None) -> None:
        self._partial = value
        self._note_update()

    def _note_update(self) -> None:
        self._updates += 1
        self.wake()

    def take_update(self) -> tuple[int, dict[str, Any] | None] | None:
        """The progress update no poll has been answered with yet, or ``None``."""
        if self._updates == self._delivered_updates:
            return None
        self._delivered_updates = self._updates
        return self._progress, self._partial

    def wake(self) -> None:
        """Wake whoever waits in :meth:`wait_for_change`."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def touch(self) -> None:
        """Note that a caller was just answered for this request."""
        self.last_contact = time.monotonic()

    def cancel(self) -> None:
        """Ask whoever works on it to stop: nobody will collect its result."""
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        for listener in list(self._cancel_listeners):
            listener()

    def on_cancel(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when the invocation is cancelled (until :meth:`off_cancel`)."""
        self._cancel_listeners.append(listener)

    def off_cancel(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` on cancellation."""
        if listener in self._cancel_listeners:
            self._cancel_listeners.remove(listener)

    def on_finish(self, listener: Callable[[Invocation], None]) -> None:
        """Call ``listener(self)`` once the result is recorded."""
        self._listeners.append(listener)

    def finish(self, result: Result) -> bool:
        """Record the result and wake everyone waiting for it.

        Only the first result counts (a shutdown's 503 and a late answer
        cannot both be delivered); returns whether this one did.
        """
        if self.result is not None:
            if result.body_path is not None and result.body_path != self.result.body_path:
                result.body_path.unlink(missing_ok=True)
            return False
        self.result = result
        self.state = InvocationState.DONE
        self.touch()
        self.done.set()
        self.wake()
        for listener in self._listeners:
            listener(self)
        return True

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the result; ``True`` once it is there."""
        if not self.done.is_set() and seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.done.wait(), seconds)
        return self.done.is_set()

    async def wait_for_change(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a result, a progress update or its dispatch.

        A bare future and a timer, not ``asyncio.wait_for``: that wraps the
        wait in a task of its own, a few event-loop turns on every answer.
        """
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(seconds, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class InvocationStore:
    """Invocations by request id, the function's queue, and the results left to collect.

    Args:
        capacity: requests the container is given at once (``maxRequestConcurrency``).
        queue_size: requests that may wait for a slot; one more is refused.
        held_dir: where uncollected bodies of :data:`SPILL_BYTES` or more wait;
            ``None`` keeps them in memory.
        result_ttl: seconds an uncollected result is kept after it landed or
            was last polled.
        result_budget: bytes of uncollected results kept; beyond, the oldest go.
    """

    def __init__(
        self,
        *,
        capacity: int = 1,
        queue_size: int = names.DEFAULT_QUEUE_SIZE,
        held_dir: Path | None = None,
        result_ttl: float = names.REQUEST_MAPPING_MAX_AGE_SECONDS,
        result_budget: int = DEFAULT_RESULT_BUDGET_BYTES,
    ) -> None:
        self.capacity = capacity
        self.queue_size = queue_size
        self.held_dir = held_dir
        self.result_ttl = result_ttl
        self.result_budget = result_budget
        #: Called with each invocation the store forgets without delivering its result.
        self.on_forget: Callable[[Invocation], None] | None = None
        #: Whether the worker takes work now (NVCF's stops pulling while unhealthy).
        self.may_dispatch: Callable[[], bool] = lambda: True
        #: Called with each pollable invocation queued (the recent invocations' list).
        self.on_enqueue: Callable[[Invocation], None] | None = None
        #: Called when a request is refused because the queue is full (a metric).
        self.on_reject: Callable[[], None] | None = None
        self._items: dict[str, Invocation] = {}
        self._waiting: dict[Invocation, Callable[[], None]] = {}
        self._running: set[Invocation] = set()
        self._held: dict[Invocation, int] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()
        self._spills: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Invocation]:
        return iter(list(self._items.values()))

    @property
    def held_bytes(self) -> int:
        """Bytes of results that landed and are not delivered yet."""
        return sum(self._held.values())

    # -- the queue ------------------------------------------------------------------------------

    def enqueue(
        self, invocation: Invocation, start: Callable[[], None], *, pollable: bool = True
    ) -> None:
        """Queue an invocation; ``start()`` is called once a container slot is free.

        A pollable invocation is tracked by request id and frees its slot when
        it finishes; the others (streams, direct calls) call :meth:`release_slot`.

        Raises:
            QueueFullError: ``queue_size`` requests are waiting already.
        """
        if len(self._waiting) >= self.queue_size:
            if self.on_reject is not None:
                self.on_reject()
            raise QueueFullError(f"{len(self._waiting)} requests are waiting")
        if pollable:
            self.add(invocation)
            invocation.on_finish(self._finished)
            if self.on_enqueue is not None:
                self.on_enqueue(invocation)
        self._waiting[invocation] = start
        self._dispatch()

    def poke(self) -> None:
        """Hand waiting invocations their slots, if the worker takes work again."""
        self._dispatch()

    def _dispatch(self) -> None:
        if not self.may_dispatch():
            return
        while self._waiting and len(self._running) < self.capacity:
            invocation, start = next(iter(self._waiting.items()))
            del self._waiting[invocation]
            self._running.add(invocation)
            invocation.dispatched = True
            invocation.wake()
            start()

    def release_slot(self, invocation: Invocation) -> None:
        """The container is done with ``invocation``: give its slot to the next in the queue."""
        if invocation in self._running:
            self._running.discard(invocation)
            self._dispatch()

    def withdraw(self, invocation: Invocation) -> bool:
        """Take a queued invocation out of the queue; ``False`` if it already has a slot."""
        return self._waiting.pop(invocation, None) is not None

    @property
    def running(self) -> list[Invocation]:
        """Invocations holding a container slot."""
        return list(self._running)

    def queued(self, function_id: str | None = None) -> list[Invocation]:
        """Invocations waiting for a container slot, oldest first."""
        return [
            item for item in self._waiting if function_id is None or item.function_id == function_id
        ]

    def position(self, invocation: Invocation) -> int:
        """1-based place in the queue; 0 once the container has picked it up."""
        for index, item in enumerate(self._waiting):
            if item is invocation:
                return index + 1
        return 0

    # -- request ids ----------------------------------------------------------------------------

    def add(self, invocation: Invocation) -> None:
        """Track an invocation by its request id."""
        self._items[invocation.request_id] = invocation

    def get(self, request_id: str) -> Invocation | None:
        """The invocation, or ``None`` when unknown, delivered or forgotten."""
        return self._items.get(request_id)

    def why_unknown(self, request_id: str) -> str | None:
        """Why a recently known request id is gone (delivered, expired, ...), if known."""
        return self._gone.get(request_id)

    def discard(self, invocation: Invocation) -> None:
        """Forget an invocation whose result nobody can collect (a streamed request)."""
        if self._items.get(invocation.request_id) is invocation:
            del self._items[invocation.request_id]

    def forget(self, invocation: Invocation, reason: str) -> None:
        """Drop an invocation and its result undelivered; its id then answers 404 saying why."""
        if self._items.get(invocation.request_id) is not invocation:
            return
        del self._items[invocation.request_id]
        self._remember(invocation.request_id, reason)
        self._drop_result(invocation)
        invocation.cancel()
        if self.on_forget is not None:
            self.on_forget(invocation)

    def _remember(self, request_id: str, reason: str) -> None:
        self._gone[request_id] = reason
        while len(self._gone) > _REMEMBERED_IDS:
            self._gone.popitem(last=False)

    def _drop_result(self, invocation: Invocation) -> None:
        self._held.pop(invocation, None)
        result = invocation.result
        if result is not None and result.body_path is not None:
            result.body_path.unlink(missing_ok=True)

    # -- results --------------------------------------------------------------------------------

    def claim(self, invocation: Invocation) -> Result | None:
        """Reserve the result for one delivery; ``None`` if absent or being delivered already.

        Follow with :meth:`settle`: the result is forgotten only once its
        delivery succeeded, so a caller gone mid-answer loses nothing.
        """
        result = invocation.result
        if (
            result is None
            or invocation.claimed
            or self._items.get(invocation.request_id) is not invocation
        ):
            return None
        invocation.claimed = True
        return result

    def settle(self, invocation: Invocation, *, delivered: bool) -> None:
        """End a delivery: forget the request once delivered, or keep it for the next poll."""
        invocation.claimed = False
        invocation.touch()
        if not delivered:
            return
        if self._items.get(invocation.request_id) is invocation:
            del self._items[invocation.request_id]
            self._remember(
                invocation.request_id,
                f"the result of request {invocation.request_id} was already delivered "
                "(NVCF delivers a result exactly once)",
            )
        self._drop_result(invocation)

    def _finished(self, invocation: Invocation) -> None:
        self.release_slot(invocation)
        result = invocation.result
        if result is None or self._items.get(invocation.request_id) is not invocation:
            return
        if invocation.abandoned:
            self.forget(invocation, "the caller left before the request was answered")
            return
        self._held[invocation] = result.size
        self._evict_over_budget(keep=invocation)
        if self.held_dir is not None and len(result.body) >= SPILL_BYTES:
            task = asyncio.get_running_loop().create_task(self._spill(invocation, result))
            self._spills.add(task)
            task.add_done_callback(self._spills.discard)

    def _evict_over_budget(self, keep: Invocation) -> None:
        held = self.held_bytes
        for invocation in list(self._items.values()):
            if held <= self.result_budget:
                return
            if invocation is keep or invocation.result is None or invocation.claimed:
                continue
            logger.warning(
                "request %s: result dropped uncollected, to keep uncollected results within "
                "%d bytes (--result-budget-bytes)",
                invocation.request_id,
                self.result_budget,
            )
            held -= self._held.get(invocation, 0)
            self.forget(
                invocation,
                f"its result was dropped uncollected: uncollected results exceeded "
                f"{self.result_budget} bytes (--result-budget-bytes); poll sooner",
            )

    async def _spill(self, invocation: Invocation, result: Result) -> None:
        """Move an uncollected body to disk, unless it is delivered meanwhile."""
        assert self.held_dir is not None
        path = self.held_dir / invocation.request_id
        body = result.body
        try:
            await asyncio.to_thread(path.write_bytes, body)
        except OSError as exc:
            logger.warning(
                "request %s: cannot keep the result on disk (%s): it stays in memory",
                invocation.request_id,
                exc,
            )
            path.unlink(missing_ok=True)
            return
        if self._items.get(invocation.request_id) is invocation and result.body is body:
            result.body_path = path
            result.body = b""
        else:
            path.unlink(missing_ok=True)

    def sweep(self, now: float | None = None) -> None:
        """Forget results nobody collected within ``result_ttl`` seconds."""
        now = time.monotonic() if now is None else now
        for invocation in list(self._items.values()):
            if (
                invocation.result is not None
                and not invocation.claimed
                and now - invocation.last_contact > self.result_ttl
            ):
                logger.warning(
                    "request %s: result expired uncollected after %g s (--result-ttl)",
                    invocation.request_id,
                    self.result_ttl,
                )
                self.forget(
                    invocation,
                    f"its result expired: nobody collected it within {self.result_ttl:g} s "
                    "(NVCF forgets a request id an hour after its last answer; --result-ttl)",
                )

    async def close(self) -> None:
        """Wait for results being moved to disk (their files go with the root)."""
        if self._spills:
            await asyncio.gather(*self._spills, return_exceptions=True)
