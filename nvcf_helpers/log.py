"""NVCF-format logging, with the request id on every line written for a request.

NVCF reads a container's logs from its stdout and expects
``%(asctime)s [%(levelname)s] [INFERENCE] %(message)s`` in UTF-8.
:func:`configure_logging` installs exactly that on the root logger (calling
it again replaces its own handler instead of adding a second one), and
:func:`log_request` binds a request id to the current thread or task, so every
line logged while handling the request reads
``... [INFERENCE] [reqid=<id>] message``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json as _json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from nvcf_helpers.context import RequestContext

__all__ = ["NVCF_LOG_FORMAT", "configure_logging", "current_request_id", "log_request"]

NVCF_LOG_FORMAT = "%(asctime)s [%(levelname)s] [INFERENCE] %(message)s"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "nvcf_request_id", default=None
)


# An adapter that runs one request at a time per thread (the Triton Python
# backend) can name the running request here instead of binding it with
# log_request: setting a ContextVar per request costs more than the rest of its
# loop, and most requests never log.
_running_request_id: Callable[[], str | None] | None = None


def _set_running_request_id(source: Callable[[], str | None] | None) -> None:
    """Where :func:`current_request_id` looks when :func:`log_request` bound nothing."""
    global _running_request_id  # noqa: PLW0603 - one hook per process, set by an adapter
    _running_request_id = source


def current_request_id() -> str | None:
    """The request id bound by the innermost :func:`log_request`, or of the running request."""
    request_id = _request_id.get()
    if request_id is None and _running_request_id is not None:
        return _running_request_id()
    return request_id


@contextmanager
def log_request(request: RequestContext | str | None) -> Iterator[None]:
    """Make every log line written inside the block carry the request's id.

    Args:
        request: a :class:`RequestContext` or a request id; ``None`` (or a
            context without an id) binds nothing, so callers need no special case.
    """
    request_id = request.request_id if isinstance(request, RequestContext) else request
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the request id bound where it was logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.nvcf_request_id = current_request_id()
        return True


class _NvcfFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "nvcf_request_id", None)
        if request_id:
            record.message = f"[reqid={request_id}] {record.message}"
        return super().formatMessage(record)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "source": "INFERENCE",
            "message": record.getMessage(),
        }
        request_id = getattr(record, "nvcf_request_id", None)
        if request_id:
            line["reqid"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _json.dumps(line, ensure_ascii=False)


def _utf8_stdout() -> TextIO:
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
        # A stream that cannot change its encoding is kept as it is.
        with contextlib.suppress(ValueError, OSError):
            reconfigure(encoding="utf-8", errors="backslashreplace")
    return stream


def configure_logging(
    level: int | str = logging.INFO, json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger's records to stdout in NVCF's format.

    Safe to call more than once: the handler installed by an earlier call is
    replaced, never duplicated. Handlers installed by others are left alone.

    Args:
        level: the root logger's level.
        json: write one JSON object per line instead of NVCF's text format.
        stream: where to write; stdout (switched to UTF-8) by default.

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_nvcf_helpers", False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream if stream is not None else _utf8_stdout())
    handler._nvcf_helpers = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(_JsonFormatter() if json else _NvcfFormatter(NVCF_LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
