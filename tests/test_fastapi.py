"""Tests for nvcf_helpers.fastapi: the context dependency, problem details, request-id logging.

No server: each request is one call of the ASGI app, as uvicorn makes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="pip install 'nvcf-helpers[fastapi]'")

from fastapi import FastAPI
from pydantic import BaseModel

from nvcf_helpers import InputError, RequestContext, names
from nvcf_helpers.fastapi import (
    PROBLEM_JSON,
    NvcfContext,
    install,
    problem_response,
)

log = logging.getLogger("tests.nvcf_helpers.fastapi")


class Values(BaseModel):
    values: list[float]


def make_app() -> FastAPI:
    """An app with a route per behaviour under test, installed as the template installs it."""
    app = install(FastAPI())

    @app.post("/infer")
    def infer(body: Values, ctx: NvcfContext) -> dict[str, Any]:
        log.info("got %d values", len(body.values))
        if not body.values:
            raise InputError("values is empty: send at least one")
        return {"request_id": ctx.request_id, "max": ctx.max_response_bytes}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("the model fell over")

    return app


def call(
    app: Any, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    """One request through the ASGI app: status, headers and the decoded JSON body."""
    raw_headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    raw_headers.append((b"content-type", b"application/json"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = messages[0]
    answer = b"".join(m.get("body", b"") for m in messages[1:])
    sent = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], sent, json.loads(answer) if answer else None


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo install()'s changes to the root logger and uvicorn's loggers."""
    root = logging.getLogger()
    uvicorn = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(list(lg.handlers), lg.propagate, lg.level) for lg in (root, *uvicorn)]
    yield
    for logger, (handlers, propagate, level) in zip((root, *uvicorn), saved, strict=True):
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)
        logger.propagate, logger.level = propagate, level


@pytest.fixture
def app() -> FastAPI:
    """The test app (a test that reads the log makes its own: install() binds stdout then)."""
    return make_app()


HEADERS = {names.REQUEST_ID: "req-1", names.MAX_RESPONSE_SIZE: "64"}


class TestContext:
    """``ctx: NvcfContext`` is the request's RequestContext, from its NVCF headers."""

    def test_headers_become_the_context(self, app: FastAPI) -> None:
        """The route sees the request id and the limit its headers carried."""
        status, _, body = call(app, "POST", "/infer", HEADERS, b'{"values": [1]}')
        assert (status, body) == (200, {"request_id": "req-1", "max": 64})

    def test_no_headers_is_an_empty_context(self, app: FastAPI) -> None:
        """Without NVCF headers the context holds NVCF's defaults."""
        status, _, body = call(app, "POST", "/infer", {}, b'{"values": [1]}')
        assert (status, body) == (
            200,
            {"request_id": None, "max": RequestContext().max_response_bytes},
        )

    def test_malformed_header_is_a_400(self, app: FastAPI) -> None:
        """A header that does not parse is the caller's mistake: 400 naming it."""
        headers = {**HEADERS, names.MAX_RESPONSE_SIZE: "abc"}
        status, _, body = call(app, "POST", "/infer", headers, b'{"values": [1]}')
        assert status == 400
        assert body["detail"] == (
            f"header {names.MAX_RESPONSE_SIZE} is 'abc': expected a non-negative integer"
        )


class TestProblems:
    """Errors are answered as problem details, never with a traceback."""

    def test_validation_error_names_the_field(self, app: FastAPI) -> None:
        """A body that does not fit the model: 422, the field and pydantic's message."""
        status, headers, body = call(app, "POST", "/infer", HEADERS, b'{"values": "many"}')
        assert status == 422
        assert headers["content-type"] == PROBLEM_JSON
        assert body["title"] == "Unprocessable Entity"
        assert body["status"] == 422
        assert body["detail"] == "body.values: Input should be a valid list"
        assert body["error"] == body["detail"]  # what NVCF's worker passes on as detail

    def test_errors_are_counted_past_three(self, app: FastAPI) -> None:
        """Three errors are named, the rest counted."""
        data = json.dumps({"values": ["a", "b", "c", "d", "e"]}).encode()
        _, _, body = call(app, "POST", "/infer", HEADERS, data)
        assert body["detail"].startswith("body.values[0]: Input should be a valid number")
        assert body["detail"].endswith("; and 2 more")

    def test_body_that_is_not_json_is_a_400(self, app: FastAPI) -> None:
        """JSON that does not parse is a 400 saying where."""
        status, _, body = call(app, "POST", "/infer", HEADERS, b'{"values": [1,')
        assert status == 400
        assert body["detail"] == (
            "the request body is not JSON (Expecting value at position 14): send JSON"
        )

    def test_input_error_is_a_400_with_its_message(self, app: FastAPI) -> None:
        """InputError raised by the route: 400 with its message."""
        status, _, body = call(app, "POST", "/infer", HEADERS, b'{"values": []}')
        assert (status, body["detail"]) == (400, "values is empty: send at least one")

    def test_unknown_route_is_a_404_problem(self, app: FastAPI) -> None:
        """FastAPI's own HTTP errors are problem details too."""
        status, _, body = call(app, "GET", "/nowhere", HEADERS)
        assert (status, body["detail"], body["type"]) == (
            404,
            "Not Found",
            "urn:inference-service:problem-details:not-found",
        )

    def test_unexpected_error_is_a_500_logged_with_its_traceback(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The caller gets the error's name and message; the log gets the traceback."""
        status, _, body = call(make_app(), "GET", "/fail", HEADERS)
        assert (status, body["detail"]) == (
            500,
            "internal error: RuntimeError: the model fell over",
        )
        out = capsys.readouterr().out
        assert "[ERROR] [INFERENCE] [reqid=req-1] inference failed\nTraceback" in out

    def test_problem_response_for_any_status(self) -> None:
        """problem_response builds the body for a status Python has no phrase for."""
        response = problem_response(599, "odd")
        assert json.loads(response.body) == {
            "type": "urn:inference-service:problem-details:",
            "title": "",
            "status": 599,
            "detail": "odd",
            "error": "odd",
        }


class TestLogging:
    """Every line logged while a request is handled carries its request id."""

    def test_route_and_rejection_lines_carry_the_id(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The route's line and the rejection line, in NVCF's format, with the id."""
        app = make_app()
        call(app, "POST", "/infer", HEADERS, b'{"values": [1]}')
        call(app, "POST", "/infer", HEADERS, b'{"values": "many"}')
        lines = capsys.readouterr().out.splitlines()
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
        assert [re.sub(stamp, "T", line) for line in lines] == [
            "T [INFO] [INFERENCE] [reqid=req-1] got 1 values",
            "T [INFO] [INFERENCE] [reqid=req-1] rejected: body.values: Input should be a valid "
            "list",
        ]
        assert "Traceback" not in "\n".join(lines)

    def test_uvicorn_lines_go_through_nvcf_logging(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """uvicorn's loggers lose their own handlers; a disabled access log stays off."""
        server, access = logging.getLogger("uvicorn"), logging.getLogger("uvicorn.access")
        server.addHandler(logging.NullHandler())
        server.propagate = False
        access.handlers.clear()
        access.propagate = False  # what uvicorn --no-access-log leaves
        install(FastAPI())
        assert (server.handlers, server.propagate) == ([], True)
        assert (access.handlers, access.propagate) == ([], False)
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        assert capsys.readouterr().out.endswith(" [INFO] [INFERENCE] Started server process [1]\n")
