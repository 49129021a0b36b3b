"""The local NVCF's gateway, checked fact by fact against NVCF's published source.

Each test names the bullet of ``NVCF_SOURCE_FACTS.md`` section 4 (the
gateway), or of issue 10, that it checks. The container is
``gateway_server.py``: it answers any method on any path and echoes what it got.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_support import eventually, server_spec

from nvcf_helpers import cli, names
from nvcf_helpers.client import NvcfClient
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration

SERVER = Path(__file__).with_name("gateway_server.py")
KEY = "gateway-facts-key"
Header = tuple[str, "str | bytes"]


@dataclass
class Reply:
    """A raw HTTP answer, headers looked up case-insensitively."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def seen(self, name: str) -> list[str]:
        """The values the container received for header ``name`` (from its echo)."""
        return [v for k, v in self.json()["headers"] if k.lower() == name.lower()]


def _spec(port: int) -> dict[str, Any]:
    return server_spec("gateway-facts", port)


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Starts local NVCFs in front of the gateway test server; all stop at the module's end."""
    started: list[LocalNvcf] = []

    def start(*extra: str, max_concurrency: int = 4, **options: Any) -> LocalNvcf:
        port = free_port()
        log = tmp_path_factory.mktemp("gateway-facts") / "output.log"
        nvcf = LocalNvcf(
            _spec(port),
            [sys.executable, str(SERVER), str(port)],
            api_key=KEY,
            max_concurrency=max_concurrency,
            output=log,
            extra_args=extra,
            **options,
        )
        nvcf.start()
        nvcf.log = log  # type: ignore[attr-defined]
        started.append(nvcf)
        return nvcf

    yield start
    for nvcf in started:
        nvcf.stop()


@pytest.fixture(scope="module")
def gw(start: Any) -> LocalNvcf:
    """A local NVCF with 4 slots."""
    nvcf: LocalNvcf = start()
    return nvcf


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file the container waits for; created at teardown so nothing stays blocked."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def call(
    nvcf: LocalNvcf,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Sequence[Header] = (),
    *,
    auth: bool = True,
    timeout: float = 60.0,
) -> Reply:
    """One request with exactly these headers (bytes values go out as they are)."""
    url = urllib.parse.urlsplit(nvcf.base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        names_sent = {name.lower() for name, _ in headers}
        connection.putrequest(method, path, skip_host="host" in names_sent)
        if auth:
            connection.putheader("Authorization", f"Bearer {KEY}")
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None and "content-length" not in names_sent:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def invoke(
    nvcf: LocalNvcf, request: dict[str, Any], headers: Sequence[Header] = (), **kw: Any
) -> Reply:
    """POST an invocation with a JSON body."""
    sent = [("Content-Type", "application/json"), *headers]
    path = f"/v2/nvcf/pexec/functions/{nvcf.function_id}"
    return call(nvcf, "POST", path, json.dumps(request).encode(), sent, **kw)


def status(nvcf: LocalNvcf, request_id: str, poll: str = "1", **kw: Any) -> Reply:
    """GET the status of a request."""
    path = f"/v2/nvcf/pexec/status/{request_id}"
    return call(nvcf, "GET", path, None, [(names.POLL_SECONDS, poll)], **kw)


def poll_to_result(nvcf: LocalNvcf, reply: Reply, timeout: float = 60.0) -> Reply:
    """Poll a 202 until its final answer."""
    deadline = time.monotonic() + timeout
    while reply.status == 202 and time.monotonic() < deadline:
        reply = status(nvcf, reply.headers[names.REQUEST_ID])
    return reply


def in_background(function: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``function()`` in a thread; its result lands in the list."""
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(function()), daemon=True)
    thread.start()
    return thread, results


def assert_gateway_problem(reply: Reply, status_code: int, detail: str) -> None:
    """RFC 9457 as NVCF's gateway writes it: title, status, detail; no type, no extras."""
    assert reply.status == status_code
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert set(problem) == {"title", "status", "detail"}
    assert problem["status"] == status_code
    assert detail in problem["detail"]


class TestPollSeconds:
    """§4 "NVCF-POLL-SECONDS": the gateway's defaults, floor and ceiling."""

    def test_default_is_60(self, gw: LocalNvcf) -> None:
        """§4: "Default 60 s": the container sees 59 or 60 seconds left."""
        reply = invoke(gw, {})
        assert int(reply.seen(names.POLL_SECONDS)[0]) in (59, 60)

    def test_event_stream_default_is_1200(self, gw: LocalNvcf) -> None:
        """§4: absent header and ``Accept`` exactly ``text/event-stream``: 1200 s."""
        reply = invoke(gw, {}, [("Accept", "text/event-stream")])
        echo = json.loads(reply.body.removeprefix(b"data: "))
        seen = [v for k, v in echo["headers"] if k.lower() == names.POLL_SECONDS.lower()]
        assert int(seen[0]) in (1199, 1200)

    def test_other_accept_keeps_60(self, gw: LocalNvcf) -> None:
        """§4: only an ``Accept`` of exactly ``text/event-stream`` changes the default."""
        reply = invoke(gw, {}, [("Accept", "application/json")])
        assert int(reply.seen(names.POLL_SECONDS)[0]) in (59, 60)

    def test_zero_counts_as_one(self, gw: LocalNvcf) -> None:
        """§4: "Values below 1 are raised to 1": a 0.5 s answer still arrives as a 200."""
        reply = invoke(gw, {"sleep": 0.5}, [(names.POLL_SECONDS, "0")])
        assert reply.status == 200

    def test_3600_is_accepted(self, gw: LocalNvcf) -> None:
        """§4: 3600 is within the gateway's range (the docs' 300 is not enforced)."""
        reply = invoke(gw, {}, [(names.POLL_SECONDS, "3600")])
        assert reply.status == 200
        assert int(reply.seen(names.POLL_SECONDS)[0]) in (3599, 3600)

    def test_plus_sign_is_a_number(self, gw: LocalNvcf) -> None:
        """§4: the value parses as an unsigned integer, which may carry a '+'."""
        assert invoke(gw, {}, [(names.POLL_SECONDS, "+5")]).status == 200

    @pytest.mark.parametrize(
        "value", ["3601", "soon", "-1", "1.5", "5s", "9" * 5000, "0" * 5000 + "5000"]
    )
    def test_out_of_range_or_not_a_number_is_400(self, gw: LocalNvcf, value: str) -> None:
        """§4: above 3600, or no number (5,000 digits too): 400 "failed to parse poll duration"."""
        reply = invoke(gw, {}, [(names.POLL_SECONDS, value)])
        assert_gateway_problem(reply, 400, "failed to parse poll duration")
        assert names.POLL_SECONDS in reply.json()["detail"]
        assert len(reply.body) < 1000

    def test_status_poll_checks_it_too(self, gw: LocalNvcf) -> None:
        """§4: a status GET parses the header before it looks the request up."""
        reply = status(gw, "00000000-0000-4000-8000-000000000000", poll="4000")
        assert_gateway_problem(reply, 400, "failed to parse poll duration")


class TestAnswers:
    """§4 "202 and status polls", "Error body formats": what the gateway answers."""

    def test_empty_202_when_the_container_is_slower(self, gw: LocalNvcf, gate: Path) -> None:
        """§2 "Container timeout": at the window's end the caller gets an empty 202."""
        reply = invoke(gw, {"wait": str(gate)}, [(names.POLL_SECONDS, "1")])
        assert reply.status == 202
        assert reply.body == b""
        assert names.PERCENT_COMPLETE not in reply.headers
        assert reply.headers[names.STATUS] == "in-progress"
        assert reply.headers["Access-Control-Expose-Headers"].lower() == "nvcf-reqid"
        gate.touch()
        assert poll_to_result(gw, reply).status == 200

    def test_result_is_delivered_once(self, gw: LocalNvcf, gate: Path) -> None:
        """§4: "a result can be fetched once": the next GET is a 404 problem."""
        reply = invoke(gw, {"wait": str(gate)}, [(names.POLL_SECONDS, "1")])
        gate.touch()
        final = poll_to_result(gw, reply)
        assert final.status == 200
        assert final.headers[names.STATUS] == "fulfilled"
        again = status(gw, reply.headers[names.REQUEST_ID])
        assert_gateway_problem(again, 404, "already delivered")

    def test_unknown_route_is_a_404_problem(self, gw: LocalNvcf) -> None:
        """§4 "Routes": anything else gives 404 problem, in the gateway's shape."""
        assert_gateway_problem(call(gw, "GET", "/v2/nvcf/nothing"), 404, "no such endpoint")

    def test_progress_answers_the_waiting_poll_once(self, gw: LocalNvcf, gate: Path) -> None:
        """§3 "Delivery": an update answers the current wait at once, and only once."""
        started = time.monotonic()
        reply = invoke(gw, {"progress": 40, "wait": str(gate)}, [(names.POLL_SECONDS, "30")])
        assert time.monotonic() - started < 20
        assert reply.status == 202
        assert reply.headers[names.PERCENT_COMPLETE] == "40"
        assert reply.json() == {"percent": 40}
        again = status(gw, reply.headers[names.REQUEST_ID])
        assert (again.status, again.body) == (202, b"")
        gate.touch()
        assert poll_to_result(gw, again).status == 200


@pytest.fixture(scope="module")
def tight(start: Any) -> LocalNvcf:
    """One slot, and room for one request in the queue."""
    nvcf: LocalNvcf = start("--queue-size", "1", max_concurrency=1)
    return nvcf


class TestQueue:
    """§4 "Queue" and "Waiting for the worker": 429 when full, 504 when never picked up."""

    def test_full_queue_is_429(self, tight: LocalNvcf, gate: Path, tmp_path: Path) -> None:
        """§4: "429 = ... request queue full", with a configurable queue size (--queue-size)."""
        hold = {"wait": str(gate), "touch": str(tmp_path / "running")}
        running, first = in_background(lambda: invoke(tight, hold, [(names.POLL_SECONDS, "60")]))
        queue = f"/v2/nvcf/queues/functions/{tight.function_id}"
        assert eventually((tmp_path / "running").exists)
        waiting, second = in_background(lambda: invoke(tight, {}, [(names.POLL_SECONDS, "60")]))
        assert eventually(lambda: _depth(tight, queue) == 1)
        refused = invoke(tight, {})
        assert_gateway_problem(refused, 429, "--queue-size")
        gate.touch()
        running.join(60)
        waiting.join(60)
        assert [r.status for r in first + second] == [200, 200]

    def test_never_picked_up_is_504_and_dropped(
        self, tight: LocalNvcf, gate: Path, tmp_path: Path
    ) -> None:
        """§4: no answer within poll + 2 s: 504, empty, ``errored``; the request is dropped."""
        hold = {"wait": str(gate), "touch": str(tmp_path / "running")}
        running, _ = in_background(lambda: invoke(tight, hold, [(names.POLL_SECONDS, "60")]))
        queue = f"/v2/nvcf/queues/functions/{tight.function_id}"
        assert eventually((tmp_path / "running").exists)
        started = time.monotonic()
        reply = invoke(tight, {"marker": "never"}, [(names.POLL_SECONDS, "1")])
        assert 2.5 < time.monotonic() - started < 10
        assert (reply.status, reply.body) == (504, b"")
        assert reply.headers[names.STATUS] == "errored"
        request_id = reply.headers[names.REQUEST_ID]
        assert status(tight, request_id).status == 404
        assert _depth(tight, queue) == 0
        gate.touch()
        running.join(60)


def _depth(nvcf: LocalNvcf, queue: str) -> int:
    depth: int = call(nvcf, "GET", queue).json()["queues"][0]["queueDepth"]
    return depth


class TestDirectInvocation:
    """§4 "Routes": a ``function-id`` header routes any path straight to the container."""

    def _direct(self, nvcf: LocalNvcf, *extra: Header) -> list[Header]:
        return [(names.DIRECT_FUNCTION_ID, nvcf.function_id), *extra]

    def test_any_path_and_method_reach_the_container(self, gw: LocalNvcf) -> None:
        """The container gets the same method, path and query, body, and NVCF's headers."""
        reply = call(gw, "PATCH", "/v1/items/7?x=1&y=%20", b"raw body", self._direct(gw))
        assert reply.status == 200
        echo = reply.json()
        assert (echo["method"], echo["path"], echo["body"]) == (
            "PATCH",
            "/v1/items/7?x=1&y=%20",
            "raw body",
        )
        assert reply.seen(names.REQUEST_ID) == [reply.headers[names.REQUEST_ID]]
        assert reply.seen(names.DISABLE_WORKER_COMPATIBILITY) == ["true"]
        assert reply.seen("Authorization") == []

    def test_answer_passes_through_untouched(self, gw: LocalNvcf) -> None:
        """§2 "Outside compatibility mode": status, headers and body as the container sent."""
        path = "/anything?status=418&bytes=7&header=X-Teapot:%20short"
        reply = call(gw, "GET", path, None, self._direct(gw))
        assert (reply.status, reply.body) == (418, b"xxxxxxx")
        assert reply.headers["X-Teapot"] == "short"
        assert reply.headers["Content-Type"] == "application/octet-stream"
        assert reply.headers[names.STATUS] == "errored"

    def test_no_zip_for_a_large_body(self, gw: LocalNvcf) -> None:
        """No 5 MiB check or zip outside compatibility mode: 6 MiB come back inline."""
        reply = call(gw, "GET", f"/big?bytes={6 << 20}", None, self._direct(gw))
        assert (reply.status, len(reply.body)) == (200, 6 << 20)

    def test_version_header_and_host_name(self, gw: LocalNvcf) -> None:
        """``function-version-id`` picks the version; so does a ``<vid>.<fid>.`` host name."""
        version = (names.DIRECT_FUNCTION_VERSION_ID, gw.version_id)
        assert call(gw, "GET", "/v", None, self._direct(gw, version)).status == 200
        host = ("Host", f"{gw.version_id}.{gw.function_id}.localhost")
        assert call(gw, "GET", "/h", None, [host]).json()["path"] == "/h"
        other = (names.DIRECT_FUNCTION_VERSION_ID, "00000000-0000-4000-8000-000000000000")
        assert_gateway_problem(call(gw, "GET", "/v", None, self._direct(gw, other)), 404, "version")

    def test_auth_and_unknown_function(self, gw: LocalNvcf) -> None:
        """Direct calls need the key as every route; another function id is 404."""
        reply = call(gw, "GET", "/x", None, self._direct(gw), auth=False)
        assert reply.status == 401
        stranger = [(names.DIRECT_FUNCTION_ID, "00000000-0000-4000-8000-000000000000")]
        assert_gateway_problem(call(gw, "GET", "/x", None, stranger), 404, "not found")

    def test_answer_streams(self, gw: LocalNvcf, gate: Path) -> None:
        """The first chunk reaches the caller while the container still holds the rest."""
        url = urllib.parse.urlsplit(gw.base_url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        try:
            path = f"/stream?chunks=3&gate={urllib.parse.quote(str(gate))}"
            headers = {"Authorization": f"Bearer {KEY}", **dict(self._direct(gw))}
            connection.request("GET", path, headers=headers)  # type: ignore[arg-type]
            response = connection.getresponse()
            assert response.status == 200
            assert response.readline() == b"chunk 0\n"
            gate.touch()
            assert response.read() == b"chunk 1\nchunk 2\n"
        finally:
            connection.close()


class TestNothingLost:
    """Issue 10 "Nothing lost": a result goes only to a caller that is still there."""

    def test_caller_gone_before_the_result_leaves_it_for_the_next_poll(
        self, gw: LocalNvcf, gate: Path
    ) -> None:
        """Issue 10: a caller whose HTTP timeout is shorter than its poll window loses nothing."""
        reply = invoke(gw, {"wait": str(gate), "n": 1}, [(names.POLL_SECONDS, "1")])
        assert reply.status == 202
        request_id = reply.headers[names.REQUEST_ID]
        with pytest.raises((socket.timeout, TimeoutError)):
            status(gw, request_id, poll="30", timeout=1.0)
        gate.touch()
        time.sleep(1.0)  # the result lands while nobody is connected
        final = status(gw, request_id)
        assert final.status == 200
        assert final.json()["body"] == json.dumps({"wait": str(gate), "n": 1})

    def test_uncollected_result_expires(self, start: Any, gate: Path) -> None:
        """§4: the request id is forgotten after the mapping's age (here --result-ttl 1)."""
        nvcf = start("--result-ttl", "1")
        reply = invoke(nvcf, {"wait": str(gate)}, [(names.POLL_SECONDS, "1")])
        gate.touch()
        request_id = reply.headers[names.REQUEST_ID]
        log = nvcf.log  # type: ignore[attr-defined]
        assert eventually(lambda: f"request {request_id}: result expired" in log.read_text(), 15)
        assert_gateway_problem(status(nvcf, request_id), 404, "expired")

    def test_budget_drops_the_oldest(self, start: Any, gate: Path) -> None:
        """Issue 10: a byte budget bounds uncollected results (--result-budget-bytes)."""
        nvcf = start("--result-budget-bytes", "2500000", max_response_bytes=2_000_000)
        ids = []
        for _ in range(3):
            reply = invoke(
                nvcf, {"wait": str(gate), "bytes": 1_000_000}, [(names.POLL_SECONDS, "1")]
            )
            ids.append(reply.headers[names.REQUEST_ID])
        gate.touch()
        assert eventually(lambda: "--result-budget-bytes" in nvcf.log.read_text())  # type: ignore[attr-defined]
        answers = sorted((status(nvcf, request_id) for request_id in ids), key=lambda a: a.status)
        assert [a.status for a in answers] == [200, 200, 404]
        assert [len(a.body) for a in answers[:2]] == [1_000_000, 1_000_000]
        assert_gateway_problem(answers[2], 404, "--result-budget-bytes")

    def test_uncollected_bodies_wait_on_disk(self, start: Any, gate: Path) -> None:
        """Issue 10: uncollected results do not pile up in memory (40 of 3 MB here)."""
        nvcf = start(max_concurrency=40, max_response_bytes=4_000_000)
        assert nvcf.root is not None
        assert nvcf.pid is not None
        before = _rss(nvcf.pid)

        def leave(index: int) -> str:
            # Staggered, so that the bound below is about what is held, not what is in flight.
            request = {"wait": str(gate), "sleep": index * 0.05, "bytes": 3_000_000}
            return invoke(nvcf, request, [(names.POLL_SECONDS, "1")]).headers[names.REQUEST_ID]

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(leave, range(40)))
        gate.touch()
        held = nvcf.root / "uncollected"
        # Written in threads: wait until every body is whole on disk.
        assert eventually(lambda: sum(p.stat().st_size for p in held.iterdir()) == 120_000_000, 60)
        grown = _rss(nvcf.pid) - before
        assert grown < 60_000_000, f"RSS grew {grown} bytes holding 120 MB of results"
        collected = status(nvcf, ids[0])
        assert (collected.status, collected.body) == (200, b"x" * 3_000_000)
        assert eventually(lambda: len(list(held.iterdir())) == 39)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class TestBadInput:
    """Issue 10 "Bad input": a problem-details answer naming what was wrong, never a 500."""

    def _raw(self, nvcf: LocalNvcf, head: bytes) -> tuple[int, bytes, bytes]:
        url = urllib.parse.urlsplit(nvcf.base_url)
        with socket.create_connection((url.hostname or "", url.port or 0), timeout=30) as sock:
            sock.sendall(head)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head_part, _, body = data.partition(b"\r\n\r\n")
        return int(head_part.split()[1]), head_part, body

    def test_header_nvcf_takes_reaches_the_container(self, gw: LocalNvcf) -> None:
        """A 20 KB header value fits NVCF's ~408 KB request head, so it reaches the container."""
        reply = invoke(gw, {}, [("X-Token", "t" * 20_000)])
        assert reply.status == 200
        assert reply.seen("X-Token") == ["t" * 20_000]

    def test_header_too_large_is_431(self, gw: LocalNvcf) -> None:
        """A head beyond NVCF's buffer is 431 problem details, not aiohttp's plain text."""
        head = b"GET /v2/nvcf/functions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 500_000
        status_code, head_part, body = self._raw(gw, head + b"\r\n\r\n")
        assert status_code == 431
        assert b"application/problem+json" in head_part
        assert "too large" in json.loads(body)["detail"]

    def test_too_many_headers_is_431(self, gw: LocalNvcf) -> None:
        """More headers than NVCF's gateway reads (100) is 431 problem details."""
        many = b"".join(b"X-H%d: v\r\n" % index for index in range(120))
        status_code, _, body = self._raw(gw, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        assert status_code == 431
        assert json.loads(body)["status"] == 431

    def test_control_character_is_400(self, gw: LocalNvcf) -> None:
        """A header value with a control character is 400 problem details saying so."""
        head = b"GET /v2/nvcf/functions HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n"
        status_code, head_part, body = self._raw(gw, head)
        assert status_code == 400
        assert b"application/problem+json" in head_part
        assert "not valid HTTP" in json.loads(body)["detail"]

    def test_header_that_is_not_utf8_is_400(self, gw: LocalNvcf) -> None:
        """A header value in Latin-1 bytes is 400 naming the header (today: a 500)."""
        reply = invoke(gw, {}, [("X-Name", b"caf\xe9")])
        assert_gateway_problem(reply, 400, "header X-Name is not UTF-8 text")

    def test_asset_reference_that_is_no_uuid_is_400(self, gw: LocalNvcf) -> None:
        """§4 "NVCF-INPUT-ASSET-REFERENCES": an invalid UUID is a 400."""
        reply = invoke(gw, {}, [(names.INPUT_ASSET_REFERENCES, "x" * 5000)])
        assert_gateway_problem(reply, 400, "is not an asset id")

    @pytest.mark.parametrize("name", ["résumé.txt", "données ✓.txt"])
    def test_non_ascii_asset_description_round_trips(
        self, gw: LocalNvcf, tmp_path: Path, name: str
    ) -> None:
        """Issue 10: a non-ASCII description (the file name) uploads, and is listed as given."""
        path = tmp_path / name
        path.write_text("accents")
        client = NvcfClient(gw.base_url, KEY)
        asset = client.upload_asset(path)
        assert asset.description == name
        listed = {a["assetId"]: a["description"] for a in client.list_assets()}
        assert listed[asset.asset_id] == name

    def test_utf8_description_as_curl_sends_it(self, gw: LocalNvcf) -> None:
        """A raw UTF-8 description header (as curl sends it) matches the signed one too."""
        created = call(
            gw,
            "POST",
            "/v2/nvcf/assets",
            json.dumps({"contentType": "text/plain", "description": "café"}).encode(),
            [("Content-Type", "application/json")],
        ).json()
        upload = urllib.parse.urlsplit(created["uploadUrl"]).path
        headers = [("Content-Type", "text/plain"), (names.ASSET_DESCRIPTION, "café".encode())]
        assert call(gw, "PUT", upload, b"data", headers, auth=False).status == 200

    def test_invoke_command_with_a_non_ascii_asset(
        self,
        gw: LocalNvcf,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Issue 10: ``nvcf-helpers invoke --asset 'données ✓.txt'`` works (today: a traceback)."""
        monkeypatch.delenv("NVCF_BASE_URL", raising=False)
        asset = tmp_path / "données ✓.txt"
        asset.write_text("contenu")
        argv = ["invoke", gw.function_id, "--base-url", gw.base_url, "--api-key", KEY]
        assert cli.main([*argv, "--asset", str(asset)]) == 0, capsys.readouterr().err
        echo = json.loads(capsys.readouterr().out)
        asset_ids = [v for k, v in echo["headers"] if k.lower() == "nvcf-function-asset-ids"]
        assert len(asset_ids) == 1
        listed = {
            a["assetId"]: a["description"] for a in NvcfClient(gw.base_url, KEY).list_assets()
        }
        assert listed[asset_ids[0]] == "données ✓.txt"

    def test_invoke_command_with_a_header_that_is_not_latin1(
        self, gw: LocalNvcf, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A ``-H`` value HTTP cannot carry is a one-line error, not a traceback."""
        monkeypatch.delenv("NVCF_BASE_URL", raising=False)
        argv = ["invoke", gw.function_id, "--base-url", gw.base_url, "--api-key", KEY]
        assert cli.main([*argv, "-H", "X-Mark: ✓"]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert "X-Mark" in err

    def test_nothing_was_a_500(self, gw: LocalNvcf) -> None:
        """None of the above made the local NVCF log a failure of its own."""
        log = gw.log.read_text()  # type: ignore[attr-defined]
        assert "the local NVCF failed" not in log
        assert "Traceback" not in log
