"""The contract suite's caller: plain HTTP to a target NVCF, nothing of the local NVCF's internals.

Kept out of ``conftest.py`` so that test modules can import it by a name no
other directory uses.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ECHO_DIR = Path(__file__).with_name("echo")
ECHO_SPEC = json.loads((ECHO_DIR / "function.json").read_text(encoding="utf-8"))
LOCAL_KEY = "contract-suite-key"
#: The local target's queue: one request running and this many waiting, then 429.
LOCAL_QUEUE_SIZE = 2
Header = tuple[str, str]


@dataclass
class Reply:
    """A raw HTTP answer; headers looked up case-insensitively, every value kept."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        return str(self.headers["NVCF-REQID"])

    def seen(self, name: str) -> list[str]:
        """The values the echo container received for header ``name`` (any case)."""
        return [v for k, v in self.json()["headers"] if k.lower() == name.lower()]

    def seen_exactly(self, name: str) -> list[str]:
        """The values the echo container received for header ``name``, spelled exactly so."""
        return [v for k, v in self.json()["headers"] if k == name]


@dataclass
class Target:
    """Where the suite sends its requests: a base URL, a key and the echo function."""

    base_url: str
    api_key: str | None
    function_id: str
    version_id: str
    function_name: str
    inference_url: str
    local: bool
    extras: dict[str, Any] = field(default_factory=dict)

    def _connection(self, url: urllib.parse.SplitResult, timeout: float) -> Any:
        port = url.port
        if url.scheme == "https":
            return http.client.HTTPSConnection(url.hostname or "", port, timeout=timeout)
        return http.client.HTTPConnection(url.hostname or "", port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[Header] = (),
        *,
        auth: bool = True,
        timeout: float = 60.0,
    ) -> Reply:
        """One request with exactly these headers (plus Host, Authorization, Content-Length)."""
        url = urllib.parse.urlsplit(path if "://" in path else self.base_url + path)
        connection = self._connection(url, timeout)
        started = time.monotonic()
        try:
            sent = {name.lower() for name, _ in headers}
            target = url.path + (f"?{url.query}" if url.query else "")
            connection.putrequest(
                method, target, skip_host="host" in sent, skip_accept_encoding=True
            )
            if auth and self.api_key:
                connection.putheader("Authorization", f"Bearer {self.api_key}")
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, response.headers, data, time.monotonic() - started)
        finally:
            connection.close()

    @property
    def pexec(self) -> str:
        return f"/v2/nvcf/pexec/functions/{self.function_id}"

    def invoke(
        self,
        request: dict[str, Any] | None = None,
        headers: Sequence[Header] = (),
        *,
        content_type: str | None = "application/json",
        path: str | None = None,
        raw: bytes | None = None,
        **kw: Any,
    ) -> Reply:
        """POST a pexec invocation with a JSON body (the echo container's instructions)."""
        sent = [("Content-Type", content_type)] if content_type else []
        body = raw if raw is not None else json.dumps(request or {}).encode()
        return self.call("POST", path or self.pexec, body, [*sent, *headers], **kw)

    def status(self, request_id: str, poll: str = "1", **kw: Any) -> Reply:
        """GET a request's status with a poll window."""
        path = f"/v2/nvcf/pexec/status/{request_id}"
        return self.call("GET", path, None, [("NVCF-POLL-SECONDS", poll)], **kw)

    def until_done(self, reply: Reply, timeout: float = 30.0, poll: str = "1") -> Reply:
        """Poll a 202 until the final answer."""
        deadline = time.monotonic() + timeout
        while reply.status == 202 and time.monotonic() < deadline:
            reply = self.status(reply.request_id, poll)
        return reply

    def direct(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[Header] = (),
        **kw: Any,
    ) -> Reply:
        """A direct invocation: the ``function-id`` header on any path."""
        return self.call(method, path, body, [("function-id", self.function_id), *headers], **kw)

    def download(self, location: str) -> bytes:
        """GET a 302's Location (a pre-signed URL: no API key)."""
        reply = self.call("GET", location, auth=False)
        assert reply.status == 200, reply.body[:200]
        return reply.body
