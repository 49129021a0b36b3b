"""What NVCF's gateway reads from a request (poll window, direct route) and adds to an answer."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping

from aiohttp import web

from nvcf_helpers import names
from nvcf_helpers.local.problems import ApiError, shown
from nvcf_helpers.local.store import Invocation

__all__ = [
    "EVENT_STREAM",
    "EXPOSE_HEADERS",
    "MAX_POLL_SECONDS",
    "connected",
    "direct_route",
    "gateway_headers",
    "header_problem",
    "nvcf_status",
    "parse_uuid",
    "poll_seconds",
]

logger = logging.getLogger("nvcf_helpers.local")

#: NVCF's gateway lets browsers read the request id of every answer it relays.
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
EVENT_STREAM = "text/event-stream"
MAX_POLL_SECONDS = names.MAX_POLL_SECONDS
# NVCF parses NVCF-POLL-SECONDS as a Rust u64: ASCII digits, an optional '+', at most 2**64-1.
_U64 = re.compile(r"\+?[0-9]+")
_U64_DIGITS = 20
_SHOWN_CHARACTERS = 40


def poll_seconds(headers: Mapping[str, str], *, direct: bool = False) -> int:
    """The poll window of a request, as NVCF's gateway reads ``NVCF-POLL-SECONDS``.

    Absent: 60 s, or 1200 s when ``Accept`` is exactly ``text/event-stream``
    (not for direct calls). Values below 1 count as 1; above 3600, or not a
    whole number, are refused.

    Raises:
        ApiError: 400, "failed to parse poll duration", naming the value.
    """
    raw = headers.get(names.POLL_SECONDS)
    if raw is not None and not raw.isascii():
        logger.warning(
            "%s %s is not ASCII text: NVCF's gateway ignores it and waits the default",
            names.POLL_SECONDS,
            shown(raw),
        )
        raw = None
    if raw is None:
        if not direct and headers.get("Accept") == EVENT_STREAM:
            return names.DEFAULT_STREAM_POLL_SECONDS
        return names.DEFAULT_POLL_SECONDS
    digits = raw.removeprefix("+").lstrip("0") or "0"
    # Checked before int(): Python refuses to convert more than 4300 digits (a 500).
    seconds = int(digits) if _U64.fullmatch(raw) and len(digits) <= _U64_DIGITS else None
    if seconds is None or seconds >= 1 << 64 or seconds > names.MAX_POLL_SECONDS:
        raise ApiError(
            400,
            f"failed to parse poll duration: {names.POLL_SECONDS} is {shown(raw)}; send "
            f"whole seconds up to {names.MAX_POLL_SECONDS} (0 counts as "
            f"{names.MIN_POLL_SECONDS})",
        )
    return max(seconds, names.MIN_POLL_SECONDS)


def nvcf_status(status: int) -> str:
    """``NVCF-STATUS`` of an answer NVCF's gateway relays: by its status code."""
    if status == 202:
        return "in-progress"
    return "fulfilled" if 200 <= status < 400 else "errored"


def gateway_headers(invocation: Invocation, status: int) -> dict[str, str]:
    """The headers NVCF's gateway adds to every answer about a request."""
    return {
        names.REQUEST_ID: invocation.request_id,
        names.STATUS: nvcf_status(status),
        EXPOSE_HEADERS: names.REQUEST_ID,
    }


def parse_uuid(text: str | None) -> str | None:
    """``text`` as a canonical UUID, or ``None`` when it is not one."""
    if not text:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def direct_route(request: web.Request) -> tuple[str, str | None] | None:
    """The function (and version) a direct invocation names, or ``None`` for a normal route.

    As NVCF's gateway: a ``function-id`` header holding a UUID (with an
    optional ``function-version-id``), else a host name that starts with
    ``<functionId>.`` or ``<versionId>.<functionId>.``. The stand-ins for
    S3's pre-signed URLs are never routed there.
    """
    if request.path.startswith("/_local/"):
        return None
    function_id = parse_uuid(request.headers.get(names.DIRECT_FUNCTION_ID))
    if function_id is not None:
        return function_id, parse_uuid(request.headers.get(names.DIRECT_FUNCTION_VERSION_ID))
    host = request.headers.get("Host", "")
    if len(host) < 36 or host[8:9] != "-":
        return None  # no UUID in front: an address or a plain name (checked cheaply)
    first = parse_uuid(host[:36])
    if first is None:
        return None
    second = parse_uuid(host[37:73]) if host[36:37] == "." else None
    return (second, first) if second is not None else (first, None)


def header_problem(request: web.Request) -> str | None:
    """Why a request header cannot be handled (not UTF-8 text), or ``None``."""
    for name, value in request.headers.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "surrogateescape")[:_SHOWN_CHARACTERS]
            return (
                f"header {name} is not UTF-8 text ({shown!r}): send header values as "
                "ASCII or UTF-8 (NVCF cannot forward it either)"
            )
    return None


def connected(request: web.Request) -> bool:
    """Whether the caller of ``request`` is still connected."""
    transport = request.transport
    return transport is not None and not transport.is_closing()
