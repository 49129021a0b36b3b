"""Watching the ``progress`` files of the requests in flight, as NVCF's worker does.

NVCF's worker reads ``NVCF-LARGE-OUTPUT-DIR/progress`` on inotify events and
accepts an update only if the file's mtime is newer than the last accepted
one, the id matches and the content passes its checks; anything else is
logged and skipped. Here one task polls every watched file's mtime (a
``stat`` each, every 50 ms): the standard library has no inotify, and one
poller costs less than a task per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from nvcf_helpers.errors import ProgressError
from nvcf_helpers.local.store import Invocation
from nvcf_helpers.progress import PROGRESS_FILE, parse_progress

__all__ = ["ProgressWatcher"]

logger = logging.getLogger("nvcf_helpers.local")


@dataclass
class _Watch:
    path: Path
    accepted_ns: int = -1
    seen_ns: int = -1


class ProgressWatcher:
    """Feeds accepted progress updates into their invocations.

    Args:
        interval: seconds between two looks at every watched file.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._watches: dict[Invocation, _Watch] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, invocation: Invocation, output_dir: Path) -> None:
        """Start watching the request's progress file (it need not exist yet)."""
        self._watches[invocation] = _Watch(output_dir / PROGRESS_FILE)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    def unwatch(self, invocation: Invocation) -> None:
        """Stop watching: the container has answered."""
        self._watches.pop(invocation, None)

    async def _run(self) -> None:
        while self._watches:
            await asyncio.sleep(self.interval)
            for invocation, watch in list(self._watches.items()):
                self.check(invocation, watch)

    def check(self, invocation: Invocation, watch: _Watch) -> None:
        """Read the file if it changed, and apply it if NVCF's worker would accept it."""
        try:
            mtime_ns = watch.path.stat().st_mtime_ns
            if mtime_ns <= watch.accepted_ns or mtime_ns == watch.seen_ns:
                return
            data = watch.path.read_bytes()
        except OSError:
            return  # not written yet, or being replaced right now
        watch.seen_ns = mtime_ns
        try:
            update = parse_progress(data, invocation.request_id)
        except ProgressError as exc:
            logger.warning(
                "request %s: progress update skipped, as NVCF's worker would: %s",
                invocation.request_id,
                exc,
            )
            return
        watch.accepted_ns = mtime_ns
        invocation.progress = update.progress
        invocation.partial_response = update.partial_response

    async def close(self) -> None:
        """Stop the polling task."""
        self._watches.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
