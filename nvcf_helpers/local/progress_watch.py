"""Watching the ``progress`` files of the requests in flight, as NVCF's worker reads them.

NVCF's worker (facts §3) reads a file named ``progress`` when it changes,
parses ``{"id", "progress", "partialResponse"}`` as a string, an unsigned
32-bit integer and an object (field names matched in any case), and applies
it to the in-flight request whose id it names, if the file's mtime is later
than that request's last update. A file it cannot parse (a fraction, a
negative number) is logged and skipped; it checks no 0..100 range and no size.

Here one task polls every watched file (an ``lstat`` each, every 50 ms: the
standard library has no inotify) and reads changed ones in a thread, as
regular files of at most :data:`MAX_PROGRESS_FILE_BYTES`: a symlink, a FIFO or
a device is never opened. Where an update breaks the documented contract (a
percentage outside 0..100 or not whole, a partial response of 250 KB or
more) it is applied or skipped as the worker would, with a warning in the
log and in ``NVCF-LOCAL-WARNING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.local.output_dir import NotReadable, read_regular
from nvcf_helpers.local.store import Invocation

__all__ = ["MAX_PROGRESS_FILE_BYTES", "ProgressWatcher", "WorkerProgress", "parse_worker_progress"]

logger = logging.getLogger("nvcf_helpers.local")

#: A larger progress file is not read (NVCF's worker reads any size; memory is finite here).
MAX_PROGRESS_FILE_BYTES = 4 * 1024 * 1024
_MAX_UINT32 = 2**32 - 1
#: Warnings kept per request (the first ones; the log has them all).
_MAX_WARNINGS = 5


@dataclass(frozen=True)
class WorkerProgress:
    """A progress file's content, as NVCF's worker parses it.

    Attributes:
        request_id: the id it names, when that is a string.
        percent: ``progress`` (0 when absent).
        partial_response: ``partialResponse``, an object or ``None``.
        problems: why the worker would skip it; empty when it parses.
        broken: where it breaks the documented contract, each a sentence.
    """

    request_id: str | None
    percent: int
    partial_response: dict[str, Any] | None
    problems: tuple[str, ...]
    broken: tuple[str, ...]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _fields(document: dict[str, Any]) -> dict[str, Any]:
    """The struct fields Go fills from the object: names matched in any case, last one wins."""
    found: dict[str, Any] = {}
    for key, value in document.items():
        lowered = key.lower()
        if lowered in ("id", "progress", "partialresponse") and value is not None:
            found[lowered] = value
    return found


def _percent(value: Any, problems: list[str], broken: list[str]) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"progress {value!r} is not a number")
        return 0
    if isinstance(value, float) or value < 0:
        problem = f"progress {value!r} is not a whole percentage 0..100"
        problems.append(problem)
        broken.append(f"{problem}: NVCF's worker skips this update")
        return 0
    if value > _MAX_UINT32:
        problems.append(f"progress {value} is over an unsigned 32-bit integer")
        return 0
    if value > 100:
        broken.append(f"progress {value} is outside 0..100: NVCF's worker passes it on as it is")
    return value


def parse_worker_progress(data: bytes) -> WorkerProgress:
    """Parse a ``progress`` file as NVCF's worker does, noting contract breaks on the way."""
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return WorkerProgress(None, 0, None, (f"it is not JSON ({exc})",), ())
    if not isinstance(document, dict):
        return WorkerProgress(None, 0, None, ("it is not a JSON object",), ())
    fields = _fields(document)
    problems: list[str] = []
    broken: list[str] = []
    request_id = fields.get("id")
    if request_id is not None and not isinstance(request_id, str):
        problems.append(f"id {request_id!r} is not a string")
        request_id = None
    percent = _percent(fields.get("progress"), problems, broken)
    partial = fields.get("partialresponse")
    if partial is not None and not isinstance(partial, dict):
        problems.append(f"partialResponse is a {type(partial).__name__}, not a JSON object")
        broken.append(problems[-1])
        partial = None
    if partial is not None:
        size = len(json.dumps(partial, ensure_ascii=False, separators=(",", ":")).encode())
        if size >= names.MAX_PARTIAL_RESPONSE_BYTES:
            broken.append(
                f"partialResponse is {size} bytes, and the docs ask for under "
                f"{names.MAX_PARTIAL_RESPONSE_BYTES}: NVCF's worker passes it on as it is"
            )
    return WorkerProgress(request_id, percent, partial, tuple(problems), tuple(broken))


@dataclass
class _Watch:
    invocation: Invocation
    path: str
    seen: tuple[int, int, int] = (-1, -1, -1)  # (mtime, size, inode) last read


class ProgressWatcher:
    """Feeds the updates NVCF's worker would accept into their invocations.

    Args:
        interval: seconds between two looks at every watched file.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._watches: dict[Invocation, _Watch] = {}
        self._by_id: dict[str, Invocation] = {}
        self._accepted_ns: dict[Invocation, int] = {}
        self._warnings: dict[Invocation, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        # The polling task starts one interval after a watch begins: a request
        # answered sooner (most are) never pays for a task.
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, invocation: Invocation, output_dir: str) -> None:
        """Start watching the request's progress file (it need not exist yet)."""
        self._watches[invocation] = _Watch(
            invocation, os.path.join(output_dir, names.PROGRESS_FILE)
        )
        self._by_id[invocation.request_id] = invocation
        if (self._task is None or self._task.done()) and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._watches and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(first_wait=0.0))

    def unwatch(self, invocation: Invocation) -> tuple[str, ...]:
        """Stop watching (the container has answered); returns the request's warnings."""
        self._watches.pop(invocation, None)
        self._by_id.pop(invocation.request_id, None)
        self._accepted_ns.pop(invocation, None)
        if not self._watches and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return tuple(self._warnings.pop(invocation, ()))

    def warning(self, invocation: Invocation) -> str | None:
        """The request's progress warnings so far, for ``NVCF-LOCAL-WARNING`` on a 202."""
        warnings = self._warnings.get(invocation)
        return " | ".join(warnings) if warnings else None

    async def _run(self, first_wait: float | None = None) -> None:
        wait = self.interval if first_wait is None else first_wait
        while self._watches:
            await asyncio.sleep(wait)
            await self.poll()
            wait = self.interval

    async def poll(self) -> None:
        """Look at every watched file once; read and apply those that changed."""
        changed: list[tuple[_Watch, int]] = []
        for watch in list(self._watches.values()):
            try:
                status = os.lstat(watch.path)  # never opens: safe on the event loop
            except OSError:
                continue  # not written yet, or being replaced right now
            seen = (status.st_mtime_ns, status.st_size, status.st_ino)
            if seen != watch.seen:
                watch.seen = seen
                changed.append((watch, status.st_mtime_ns))
        if not changed:
            return
        paths = [watch.path for watch, _ in changed]
        contents = await asyncio.to_thread(_read_all, paths)
        for (watch, mtime_ns), content in zip(changed, contents, strict=True):
            if watch.invocation in self._watches:
                self._apply(watch.invocation, mtime_ns, content)

    def _apply(
        self, watcher: Invocation, mtime_ns: int, content: bytes | NotReadable | None
    ) -> None:
        if content is None:
            return
        if isinstance(content, NotReadable):
            self._warn(watcher, f"{names.PROGRESS_FILE} is not read: {content}")
            return
        update = parse_worker_progress(content)
        target = self._by_id.get(update.request_id) if update.request_id is not None else None
        problems = list(update.problems)
        if target is None and update.request_id is not None:
            problems.append(
                f"{names.PROGRESS_FILE} names request {update.request_id!r}, which is not in "
                f"flight (this directory is {watcher.request_id!r}): write the id from "
                f"{names.REQUEST_ID}"
            )
        elif target is None and not problems:
            problems.append(f"it names no request: write the id from {names.REQUEST_ID}")
        for sentence in update.broken:
            self._warn(target or watcher, f"{names.PROGRESS_FILE}: {sentence}")
        if problems or target is None:
            logger.warning(
                "request %s: progress update skipped, as NVCF's worker would: %s",
                watcher.request_id,
                "; ".join(problems),
            )
            return
        if mtime_ns <= self._accepted_ns.get(target, -1):
            return  # NVCF's worker wants a later mtime than the last update's
        self._accepted_ns[target] = mtime_ns
        target.progress = update.percent
        target.partial_response = update.partial_response

    def _warn(self, invocation: Invocation, warning: str) -> None:
        logger.warning("request %s: contract violation: %s", invocation.request_id, warning)
        warnings = self._warnings.setdefault(invocation, [])
        if warning not in warnings and len(warnings) < _MAX_WARNINGS:
            warnings.append(warning)

    async def close(self) -> None:
        """Stop the polling task."""
        self._watches.clear()
        self._by_id.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _read_all(paths: list[str]) -> list[bytes | NotReadable | None]:
    """Read each path as a bounded regular file (in a thread: reads never block the loop)."""
    contents: list[bytes | NotReadable | None] = []
    for path in paths:
        try:
            contents.append(read_regular(path, MAX_PROGRESS_FILE_BYTES))
        except FileNotFoundError:
            contents.append(None)  # removed since the lstat
        except NotReadable as exc:
            contents.append(exc)
    return contents
