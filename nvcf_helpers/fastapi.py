"""Serve a FastAPI app as an NVCF container function; the fastapi-container template shows how.

:func:`install` makes an app log in NVCF's format with the request id on
every line written while a request is handled, and answer errors as
problem details without a traceback; :data:`NvcfContext` (the dependency
:func:`request_context`) gives a route its :class:`~nvcf_helpers.RequestContext`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nvcf_helpers import names
from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import InvalidInputError
from nvcf_helpers.log import configure_logging, log_request

__all__ = [
    "PROBLEM_JSON",
    "NvcfContext",
    "install",
    "problem_response",
    "request_context",
]

#: The media type of an error answer (RFC 9457 problem details).
PROBLEM_JSON = "application/problem+json"

_LOG = logging.getLogger(__name__)
# ASGI servers hand header names over lower-cased, as bytes.
_REQUEST_ID = names.REQUEST_ID.lower().encode("latin-1")
# Each NVCF header's raw name -> the spelling RequestContext.from_headers looks up first.
_CONTEXT_HEADERS = {h.lower().encode("latin-1"): h.lower() for h in names.CONTEXT_HEADERS.values()}
# The most validation errors one answer names; the rest are counted.
_SHOWN_ERRORS = 3
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


async def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the NVCF context of the request being handled.

    ``async`` on purpose: FastAPI would run a plain function in its thread pool.

    Raises:
        HeaderError: a malformed NVCF header; :func:`install` answers it with a 400.
    """
    return RequestContext.from_headers(
        {
            _CONTEXT_HEADERS[name]: value.decode("latin-1")
            for name, value in request.scope["headers"]
            if name in _CONTEXT_HEADERS
        }
    )


#: A route parameter annotated ``ctx: NvcfContext`` receives the request's context.
NvcfContext = Annotated[RequestContext, Depends(request_context)]


def problem_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error answer: problem details (``type``, ``title``, ``status``, ``detail``).

    ``error`` repeats ``detail``: NVCF's worker rewraps a container's error in
    its own problem details and takes their ``detail`` from that field, so the
    caller reads the same message through NVCF as from the container itself.
    """
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = ""
    body = {
        # The type NVCF's worker gives the rewrapped answer, so both read alike.
        "type": "urn:inference-service:problem-details:" + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,
    }
    return Response(
        json.dumps(body, ensure_ascii=False), status, headers=headers, media_type=PROBLEM_JSON
    )


def _location(parts: Sequence[Any]) -> str:
    """``("body", "values", 0)`` as ``body.values[0]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _validation_problem(errors: Sequence[Any]) -> tuple[int, str]:
    """The status and detail for pydantic's errors: 400 for JSON that does not parse, else 422."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "JSON decode error")
        where = "".join(f" at position {p}" for p in first.get("loc", ())[1:2])
        return 400, f"the request body is not JSON ({reason}{where}): send JSON"
    shown = [f"{_location(e.get('loc', ()))}: {e.get('msg')}" for e in errors[:_SHOWN_ERRORS]]
    if len(errors) > _SHOWN_ERRORS:
        shown.append(f"and {len(errors) - _SHOWN_ERRORS} more")
    return 422, "; ".join(shown)


async def _validation_failed(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    status, detail = _validation_problem(errors)
    _LOG.info("rejected: %s", detail)
    return problem_response(status, detail)


async def _invalid_input(request: Request, exc: Exception) -> Response:
    _LOG.info("rejected: %s", exc)
    return problem_response(400, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    return problem_response(exc.status_code, str(exc.detail), exc.headers)


class _RequestScope:
    """ASGI middleware: binds the request id for logging; answers an unhandled error with 500.

    Plain ASGI, not ``BaseHTTPMiddleware``: that one costs a task group per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                request_id = value.decode("latin-1")
        started = False

        async def send_once_started(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        with log_request(request_id):
            try:
                await self.app(scope, receive, send_once_started)
            except Exception as exc:
                if started:  # too late for an answer of our own
                    raise
                _LOG.exception("inference failed")
                answer = problem_response(500, f"internal error: {type(exc).__name__}: {exc}")
                await answer(scope, receive, send)


def _route_uvicorn_logs() -> None:
    """Send uvicorn's own lines through the root logger, in NVCF's format, on stdout.

    A logger without handlers of its own (the access log after
    ``--no-access-log``) is left alone, so it stays off.
    """
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if logger.handlers:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


def install(
    app: FastAPI, *, log_level: int | str = logging.INFO, json_logs: bool = False
) -> FastAPI:
    """Make ``app`` an NVCF container function's server. Call it once, before serving.

    - Logging: NVCF's format on stdout (uvicorn's own lines too), and every
      line logged while a request is handled carries its ``NVCF-REQID``.
    - Errors, as problem details without a traceback: a body or parameter
      that fails validation is a 422 naming the field (400 for a body that
      is not JSON); an :class:`~nvcf_helpers.errors.InvalidInputError` (an
      ``InputError`` you raise, a malformed NVCF header) a 400 with its
      message; any other exception a 500, logged with its traceback.

    Args:
        app: the application.
        log_level: the root logger's level.
        json_logs: log one JSON object per line instead of NVCF's text format.

    Returns:
        ``app``.
    """
    configure_logging(log_level, json=json_logs)
    _route_uvicorn_logs()
    app.add_middleware(_RequestScope)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(HTTPException, _http_error)
    return app
