"""Helpers shared by the local NVCF tests: the contract server's spec and raw HTTP calls."""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

CONTRACT_SERVER = Path(__file__).with_name("contract_server.py")
API_KEY = "local-test-key"
#: Small, so that 302 answers are cheap to provoke.
MAX_RESPONSE_BYTES = 64_000


def server_spec(name: str, port: int, **fields: Any) -> dict[str, Any]:
    """A function.json for a test server ``name`` on ``port``: ``/infer`` and ``/health``."""
    return {
        "name": name,
        "inferenceUrl": "/infer",
        "inferencePort": port,
        "health": {
            "protocol": "HTTP",
            "uri": "/health",
            "port": port,
            "timeout": "PT5S",
            "expectedStatusCode": 200,
        },
        "containerImage": f"local/{name}:latest",
        **fields,
    }


#: What the contract server's function.json has beyond :func:`server_spec`.
CONTRACT_FIELDS: dict[str, Any] = {
    "apiBodyFormat": "CUSTOM",
    "containerEnvironment": [
        {"key": "CONTRACT_GREETING", "value": "hello"},
        {"key": "NVCF_FUNCTION_ID", "value": "not-allowed"},
    ],
}


def contract_spec(port: int) -> dict[str, Any]:
    """A function.json for the contract server listening on ``port``."""
    return server_spec("contract-server", port, **CONTRACT_FIELDS)


def contract_command(port: int) -> list[str]:
    """The command that starts the contract server on ``port``."""
    return [sys.executable, str(CONTRACT_SERVER), str(port)]


@dataclass
class Reply:
    """A raw HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Raw:
    """Plain HTTP calls to a local NVCF, so tests see exactly what NVCF's API answers."""

    def __init__(self, nvcf: LocalNvcf, api_key: str | None) -> None:
        self.nvcf = nvcf
        self.api_key = api_key

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        auth: bool = True,
    ) -> Reply:
        url = urllib.parse.urlsplit(self.nvcf.base_url + path if path.startswith("/") else path)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        sent = dict(headers or {})
        if auth and self.api_key:
            sent.setdefault("Authorization", f"Bearer {self.api_key}")
        data: Any
        if body is None or isinstance(body, (bytes, Iterator)):
            data = body  # an iterator of bytes is sent chunked
        else:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            target = url.path + (f"?{url.query}" if url.query else "")
            chunked = isinstance(data, Iterator)
            connection.request(method, target, body=data, headers=sent, encode_chunked=chunked)
            response = connection.getresponse()
            # http.client's message is case-insensitive, like a real header lookup.
            return Reply(response.status, response.headers, response.read())  # type: ignore[arg-type]
        finally:
            connection.close()

    def invoke(self, body: Any, headers: Mapping[str, str] | None = None, **kw: Any) -> Reply:
        """POST an invocation of the function."""
        return self.invoke_function(self.nvcf.function_id, body, headers, **kw)

    def invoke_function(
        self, function_id: str, body: Any, headers: Mapping[str, str] | None = None, **kw: Any
    ) -> Reply:
        """POST an invocation of function ``function_id`` (any of its running versions)."""
        return self("POST", f"/v2/nvcf/pexec/functions/{function_id}", body, headers, **kw)


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until ``condition()`` holds (the gateway cleans up just after it answers)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def headers_seen(echo: Mapping[str, Any]) -> dict[str, list[str]]:
    """The headers the contract server received, by lower-case name, every value kept."""
    seen: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return seen


def header_seen(echo: Mapping[str, Any], name: str) -> str:
    """The one value the contract server received for header ``name``."""
    values = headers_seen(echo)[name.lower()]
    assert len(values) == 1, f"{name} arrived {len(values)} times: {values}"
    return values[0]


@contextlib.contextmanager
def server_nvcf(
    script: Path,
    name: str,
    directory: Path,
    spec: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[LocalNvcf]:
    """A local NVCF in front of a test server (``python SCRIPT PORT``), until the block ends.

    ``spec`` adds fields to :func:`server_spec`; ``options`` go to
    :class:`LocalNvcf`. Its output goes to ``directory / "output.log"``,
    also kept as ``.log``.
    """
    port = free_port()
    log = directory / "output.log"
    definition = server_spec(name, port, **(spec or {}))
    with LocalNvcf(
        definition, [sys.executable, str(script), str(port)], output=log, **options
    ) as local:
        local.log = log  # type: ignore[attr-defined]
        yield local


@contextlib.contextmanager
def contract_nvcf(directory: Path) -> Iterator[LocalNvcf]:
    """A local NVCF with the test API key in front of the contract server (4 slots)."""
    with server_nvcf(
        CONTRACT_SERVER,
        "contract-server",
        directory,
        CONTRACT_FIELDS,
        api_key=API_KEY,
        max_concurrency=4,
        max_response_bytes=MAX_RESPONSE_BYTES,
    ) as local:
        yield local
