"""Each request's asset and output directories, made and taken back off the event loop.

NVCF's worker gives every request ``inputAssets/<reqid>`` (mode 0755) and a
world-writable ``response/<reqid>``, and removes both after the answer
(facts §1). On a journaling file system an ``rmdir`` waits for the journal
(about 70 µs on ext4 here, against 7 µs for a ``rename``), and file-system
calls were a fifth of the gateway's event-loop time per request. So:

- a request's directories are spares renamed into place (one ``rename``
  each on the loop; a ``mkdir`` only when no spare is left);
- once its answer is out they are handed to one recycler thread, which
  renames each away into the spares, then checks it is as the container got
  it (empty, the same mode) before reusing it, and removes it otherwise.
  Renamed first, then looked at: once a directory has left the request's
  path, nothing writes into it by name any more.

Paths are plain strings: building ``pathlib`` paths cost more than the
renames themselves.
"""

from __future__ import annotations

import collections
import os
import queue
import shutil
import stat
import threading
from pathlib import Path

__all__ = ["MAX_SPARES", "RequestDirectories"]

_ASSET_MODE = 0o755
_OUTPUT_MODE = 0o777
#: Spare directories kept of each kind; beyond, returned ones are removed.
MAX_SPARES = 256


class RequestDirectories:
    """The per-request directories under ``root``: ``inputAssets/`` and ``response/``."""

    def __init__(self, root: Path) -> None:
        self.asset_root = root / "inputAssets"
        self.output_root = root / "response"
        spare_root = root / "spare-directories"
        for directory in (self.asset_root, self.output_root, spare_root):
            directory.mkdir(mode=0o755, exist_ok=True)
        self._asset_prefix = f"{self.asset_root}{os.sep}"
        self._output_prefix = f"{self.output_root}{os.sep}"
        self._spare_prefix = f"{spare_root}{os.sep}"
        # Taken on the loop, given back by the recycler: deque's pop and append are atomic.
        self._spares: dict[int, collections.deque[str]] = {
            _ASSET_MODE: collections.deque(),
            _OUTPUT_MODE: collections.deque(),
        }
        self._returned: queue.SimpleQueue[tuple[str, int] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._recycler: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def make(self, request_id: str) -> tuple[str, str]:
        """Give request ``request_id`` its asset and output directories (their paths)."""
        asset_dir = self._asset_prefix + request_id
        output_dir = self._output_prefix + request_id
        self._place(asset_dir, _ASSET_MODE)
        try:
            self._place(output_dir, _OUTPUT_MODE)
        except BaseException:
            os.rmdir(asset_dir)
            raise
        return asset_dir, output_dir

    def _place(self, target: str, mode: int) -> None:
        spares = self._spares[mode]
        while spares:
            try:
                os.rename(spares.pop(), target)
                return
            except IndexError:
                break  # taken meanwhile
            except OSError:
                continue  # removed from under us: make another
        os.mkdir(target, mode)
        os.chmod(target, mode)  # past the umask: the output directory is world-writable

    def release(self, *directories: str) -> None:
        """Take a request's directories back once its answer is out (never blocks)."""
        if self._closed:
            _remove_all(directories)
            return
        for directory in directories:
            mode = _ASSET_MODE if directory.startswith(self._asset_prefix) else _OUTPUT_MODE
            self._returned.put((directory, mode))
        if self._recycler is None:
            self._start()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait (blocking) until every directory released so far is recycled or removed."""
        if self._recycler is None:
            return True
        done = threading.Event()
        self._returned.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the directories released so far, then stop the recycler (blocking)."""
        self._closed = True
        recycler = self._recycler
        if recycler is not None:
            self._returned.put(None)
            recycler.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._recycler is None:
                recycler = threading.Thread(
                    target=self._recycle, name="request-directories", daemon=True
                )
                recycler.start()
                self._recycler = recycler

    def _recycle(self) -> None:
        names = 0
        while True:
            item = self._returned.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            directory, mode = item
            spares = self._spares[mode]
            if len(spares) >= MAX_SPARES or self._closed:
                _remove_all((directory,))
                continue
            names += 1
            spare = f"{self._spare_prefix}{names}"
            try:
                os.rename(directory, spare)
            except OSError:
                _remove_all((directory,))
                continue
            if _reusable(spare, mode):
                spares.append(spare)
            else:
                _remove_all((spare,))


def _reusable(directory: str, mode: int) -> bool:
    """Whether the container left the directory as it got it: empty, the same mode."""
    try:
        if stat.S_IMODE(os.lstat(directory).st_mode) != mode:
            return False
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _remove_all(directories: tuple[str, ...]) -> None:
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
