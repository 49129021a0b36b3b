"""Each request's output directory, made and taken back cheaply; its asset directory.

NVCF's worker gives every request a world-writable ``response/<reqid>``,
and an ``inputAssets/<reqid>`` (mode 0777) only when the request has input
assets, though ``NVCF-ASSET-DIR`` always names it; it removes both after
the answer (facts §1; ``work.go`` 172-175, 619-631 at the commit the README
links). On a journaling file system an ``rmdir`` waits for the journal
(about 70 µs on ext4 here, against 7 µs for a ``rename``), and a ``mkdir``
on the event loop then waits behind the removals of earlier requests. So
output directories left empty are not removed but renamed into a pool of
spares, and the next request's is renamed out of it: in the steady state a
request costs a rename on the way in and one on the way out, and no
``mkdir`` or ``rmdir`` at all. A directory the container left files in (or
changed the mode of) is removed in a thread, never reused; a spare is
checked to be empty once it has left the request's path. Asset directories,
rarer, are made with the assets' copies and removed, both in threads.

Paths are plain strings: building ``pathlib`` paths cost more than the
renames themselves. (A recycler thread was tried and measured: the GIL
hand-offs it adds cost what it saves.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["MAX_SPARES", "RequestDirectories"]

_ASSET_MODE = 0o777
_OUTPUT_MODE = 0o777
#: Spare output directories kept; beyond, returned ones are removed.
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
        self._spares: list[str] = []
        self._names = 0
        self._removals: set[asyncio.Future[None]] = set()

    def make(self, request_id: str) -> tuple[str, str]:
        """Request ``request_id``'s asset and output directory paths; only the output one is made.

        The asset directory is made by :meth:`make_asset_dir`, when the
        request has assets.
        """
        output_dir = self._output_prefix + request_id
        spares = self._spares
        while spares:
            try:
                os.rename(spares.pop(), output_dir)
                break
            except OSError:
                continue  # removed from under us: make another
        else:
            os.mkdir(output_dir, _OUTPUT_MODE)
            os.chmod(output_dir, _OUTPUT_MODE)  # past the umask: world-writable
        return self._asset_prefix + request_id, output_dir

    @staticmethod
    def make_asset_dir(asset_dir: str) -> None:
        """Make a request's asset directory, mode 0777 as NVCF's worker makes it (blocking)."""
        os.mkdir(asset_dir, _ASSET_MODE)
        os.chmod(asset_dir, _ASSET_MODE)

    def release(self, *directories: str) -> None:
        """Take a request's directories back once its answer is out (those that were made).

        On the event loop this runs once the callbacks already due have run
        (the handler that sends the answer among them), and never blocks:
        an empty output directory is renamed into the spares (a rename and a
        look, a few microseconds), anything else is removed in a thread. Off the
        loop it all happens now.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _remove_all(self._recycle(directories))
            return
        loop.call_soon(self._recycle_later, loop, directories)

    async def close(self) -> None:
        """Wait for the removals still running in threads."""
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)

    def _recycle_later(self, loop: asyncio.AbstractEventLoop, directories: Iterable[str]) -> None:
        leftovers = self._recycle(directories)
        if leftovers:
            removal = loop.run_in_executor(None, _remove_all, leftovers)
            self._removals.add(removal)
            removal.add_done_callback(self._removals.discard)

    def _recycle(self, directories: Iterable[str]) -> list[str]:
        """Rename the empty output directories into the spares; the others, to be removed."""
        leftovers = []
        spares = self._spares
        for directory in directories:
            if not directory.startswith(self._output_prefix) or len(spares) >= MAX_SPARES:
                leftovers.append(directory)
                continue
            # Renamed first, then looked at: once it has left the request's path,
            # nothing writes into it by name any more.
            self._names += 1
            spare = f"{self._spare_prefix}{self._names}"
            try:
                os.rename(directory, spare)
            except OSError:
                leftovers.append(directory)
                continue
            if _reusable(spare, _OUTPUT_MODE):
                spares.append(spare)
            else:
                leftovers.append(spare)
        return leftovers


def _reusable(directory: str, mode: int) -> bool:
    """Whether the container left the directory as it got it: empty, the same mode."""
    try:
        if stat.S_IMODE(os.lstat(directory).st_mode) != mode:
            return False
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def _remove_all(directories: Iterable[str]) -> None:
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
