"""Progress and partial responses: the ``progress`` file NVCF's worker watches.

:class:`ProgressReporter` is the container's side (atomic, ordered updates);
:func:`parse_progress` is the worker's, for ``nvcf-helpers local`` and tests.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import MissingContextError, ProgressError
from nvcf_helpers.names import MAX_PARTIAL_RESPONSE_BYTES, PROGRESS_FILE

__all__ = [
    "MAX_PARTIAL_RESPONSE_BYTES",
    "PROGRESS_FILE",
    "ProgressReporter",
    "ProgressUpdate",
    "parse_progress",
]


# NVCF's worker accepts an update only if the file's mtime is newer than the
# last one it accepted, and filesystems round mtimes (a clock tick on ext4 and
# tmpfs, seconds elsewhere): two quick updates could share an mtime and the
# second, often the final 100, would be dropped. Each new file is therefore
# stamped strictly later than the current one before the rename (which keeps
# the mtime), stepping by the filesystem's own granularity when it rounds down.
# Steps tried, in nanoseconds, when the filesystem rounds an mtime down.
_MTIME_STEPS_NS = (1_000, 1_000_000, 10_000_000, 1_000_000_000, 2_000_000_000)

# One lock and one counter for the whole process, not one per reporter: two
# reporters of the same request (one per thread, say) must neither pick the
# same temporary name nor interleave their mtime stamping and renames.
_WRITE_LOCK = threading.Lock()
_SERIALS = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """One accepted progress update."""

    progress: int
    partial_response: dict[str, Any] | None = None


def _check_progress(progress: object) -> int:
    # bool is an int subclass, and True would be written as "true".
    if isinstance(progress, bool) or not isinstance(progress, int):
        raise ProgressError(
            f"progress {progress!r} is not an integer: NVCF's worker rejects fractions and "
            "non-numbers; pass a whole percentage such as round(done * 100 / total)"
        )
    if not 0 <= progress <= 100:
        raise ProgressError(f"progress {progress} is outside 0..100: pass a whole percentage")
    return progress


def _check_partial(partial: object) -> str | None:
    if partial is None:
        return None
    if not isinstance(partial, Mapping):
        raise ProgressError(
            f"partial response is a {type(partial).__name__}: NVCF passes on only JSON "
            "objects; wrap it, e.g. {'result': ...}"
        )
    try:
        text = json.dumps(partial, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProgressError(f"partial response is not JSON-serialisable: {exc}") from None
    size = len(text.encode("utf-8"))
    if size >= MAX_PARTIAL_RESPONSE_BYTES:
        raise ProgressError(
            f"partial response is {size} bytes once serialised; NVCF accepts under "
            f"{MAX_PARTIAL_RESPONSE_BYTES}: send a summary and write the rest as a large output"
        )
    return text


class ProgressReporter:
    """Reports a request's progress to NVCF's worker through the ``progress`` file.

    Thread-safe; several reporters on one directory keep updates in order.

    Args:
        ctx: the request; needs ``request_id`` and ``large_output_dir``.

    Raises:
        MissingContextError: the request lacks ``NVCF-REQID`` or ``NVCF-LARGE-OUTPUT-DIR``.
    """

    def __init__(self, ctx: RequestContext) -> None:
        if ctx.large_output_dir is None:
            raise MissingContextError(names.LARGE_OUTPUT_DIR, "reporting progress")
        if ctx.request_id is None:
            raise MissingContextError(names.REQUEST_ID, "reporting progress")
        self._request_id = ctx.request_id
        self._directory = ctx.large_output_dir
        self.path: Path = ctx.large_output_dir / PROGRESS_FILE

    def update(self, progress: int, partial_response: Mapping[str, Any] | None = None) -> None:
        """Publish ``progress`` (a whole percentage) and an optional partial response.

        Raises:
            ProgressError: a non-integer or out-of-range progress, or a partial
                response that is not a JSON object or is 250 KB or larger.
        """
        progress = _check_progress(progress)
        partial = _check_partial(partial_response)
        request_id = json.dumps(self._request_id, ensure_ascii=False)
        body = f'{{"id":{request_id},"progress":{progress}'
        body += f',"partialResponse":{partial}}}' if partial is not None else "}"
        data = body.encode("utf-8")
        with _WRITE_LOCK:
            serial = next(_SERIALS)
            temporary = self._directory / f".{PROGRESS_FILE}.{os.getpid()}.{serial}.tmp"
            self._directory.mkdir(parents=True, exist_ok=True)
            try:
                with temporary.open("wb") as stream:
                    stream.write(data)
                self._stamp_after_current(temporary)
                os.replace(temporary, self.path)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise

    def _stamp_after_current(self, temporary: Path) -> None:
        try:
            previous = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        stored = os.stat(temporary).st_mtime_ns
        if stored > previous:
            return
        for step in _MTIME_STEPS_NS:
            wanted = max(time.time_ns(), previous + step)
            os.utime(temporary, ns=(wanted, wanted))
            if os.stat(temporary).st_mtime_ns > previous:
                return


def parse_progress(data: bytes | str, request_id: str) -> ProgressUpdate:
    """Parse a ``progress`` file's content as NVCF's worker does.

    Args:
        data: the file's content.
        request_id: the id of the request in flight; the file must name it.

    Raises:
        ProgressError: anything the worker would reject: not a JSON object, an
            id that differs, a progress that is not an integer in 0..100, a
            partial response that is not an object or is 250 KB or larger.
    """
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ProgressError(f"progress file is not JSON ({exc}): write it atomically") from None
    if not isinstance(document, dict):
        raise ProgressError("progress file must hold a JSON object {id, progress, ...}")
    if document.get("id") != request_id:
        raise ProgressError(
            f"progress file names request {document.get('id')!r}, not {request_id!r}: "
            f"write the id from {names.REQUEST_ID}"
        )
    progress = _check_progress(document.get("progress"))
    partial = document.get("partialResponse")
    _check_partial(partial)
    return ProgressUpdate(progress, partial)
