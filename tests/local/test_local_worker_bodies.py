"""The worker's exchange with the container: large bodies on disk, redirects relayed, cancellation.

- A container's body streams to a file in chunks: a 100 MiB answer leaves the
  gateway's peak memory (``VmHWM``) far below the body's size, and comes back
  intact, as NVCF's 302 zip (facts §2, "Large output") or passed through
  outside compatibility mode.
- A container's redirect is the container's answer: relayed, never followed
  (facts §2, "Small successes pass through with container status/headers").
- A cancelled request cancels the container call: the container sees its
  connection closed (facts §4, "Client disconnect": the worker cancels).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import json
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bodies_server import Handler, body_bytes
from local_support import server_nvcf, server_spec
from server_base import Server

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.store import Invocation, InvocationStore
from nvcf_helpers.local.worker import Forward, Worker
from nvcf_helpers.spec import parse_spec
from nvcf_helpers.testing import free_port

BODIES_SERVER = Path(__file__).with_name("bodies_server.py")
LARGE = 100 * 1024 * 1024
NO_COMPATIBILITY = ((names.DISABLE_WORKER_COMPATIBILITY, "true"),)


@pytest.fixture(scope="module")
def nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """A local NVCF with NVCF's defaults (5 MiB inline) before the bodies server."""
    with server_nvcf(BODIES_SERVER, "bodies-server", tmp_path_factory.mktemp("bodies")) as local:
        yield local


def _address(nvcf: LocalNvcf) -> tuple[str, int]:
    host, port = nvcf.base_url.removeprefix("http://").split(":")
    return host, int(port)


def _request(  # noqa: PLR0917 - the shape of an HTTP request
    nvcf: LocalNvcf,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = 120.0,
) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    connection = http.client.HTTPConnection(*_address(nvcf), timeout=timeout)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    return connection.getresponse(), connection


def _invoke(
    nvcf: LocalNvcf, request: dict[str, Any], headers: Sequence[tuple[str, str]] = ()
) -> tuple[int, http.client.HTTPMessage, bytes]:
    path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
    headers = [("Content-Type", "application/json"), (names.POLL_SECONDS, "120"), *headers]
    response, connection = _request(nvcf, "POST", path, json.dumps(request).encode(), headers)
    try:
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _reset_peak_rss(pid: int) -> None:
    """Start ``VmHWM`` again from the current RSS (Linux >= 4.0); without it, growth is a floor."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


requires_proc = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="needs /proc to read the gateway's memory"
)


@requires_proc
class TestLargeBodies:
    """§2 "Large output": a body over 5 MiB goes to disk, then into the zip, never all in memory."""

    def test_large_body_comes_back_as_a_zip_without_holding_it(self, nvcf: LocalNvcf) -> None:
        pid = nvcf.pid
        assert pid is not None
        _reset_peak_rss(pid)
        before = _peak_rss(pid)
        status, headers, body = _invoke(nvcf, {"size": LARGE})
        growth = _peak_rss(pid) - before
        assert status == 302, body[:300]
        location = headers["Location"]
        request_id = headers[names.REQUEST_ID]
        download, connection = _request(nvcf, "GET", "/" + location.split("/", 3)[3])
        try:
            assert download.status == 200
            archive = download.read()
        finally:
            connection.close()
        with zipfile.ZipFile(_as_file(archive)) as bundle:
            members = bundle.namelist()
            assert members[0] == names.response_member(request_id)
            assert _digest(bundle.read(members[0])) == _digest(body_bytes(LARGE))
        assert growth < LARGE // 2, f"the gateway's peak RSS grew by {growth} bytes"

    def test_large_body_outside_compatibility_streams_through(self, nvcf: LocalNvcf) -> None:
        """§2 "Outside compatibility mode": no 5 MiB check; the body still never sits in memory."""
        pid = nvcf.pid
        assert pid is not None
        _reset_peak_rss(pid)
        before = _peak_rss(pid)
        status, headers, body = _invoke(nvcf, {"size": LARGE}, NO_COMPATIBILITY)
        growth = _peak_rss(pid) - before
        assert status == 200
        assert headers["Content-Length"] == str(LARGE)
        assert _digest(body) == _digest(body_bytes(LARGE))
        assert growth < LARGE // 2, f"the gateway's peak RSS grew by {growth} bytes"

    def test_large_error_body_is_read_only_up_to_the_limit(self, nvcf: LocalNvcf) -> None:
        """§2 "Errors": the rewrap reads the first 5 MiB + 1 byte; the rest is never held."""
        pid = nvcf.pid
        assert pid is not None
        size = 60 * 1024 * 1024
        _reset_peak_rss(pid)
        before = _peak_rss(pid)
        status, headers, body = _invoke(nvcf, {"size": size, "status": 500})
        growth = _peak_rss(pid) - before
        assert status == 500
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(body)["detail"] == "Inference error"
        assert growth < size // 2, f"the gateway's peak RSS grew by {growth} bytes"

    def test_body_over_the_memory_chunk_and_under_the_limit_is_inline(
        self, nvcf: LocalNvcf
    ) -> None:
        """§2 "Small successes": 3 MiB (on disk here) comes back inline, as the container sent."""
        size = 3 * 1024 * 1024
        status, headers, body = _invoke(nvcf, {"size": size})
        assert status == 200
        assert headers["Content-Type"] == "application/octet-stream"
        assert _digest(body) == _digest(body_bytes(size))
        again, _, _ = _invoke(nvcf, {"size": 5 * 1024 * 1024 + 1})
        assert again == 302  # one byte over NVCF's 5242880


def _as_file(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


class TestRedirects:
    """§2 "Small successes pass through with container status/headers": a redirect included."""

    @pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
    def test_a_redirect_is_relayed_not_followed(self, nvcf: LocalNvcf, code: int) -> None:
        status, headers, body = _invoke(nvcf, {"redirect": code, "location": "/elsewhere"})
        assert status == code
        assert headers["Location"] == "/elsewhere"
        assert body == b"redirected"
        assert headers[names.STATUS] == "fulfilled"

    def test_outside_compatibility_too(self, nvcf: LocalNvcf) -> None:
        request = {"redirect": 307, "location": "/elsewhere"}
        status, headers, body = _invoke(nvcf, request, NO_COMPATIBILITY)
        assert (status, headers["Location"], body) == (307, "/elsewhere", b"redirected")


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


class TestCancellation:
    """§4 "Client disconnect": the worker cancels the request, and the container sees it."""

    def test_caller_leaving_before_an_answer_closes_the_container_call(
        self, nvcf: LocalNvcf, tmp_path: Path
    ) -> None:
        marker = tmp_path / "closed"
        path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
        body = json.dumps({"marker": str(marker)}).encode()
        headers = [("Content-Type", "application/json"), (names.POLL_SECONDS, "60")]
        with pytest.raises(TimeoutError):
            _request(nvcf, "POST", path, body, headers, timeout=1.0)
        assert _wait_for(marker, 15.0), "the container's connection stayed open"

    def test_a_cancelled_invocation_closes_the_connection_mid_body(self, tmp_path: Path) -> None:
        """Cancelled while the body arrives: the call is closed and its file is removed."""
        marker = tmp_path / "closed"
        with _container() as port:
            outcome = asyncio.run(_cancel_mid_body(tmp_path, port, marker))
        assert _wait_for(marker, 10.0), "the container's connection stayed open"
        assert outcome["seconds"] < 10
        assert outcome["left"] == []

    def test_a_request_cancelled_before_its_call_never_reaches_the_container(
        self, tmp_path: Path
    ) -> None:
        marker = tmp_path / "closed"
        with _container() as port:
            outcome = asyncio.run(_cancel_mid_body(tmp_path, port, marker, before=True))
        assert not marker.exists()
        assert outcome["left"] == []
        assert outcome["status"] >= 400


class _Container:
    def __init__(self) -> None:
        self.port = free_port()
        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _container() -> _Container:
    return _Container()


async def _cancel_mid_body(
    root: Path, port: int, marker: Path, *, before: bool = False
) -> dict[str, Any]:
    root = root / "root"
    root.mkdir()
    spec = parse_spec(server_spec("bodies-server", port))
    function = LocalFunction(spec)
    function.status = FunctionStatus.ACTIVE
    store = InvocationStore()
    (root / "assets").mkdir()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        worker = Worker(
            function, store, AssetStore(root / "assets"), root, session, max_concurrency=1
        )
        invocation = Invocation(function.function_id, function.version_id)
        request = {"size": 8 * 1024 * 1024, "stall_after": 3 * 1024 * 1024, "marker": str(marker)}
        forward = Forward(json.dumps(request).encode(), [], (), time.monotonic() + 60)
        if before:
            invocation.cancel()
        started = time.monotonic()
        store.enqueue(invocation, lambda: worker.submit(invocation, forward))
        if not before:
            await asyncio.sleep(1.0)  # the first 3 MiB arrive, then the container stalls
            assert [path.name for path in (root / "bodies").iterdir()] == [invocation.request_id]
            invocation.cancel()
        await asyncio.wait_for(invocation.done.wait(), 10)
        await worker.close()
        await asyncio.sleep(0.1)
        left = [str(path) for path in root.rglob("*") if path.is_file()]
        left = [path for path in left if "/assets/" not in path]
        assert invocation.result is not None
        return {
            "seconds": time.monotonic() - started,
            "left": left,
            "status": invocation.result.status,
        }
