"""What the local NVCF shows of itself: metrics, state, series, logs, and the dashboard.

- ``GET /metrics``: Prometheus' text format (:mod:`nvcf_helpers.local.metrics`).
- ``GET /_local/state``: every version as ``GET /v2/nvcf/functions`` describes
  it, with its deployment, and the recent invocations.
- ``GET /_local/series``: a version's points every 5 s (invocations, failures,
  queue depth, mean inference time, instances).
- ``GET /_local/logs``: the containers' log lines (:mod:`nvcf_helpers.local.logs`).
- ``GET /``: the dashboard page; ``GET /_local/dashboard/{name}``: its files.
- ``POST /_local/login`` and ``/_local/logout``: with ``--api-key``, the page
  keeps the key in an HttpOnly, SameSite=Strict cookie, never in a URL.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from nvcf_helpers.local.function_routes import FunctionRoutes
from nvcf_helpers.local.logs import (
    LEVELS,
    LogQuery,
    iso_millis,
    level_rank,
    page_json,
    parse_since,
)
from nvcf_helpers.local.metrics import CONTENT_TYPE, SAMPLE_SECONDS
from nvcf_helpers.local.problems import ApiError

__all__ = ["DASHBOARD_DIR", "KEY_COOKIE", "ObserveRoutes"]

#: The dashboard's files: ``index.html`` and what it loads.
DASHBOARD_DIR = Path(__file__).with_name("dashboard")
#: The cookie that carries the API key for the dashboard (HttpOnly, SameSite=Strict).
KEY_COOKIE = "nvcf_local_key"
#: Most log lines one ``GET /_local/logs`` lists.
MAX_LOG_LIMIT = 100_000
_MAX_MINUTES = 48 * 60
_LOGIN_MESSAGE = "<!-- message -->"
# A page that holds the key form or the key's data is never framed, sniffed or cached.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ObserveRoutes(FunctionRoutes):
    """``/metrics``, ``/_local/{state,series,logs,login,logout}``, and the dashboard."""

    def key_accepted(self, request: web.Request) -> bool:
        """Whether the request carries the API key (header or cookie), or none is needed."""
        if self.api_key is None:
            return True
        expected = self.api_key.encode()
        cookie = request.cookies.get(KEY_COOKIE)
        if cookie and hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"), expected):
            return True
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            key.strip().encode("utf-8", "surrogateescape"), expected
        )

    # -- data ---------------------------------------------------------------------------------

    async def metrics(self, request: web.Request) -> web.Response:
        """``GET /metrics``: Prometheus' text format."""
        return web.Response(
            body=self.cloud.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def state(self, request: web.Request) -> web.Response:
        """``GET /_local/state``: versions, their deployments, and the recent invocations."""
        functions = []
        for version in self.cloud.registry.functions():
            body = self._describe(version)
            deployed = version.deployment is not None
            body["deployment"] = self._deployment_body(version)["deployment"] if deployed else None
            functions.append(body)
        return _json(
            {
                "now": iso_millis(time.time()),
                "functions": functions,
                "invocations": self.cloud.metrics.recent.to_json(self.cloud.files.zips),
            }
        )

    async def series(self, request: web.Request) -> web.Response:
        """``GET /_local/series?functionId=&versionId=&minutes=15``."""
        query = request.query
        minutes = _number(query, "minutes", 15.0, 1 / 60, _MAX_MINUTES)
        points = self.cloud.metrics.series(
            query.get("functionId") or None,
            query.get("versionId") or None,
            time.time() - minutes * 60,
        )
        return _json({"interval": SAMPLE_SECONDS, "points": points})

    async def logs(self, request: web.Request) -> web.Response:
        """``GET /_local/logs?functionId=&versionId=&requestId=&level=&since=&after=&limit=``."""
        log_query = _log_query(request)
        store = self.cloud.logs
        # A query may look at every kept line: off the event loop.
        answer = await asyncio.to_thread(lambda: page_json(*store.query(log_query)))
        return _json(answer)

    # -- the page -----------------------------------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: the dashboard; the key form instead while the key is required and absent."""
        if not self.key_accepted(request):
            return await self._login_page(401)
        return await _file(DASHBOARD_DIR / "index.html")

    async def dashboard_file(self, request: web.Request) -> web.StreamResponse:
        """``GET /_local/dashboard/{name}``: the page's scripts, styles and vendored parts."""
        name = request.match_info["name"]
        path = await asyncio.to_thread(_inside_dashboard, name)  # resolving reads links
        if path is None:
            raise ApiError(404, f"no such dashboard file: {name}")
        return await _file(path)

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``POST /_local/login``: check the key (form field or JSON ``key``), set the cookie."""
        as_json = request.content_type == "application/json"
        key = await _posted_key(request, as_json)
        if self.api_key is not None and not (
            key is not None
            and hmac.compare_digest(key.encode("utf-8", "surrogateescape"), self.api_key.encode())
        ):
            if as_json:
                raise ApiError(
                    401,
                    "the key is wrong: send the key nvcf-helpers local was started with "
                    '(--api-key) as {"key": ...}',
                )
            return await self._login_page(401, "That is not the key this local NVCF runs with.")
        response = _see_the_page()
        if self.api_key is not None:
            response.set_cookie(
                KEY_COOKIE, self.api_key, path="/", httponly=True, samesite="Strict"
            )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """``POST /_local/logout``: forget the cookie."""
        response = _see_the_page()
        response.del_cookie(KEY_COOKIE, path="/")
        return response

    async def _login_page(self, status: int, message: str | None = None) -> web.Response:
        page = await asyncio.to_thread((DASHBOARD_DIR / "login.html").read_text, "utf-8")
        if message:
            page = page.replace(
                _LOGIN_MESSAGE, f'<p class="error" role="alert">{html.escape(message)}</p>'
            )
        return web.Response(
            status=status, text=page, content_type="text/html", headers=_PAGE_HEADERS
        )


def _see_the_page() -> web.Response:
    """303 to the dashboard: the browser GETs it, with the cookie now set (or gone)."""
    return web.Response(status=303, headers={**_PAGE_HEADERS, "Location": "/"})


async def _posted_key(request: web.Request, as_json: bool) -> str | None:
    if as_json:
        try:
            document: Any = json.loads(await request.read())
        except ValueError:
            raise ApiError(400, 'the body is not JSON: send {"key": "..."}') from None
        key = document.get("key") if isinstance(document, dict) else None
    else:
        form = await request.post()
        key = form.get("key")
    return key if isinstance(key, str) else None


def _inside_dashboard(name: str) -> Path | None:
    """The file ``name`` names in the dashboard's folder; ``None`` if hidden or outside it."""
    root = DASHBOARD_DIR.resolve()
    path = (root / name).resolve()
    hidden = any(part.startswith(".") for part in Path(name).parts)
    return None if hidden or not path.is_relative_to(root) else path


async def _file(path: Path) -> web.StreamResponse:
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, f"no such dashboard file: {path.name}")
    return web.FileResponse(path, headers=_PAGE_HEADERS)


def _json(document: dict[str, Any]) -> web.Response:
    return web.json_response(document, headers={"Cache-Control": "no-store"})


def _number(query: Any, name: str, default: float, least: float, most: float) -> float:
    text = query.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not least <= value <= most:
        raise ApiError(400, f"{name}={text!r} is not a number from {least:g} to {most:g}")
    return value


def _whole(query: Any, name: str, least: int, most: int) -> int:
    text = query[name]
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if not least <= value <= most:
        raise ApiError(400, f"{name}={text!r} is not a whole number from {least} to {most}")
    return value


def _log_query(request: web.Request) -> LogQuery:
    """The filters of ``GET /_local/logs``; 400 naming a wrong one."""
    query = request.query
    level = query.get("level") or None
    if level is not None:
        rank = level_rank(level)
        if rank is None:
            raise ApiError(400, f"level={level!r} is not one of {', '.join(LEVELS)}")
        level = LEVELS[rank]
    since = None
    if query.get("since"):
        try:
            since = parse_since(query["since"], time.time())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    after = _whole(query, "after", 0, 2**63) if query.get("after") else None
    limit = _whole(query, "limit", 1, MAX_LOG_LIMIT) if query.get("limit") else 1000
    return LogQuery(
        function_id=query.get("functionId") or None,
        version_id=query.get("versionId") or None,
        request_id=query.get("requestId") or None,
        level=level,
        since=since,
        after=after,
        limit=limit,
    )
