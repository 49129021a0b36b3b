"""Each request's asset and output directories, made and removed cheaply.

NVCF's worker gives every request ``inputAssets/<reqid>`` (mode 0755) and a
world-writable ``response/<reqid>``, and removes both after the answer
(facts §1). On a journaling file system an ``rmdir`` waits for the journal
(about 70 µs on ext4 here, against 7 µs for a ``rename``), and a ``mkdir``
on the event loop then waits behind the removals of earlier requests. So
directories left empty are not removed but renamed into a pool of spares
beside the two roots, and the next request's are renamed out of it: in the
steady state a request costs two renames on the way in and two on the way
out, and no ``mkdir`` or ``rmdir`` at all. A directory the container left
files in (or changed the mode of) is removed, never reused; a spare is
checked to be empty once it has left the request's path.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import stat
from pathlib import Path

__all__ = ["RequestDirectories"]

_ASSET_MODE = 0o755
_OUTPUT_MODE = 0o777
#: Spare directories kept of each kind; beyond, returned ones are removed.
MAX_SPARES = 256


class RequestDirectories:
    """The per-request directories under ``root``: ``inputAssets/`` and ``response/``."""

    def __init__(self, root: Path) -> None:
        self.asset_root = root / "inputAssets"
        self.output_root = root / "response"
        self._spare_root = root / "spare-directories"
        for directory in (self.asset_root, self.output_root, self._spare_root):
            directory.mkdir(mode=0o755, exist_ok=True)
        self._spares: dict[int, list[str]] = {_ASSET_MODE: [], _OUTPUT_MODE: []}
        self._names = itertools.count()

    def make(self, request_id: str) -> tuple[Path, Path]:
        """Give request ``request_id`` its asset and output directories."""
        asset_dir = self.asset_root / request_id
        output_dir = self.output_root / request_id
        self._place(asset_dir, _ASSET_MODE)
        try:
            self._place(output_dir, _OUTPUT_MODE)
        except BaseException:
            os.rmdir(asset_dir)
            raise
        return asset_dir, output_dir

    def _place(self, target: Path, mode: int) -> None:
        spares = self._spares[mode]
        while spares:
            spare = spares.pop()
            try:
                os.rename(spare, target)
                return
            except OSError:
                continue  # removed from under us: make another
        os.mkdir(target, mode)
        os.chmod(target, mode)  # past the umask: the output directory is world-writable

    async def remove(self, *directories: Path) -> None:
        """Take a request's directories back once its answer is out.

        An empty one is renamed into the spares on the loop (a rename and a
        look, a few microseconds); anything else is removed in a thread.
        """
        leftovers = []
        for directory in directories:
            mode = _ASSET_MODE if directory.parent == self.asset_root else _OUTPUT_MODE
            spares = self._spares[mode]
            if len(spares) >= MAX_SPARES:
                leftovers.append(directory)
                continue
            # Renamed first, then looked at: once it has left the request's path,
            # nothing writes into it by name any more.
            spare = str(self._spare_root / str(next(self._names)))
            try:
                os.rename(directory, spare)
            except OSError:
                leftovers.append(directory)
                continue
            if _reusable(spare, mode):
                spares.append(spare)
            else:
                leftovers.append(Path(spare))
        if leftovers:
            await asyncio.to_thread(_remove_all, leftovers)


def _empty(directory: str | Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def _reusable(directory: str, mode: int) -> bool:
    """Whether the container left the directory as it got it: empty, the same mode."""
    try:
        return stat.S_IMODE(os.lstat(directory).st_mode) == mode and _empty(directory)
    except OSError:
        return False


def _remove_all(directories: list[Path]) -> None:
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
