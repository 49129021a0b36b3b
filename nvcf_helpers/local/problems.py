"""The gateway's problem-details answers (RFC 9457), as NVCF's gateway writes them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

from nvcf_helpers.local.store import Invocation, Result

__all__ = ["PROBLEM_JSON", "ApiError", "gateway_problem", "problem", "shown", "stopping_result"]

PROBLEM_JSON = "application/problem+json"
_SHOWN_CHARACTERS = 40


class ApiError(Exception):
    """An answer other than success, carried up to the problem-details middleware."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def gateway_problem(status: int, detail: str) -> bytes:
    """A problem-details body as NVCF's gateway writes one: ``title``, ``status``, ``detail``.

    ``type`` is left out, which RFC 9457 reads as ``about:blank``.
    """
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = ""
    return json.dumps({"title": title, "status": status, "detail": detail}).encode("utf-8")


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A problem-details answer: :func:`gateway_problem` as ``application/problem+json``."""
    return web.Response(
        status=status,
        body=gateway_problem(status, detail),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def shown(text: str) -> str:
    """A header value for a message: quoted, and cut short when it is long."""
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def stopping_result(invocation: Invocation, *, queued: bool, grace: float) -> Result:
    """The 503 a caller gets when the local NVCF stops before its request is answered."""
    if queued:
        detail = (
            f"the local NVCF is stopping, and request {invocation.request_id} was still "
            "waiting in the queue: invoke it again once nvcf-helpers local runs again"
        )
    else:
        detail = (
            f"the local NVCF is stopping, and request {invocation.request_id} did not "
            f"finish within the {grace:g} s it was given: invoke it again once "
            "nvcf-helpers local runs again"
        )
    return Result(
        503,
        gateway_problem(503, detail),
        {"Content-Type": PROBLEM_JSON},
        nvcf_status="errored",
    )
