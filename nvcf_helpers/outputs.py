"""Large outputs: results too big for an inline response.

NVCF's worker zips every file it finds in ``NVCF-LARGE-OUTPUT-DIR`` (except
``progress``) together with the response body, and hands the caller a link.
It does not skip unfinished files, so a result must be written as
``<name>.partial`` and renamed only once complete: :func:`large_output` does
exactly that, and removes the partial file if writing fails.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO, TypeVar

from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import MissingContextError, OutputError
from nvcf_helpers.names import LARGE_OUTPUT_DIR, PARTIAL_SUFFIX, PROGRESS_FILE

__all__ = ["PARTIAL_SUFFIX", "large_output", "respond_or_spill", "spill_outputs"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise OutputError(f"large output name {name!r} is empty: give the file a name")
    if "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
        raise OutputError(
            f"large output name {name!r} is not a plain file name: use a name without "
            "separators, '..' or NUL"
        )
    if name == PROGRESS_FILE:
        raise OutputError(
            "large output name 'progress' is reserved for progress reports: pick another name"
        )
    if name.endswith(PARTIAL_SUFFIX):
        raise OutputError(
            f"large output name {name!r} ends in {PARTIAL_SUFFIX!r}, which marks unfinished "
            "files: give the final name; the partial one is handled for you"
        )
    return name


@contextmanager
def large_output(ctx: RequestContext, name: str) -> Iterator[BinaryIO]:
    """Write a large output safely: ``name.partial`` while open, ``name`` once complete.

    Example::

        with large_output(ctx, "result.npy") as stream:
            numpy.save(stream, array)

    On leaving the block normally the file is flushed, closed and renamed to
    ``name``; if the block raises, the partial file is removed and the error
    propagates, so no unfinished file is ever shipped.

    Raises:
        OutputError: the name is empty, a path, ``..``, ``progress``, or ends in ``.partial``.
        MissingContextError: the request has no ``NVCF-LARGE-OUTPUT-DIR``.
    """
    name = _check_name(name)
    if ctx.large_output_dir is None:
        raise MissingContextError(LARGE_OUTPUT_DIR, "writing large outputs")
    directory = ctx.large_output_dir
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    partial = directory / (name + PARTIAL_SUFFIX)
    stream = partial.open("wb")
    try:
        yield stream
        stream.close()
        os.replace(partial, final)
    except BaseException:
        stream.close()
        partial.unlink(missing_ok=True)
        raise


def respond_or_spill(ctx: RequestContext, body: bytes, name: str) -> bytes:
    """Return ``body`` if NVCF can pass it back inline, else write it as a large output.

    Args:
        ctx: the request (its ``max_response_bytes`` decides).
        body: the full response.
        name: the large output's file name, used only when it does not fit.

    Returns:
        ``body`` itself, or a small JSON reference
        ``{"largeOutput": name, "bytes": len(body)}`` once it has been written.
    """
    if len(body) <= ctx.max_response_bytes:
        return body
    with large_output(ctx, name) as stream:
        stream.write(body)
    return json.dumps({"largeOutput": name, "bytes": len(body)}).encode("utf-8")


def spill_outputs(
    ctx: RequestContext,
    outputs: Mapping[str, _T],
    size_of: Callable[[_T], int],
    write: Callable[[BinaryIO, _T], object],
    suffix: str = "",
) -> dict[str, _T]:
    """Move the largest outputs to large outputs until the rest fits inline.

    While the outputs left (by ``size_of``) exceed ``ctx.max_response_bytes``,
    the largest is written with ``write`` to the large output
    ``<name><suffix>`` (through :func:`large_output`) and left out of the
    answer. Standard library only: the caller says how big an output is and
    how to write it (e.g. ``numpy.save``).

    Returns:
        The outputs to answer inline. Without ``NVCF-LARGE-OUTPUT-DIR`` nothing
        is moved and a warning is logged.
    """
    answered = dict(outputs)
    sizes = {name: size_of(value) for name, value in outputs.items()}
    total = sum(sizes.values())
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= ctx.max_response_bytes:
            break
        if ctx.large_output_dir is None:
            _LOG.warning(
                "the response (up to %d bytes) exceeds %d bytes, but the request has no "
                "%s: answering inline",
                total,
                ctx.max_response_bytes,
                LARGE_OUTPUT_DIR,
            )
            break
        with large_output(ctx, name + suffix) as stream:
            write(stream, answered.pop(name))
        total -= sizes[name]
        _LOG.info("output %s written as large output %s%s", name, name, suffix)
    return answered
