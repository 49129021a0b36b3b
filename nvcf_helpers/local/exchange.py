"""The worker's exchange with the container: its answer's head and body, and its failures.

The body is read in chunks: a small one stays in memory, a larger one streams
to a file the worker owns, so a 200 MB answer never sits in the gateway's
memory (facts §2, "Large output"). A response head larger than NVCF's gateway
relays is refused, and a failed exchange is classified as NVCF's worker
classifies it (facts §2, "Connection errors", "Gateway limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
from aiohttp.http_exceptions import LineTooLong

from nvcf_helpers.local.container_http import (
    MAX_RESPONSE_HEAD_BYTES,
    MAX_RESPONSE_HEADERS,
    ContainerClosed,
    ContainerReply,
    HeadTooLarge,
    NotHttp,
)

__all__ = [
    "CONNECTION_ERROR",
    "EXCHANGE_ERRORS",
    "GO_STATUS_TEXT",
    "INFERENCE_ERROR",
    "MAX_RESPONSE_HEADERS",
    "MAX_RESPONSE_HEAD_BYTES",
    "MEMORY_BODY_BYTES",
    "WORKER_ERROR",
    "Body",
    "BodyStoreError",
    "HeadTooLarge",
    "Reply",
    "failure",
    "read_body",
    "read_head",
    "worker_problem",
]

#: A body up to this size stays in memory; a larger one streams to a file.
MEMORY_BODY_BYTES = 1 << 20
_T = TypeVar("_T")
# The file is written in pieces of about this size, each in a thread.
_WRITE_BYTES = 1 << 20


# The sources in NVCF's problem types: urn:<source>:problem-details:<status text>.
INFERENCE_ERROR = "inference-service"
CONNECTION_ERROR = "inference-connection"
WORKER_ERROR = "nvcf-worker-service"
# How aiohttp's parsers word a response head over max_line_size, max_field_size or max_headers.
_HEAD_SIZE_WORDS = ("got more than", "too long", "too many headers", "too large")
_CONNECTION_DETAIL = "Inference connection error while making inference request"
_INTERNAL_DETAIL = "Internal error while making inference request"

#: Go's ``http.StatusText`` for the codes NVCF's worker rewraps: problem titles and types.
GO_STATUS_TEXT: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
}


def worker_problem(source: str, status: int, detail: str) -> bytes:
    """NVCF's worker's problem body: ``type``, ``title``, ``status``, ``detail`` and no more.

    Its JSON encoder leaves out empty fields, so an unknown code has no ``title``.
    """
    title = GO_STATUS_TEXT.get(status, "")
    problem: dict[str, Any] = {
        "type": f"urn:{source}:problem-details:{title.lower().replace(' ', '-')}"
    }
    if title:
        problem["title"] = title
    problem["status"] = status
    if detail:
        problem["detail"] = detail
    return json.dumps(problem).encode("utf-8")


class BodyStoreError(Exception):
    """The container's body could not be written to disk."""


#: What a failed exchange raises: each gives NVCF's problem (:func:`failure`).
EXCHANGE_ERRORS = (
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
    HeadTooLarge,
    ContainerClosed,
    NotHttp,
)


@dataclass(frozen=True)
class Body:
    """A container's response body: ``data`` in memory, or ``path``, a file the worker owns."""

    data: bytes = b""
    path: Path | None = None
    size: int = 0

    def discard(self) -> None:
        """Remove the file, if there is one."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Reply:
    """The container's answer: status, headers as received, and body."""

    status: int
    headers: list[tuple[str, str]]
    body: Body


def _write(stream: IO[bytes], chunks: list[bytes]) -> None:
    stream.writelines(chunks)


def _open_spool(path: str) -> IO[bytes]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    return os.fdopen(descriptor, "wb")


async def read_body(reply: ContainerReply, spool: str, *, limit: int | None = None) -> Body:
    """Read the reply's body: in memory up to :data:`MEMORY_BODY_BYTES`, else into ``spool``.

    ``limit`` stops reading after that many bytes (the rest is never read:
    the connection is then closed). On any failure or cancellation the spool
    file is removed.

    Raises:
        OSError, ContainerClosed, NotHttp: the container's answer broke off.
        BodyStoreError: the file could not be written.
    """
    length = reply.content_length
    if length is not None and length <= MEMORY_BODY_BYTES and (limit is None or length <= limit):
        data = await reply.read()
        return Body(data, None, len(data))
    chunks: list[bytes] = []
    held = size = 0
    stream: IO[bytes] | None = None
    try:
        while limit is None or size < limit:
            chunk = await reply.read_chunk()
            if not chunk:
                break
            if limit is not None:
                chunk = chunk[: limit - size]
            chunks.append(chunk)
            held += len(chunk)
            size += len(chunk)
            if held > (MEMORY_BODY_BYTES if stream is None else _WRITE_BYTES):
                stream = stream or await _thread(_open_spool, spool)
                await _thread(_write, stream, chunks)
                chunks, held = [], 0
        if stream is None:
            return Body(b"".join(chunks), None, size)
        await _thread(_write, stream, chunks)
        await _thread(stream.close)
        return Body(b"", Path(spool), size)
    except BaseException:
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spool)  # this request's own name: nothing else writes it
        raise


async def _thread(function: Callable[..., _T], *args: Any) -> _T:
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as exc:
        raise BodyStoreError(f"cannot keep the container's answer on disk: {exc}") from exc


async def read_head(body: Body, size: int) -> bytes:
    """The first ``size`` bytes of the body (a file is read in a thread)."""
    if body.path is None:
        return body.data[:size]
    return await _thread(_read_start, body.path, size)


def _read_start(path: Path, size: int) -> bytes:
    with path.open("rb") as stream:
        return stream.read(size)


def failure(exc: BaseException) -> tuple[str, str, str]:
    """NVCF's problem source and detail for a failed exchange, and what happened, in words."""
    if isinstance(exc, HeadTooLarge) or (
        isinstance(exc, aiohttp.ClientResponseError)
        and (
            isinstance(exc.__cause__, LineTooLong)
            or any(words in exc.message.lower() for words in _HEAD_SIZE_WORDS)
        )
    ):
        reason = str(exc) if isinstance(exc, HeadTooLarge) else exc.message
        detail = (
            f"the container's response headers are too large ({reason}): NVCF's gateway "
            f"relays at most {MAX_RESPONSE_HEADERS} headers in {MAX_RESPONSE_HEAD_BYTES} "
            "bytes; send large data in the body"
        )
        return WORKER_ERROR, detail, detail
    if isinstance(exc, NotHttp):
        return WORKER_ERROR, _INTERNAL_DETAIL, f"the container's answer is not HTTP ({exc})"
    if isinstance(exc, aiohttp.ClientResponseError):
        return (
            WORKER_ERROR,
            _INTERNAL_DETAIL,
            f"the container's answer is not HTTP ({exc.message})",
        )
    described = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (ContainerClosed, aiohttp.ServerDisconnectedError)) or (
        isinstance(exc, aiohttp.ClientPayloadError) and not isinstance(exc.__cause__, OSError)
    ):
        # Go reads a clean close as EOF, which is no network error: the worker's own source.
        cause = (
            f"the container closed the connection without a complete answer ({described}); "
            "see its output above"
        )
        return WORKER_ERROR, _INTERNAL_DETAIL, cause
    if isinstance(exc, (OSError, asyncio.TimeoutError, aiohttp.ClientPayloadError)):
        cause = f"the connection to the container failed ({described}); see its output above"
        return CONNECTION_ERROR, _CONNECTION_DETAIL, cause
    return WORKER_ERROR, _INTERNAL_DETAIL, f"the exchange with the container failed ({described})"
