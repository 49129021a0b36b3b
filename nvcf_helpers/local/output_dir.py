"""A request's output directory, read as NVCF's worker reads it, but never unsafely.

NVCF's worker ships every file under ``NVCF-LARGE-OUTPUT-DIR`` (walked
recursively, in name order, any file called ``progress`` aside) in a zip
after ``<reqid>.response`` (facts §2). Here an artifact is a *regular file
inside the directory*, nothing else: the walk goes through directory file
descriptors and ``O_NOFOLLOW``, so a symlink (to ``/etc/passwd``, say) is
never followed and a FIFO or a device is never opened; each is reported
instead. Everything here blocks, so callers run it in a thread.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nvcf_helpers import names

__all__ = ["NotReadable", "Walk", "has_entries", "read_regular", "zip_outputs"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO that was swapped in after the check must not wait for a writer.
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC
#: Deeper directories are reported, not walked (each level holds a file descriptor).
MAX_DEPTH = 64
_COPY_CHUNK = 1 << 20


class NotReadable(Exception):
    """A path that is not read: not a regular file, too large, or not openable."""


def kind_of(mode: int) -> str:
    """What a file that is not regular is, in words."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular(path: str | Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes, without following a symlink.

    Raises:
        FileNotFoundError: there is no such file (any more).
        NotReadable: the path is a symlink, FIFO, device or socket, is larger
            than ``limit``, or cannot be opened (the message says which).
    """
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise NotReadable(f"it is {kind_of(mode)}, which is never read")
        descriptor = os.open(path, _FILE_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotReadable(_os_reason(exc)) from None
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):  # replaced between lstat and open
            raise NotReadable(f"it is {kind_of(status.st_mode)}, which is never read")
        if status.st_size > limit:
            raise NotReadable(f"it is {status.st_size} bytes, over the {limit} read here")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise NotReadable(f"it grew past the {limit} bytes read here")
    return data


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symlink, which is never followed"
    return f"it cannot be read ({exc.strerror or exc})"


def has_entries(directory: str | Path) -> bool:
    """Whether the directory may hold artifacts: anything but a plain ``progress`` file.

    One ``scandir`` of the top level, cheap enough for the event loop; the
    full walk runs in a thread only when this says yes.
    """
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name != names.PROGRESS_FILE or entry.is_dir(follow_symlinks=False):
                    return True
    except OSError:
        return True  # let the walk report it
    return False


@dataclass
class Walk:
    """What a walk of the output directory found.

    Attributes:
        files: the regular files, as paths relative to the directory, in walk order.
        skipped: entries that are not regular files (or could not be read), with why.
    """

    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# Called with (relative path, open file descriptor, its fstat) for each regular file.
_Visit = Callable[[str, int, os.stat_result], None]


def walk(directory: Path, visit: _Visit) -> Walk:
    """Walk the directory as NVCF's worker does (name order, depth first), regular files only."""
    found = Walk()
    try:
        top = os.open(directory, _DIRECTORY_FLAGS)
    except OSError as exc:
        found.skipped.append(f". ({_os_reason(exc)})")
        return found
    try:
        _walk_directory(top, "", 0, visit, found)
    finally:
        os.close(top)
    return found


def _walk_directory(parent: int, prefix: str, depth: int, visit: _Visit, found: Walk) -> None:
    with os.scandir(parent) as entries:
        ordered = sorted(entry.name for entry in entries)
    for name in ordered:
        relative = prefix + name
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                _walk_child(parent, name, relative, depth=depth, visit=visit, found=found)
            elif name == names.PROGRESS_FILE:
                continue  # the only name NVCF's worker leaves out, at any depth
            elif stat.S_ISREG(mode):
                _visit_file(parent, name, relative, visit, found)
            else:
                found.skipped.append(f"{relative} ({kind_of(mode)})")
        except OSError as exc:
            found.skipped.append(f"{relative} ({_os_reason(exc)})")
        except UnicodeError:  # a zip member name must be UTF-8
            found.skipped.append(f"{relative!r} (a name that is not UTF-8)")


def _walk_child(
    parent: int, name: str, relative: str, *, depth: int, visit: _Visit, found: Walk
) -> None:
    if depth + 1 >= MAX_DEPTH:
        found.skipped.append(f"{relative}/ (deeper than {MAX_DEPTH} levels)")
        return
    child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    try:
        _walk_directory(child, relative + "/", depth + 1, visit, found)
    finally:
        os.close(child)


def _visit_file(parent: int, name: str, relative: str, visit: _Visit, found: Walk) -> None:
    descriptor = os.open(name, _FILE_FLAGS, dir_fd=parent)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):  # swapped after the stat: still never read
            found.skipped.append(f"{relative} ({kind_of(status.st_mode)})")
            return
        visit(relative, descriptor, status)
        found.files.append(relative)
    finally:
        os.close(descriptor)


def zip_outputs(zip_path: Path, request_id: str, body: bytes | Path, directory: Path) -> Walk:
    """Write NVCF's result zip: ``<reqid>.response`` first, then every artifact.

    ``body`` is the container's body, or a file holding it (the worker's own,
    copied in chunks, never loaded whole). Each artifact is copied up to the
    size it had when opened, so a file still growing cannot grow the zip
    without bound.
    """
    with zipfile.ZipFile(
        zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
    ) as bundle:

        def add(relative: str, descriptor: int, status: os.stat_result) -> None:
            with bundle.open(relative, "w", force_zip64=status.st_size >= 1 << 30) as member:
                left = status.st_size
                while left > 0:
                    chunk = os.read(descriptor, min(left, _COPY_CHUNK))
                    if not chunk:
                        break
                    member.write(chunk)
                    left -= len(chunk)

        member_name = names.response_member(request_id)
        if isinstance(body, Path):
            with body.open("rb") as stream:
                add(member_name, stream.fileno(), os.fstat(stream.fileno()))
        else:
            bundle.writestr(member_name, body)
        return walk(directory, add)
