"""The local NVCF's worker against NVCF's source, fact by fact (``NVCF_SOURCE_FACTS.md`` §1-§3).

Each test names the fact it checks as "§<section>, <bullet>". Unit tests
call the worker's pieces directly; the others go through a real local NVCF
in front of ``facts_server.py``, a container that does what it is told.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from local_support import server_nvcf

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.local.output_dir import walk
from nvcf_helpers.local.progress_watch import (
    MAX_PROGRESS_FILE_BYTES,
    ProgressWatcher,
    parse_worker_progress,
)
from nvcf_helpers.local.store import Invocation
from nvcf_helpers.local.worker import (
    compatibility_mode,
    container_headers,
    go_canonical,
    inference_problem,
)

FACTS_SERVER = Path(__file__).with_name("facts_server.py")
PROBLEM = "application/problem+json"


# -- a local NVCF in front of the facts server ----------------------------------------------------


class Reply:
    """A raw HTTP answer, every header value kept."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)


class Caller:
    """Plain HTTP calls to the local NVCF, with exactly the headers given (and a timeout)."""

    def __init__(self, nvcf: LocalNvcf) -> None:
        self.nvcf = nvcf
        host, port = nvcf.base_url.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def __call__(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float = 60.0,
    ) -> Reply:
        connection = http.client.HTTPConnection(*self.address, timeout=timeout)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            return Reply(connection.getresponse())
        finally:
            connection.close()

    def invoke(
        self,
        request: dict[str, Any],
        headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),),
        timeout: float = 60.0,
    ) -> Reply:
        path = f"/v2/nvcf/pexec/functions/{self.nvcf.function_id}"
        return self("POST", path, json.dumps(request).encode(), headers, timeout)

    def result(self, reply: Reply, timeout: float = 30.0) -> Reply:
        """Poll a 202 until its result (1 s windows)."""
        deadline = time.monotonic() + timeout
        while reply.status == 202 and time.monotonic() < deadline:
            request_id = reply.headers[names.REQUEST_ID]
            reply = self(
                "GET", f"/v2/nvcf/pexec/status/{request_id}", None, [(names.POLL_SECONDS, "1")]
            )
        return reply

    def zip_of(self, reply: Reply) -> zipfile.ZipFile:
        download = self("GET", "/" + reply.headers["Location"].split("/", 3)[3])
        assert download.status == 200
        return zipfile.ZipFile(io.BytesIO(download.body))


@pytest.fixture(scope="module")
def nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """A local NVCF with NVCF's defaults (one slot, 5 MiB inline) before the facts server."""
    with server_nvcf(FACTS_SERVER, "facts-server", tmp_path_factory.mktemp("facts")) as local:
        yield local


@pytest.fixture
def call(nvcf: LocalNvcf) -> Caller:
    return Caller(nvcf)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file the facts server waits for; created at teardown so nothing stays blocked."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def _received(echo: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in echo["headers"]]


def _values(echo: dict[str, Any], name: str) -> list[str]:
    return [value for sent, value in _received(echo) if sent.lower() == name.lower()]


# -- §1 worker -> container ------------------------------------------------------------------------


class TestHeadersToTheContainer:
    """§1, "Headers the worker sets": names, exact spellings and values."""

    def test_worker_headers_in_their_exact_spellings(self, call: Caller, nvcf: LocalNvcf) -> None:
        """§1 "Headers the worker sets", "Size-limit value", "NVCF-INVOCATION-REGION".

        Every worker header arrives once, spelled as NVCF's worker spells it
        (its map keys are not canonicalised): 5242880 as the size limit, the
        gateway's region copied through, the asset directory even without assets.
        """
        reply = call.invoke({})
        assert reply.status == 200
        received = dict(_received(reply.json()))
        request_id = reply.headers[names.REQUEST_ID]
        expected = {
            names.REQUEST_ID: request_id,
            names.NCA_ID: "local-nca-id",
            names.FUNCTION_NAME: "facts-server",
            names.FUNCTION_ID: nvcf.function_id,
            names.FUNCTION_VERSION_ID: nvcf.version_id,
            names.MAX_RESPONSE_SIZE: "5242880",
            names.INVOCATION_REGION: "local",
        }
        assert {name: received.get(name) for name in expected} == expected
        for name in (names.SUBJECT, names.NSPECT_ID, names.BACKEND, names.INSTANCE_TYPE):
            assert name in received
        for name in (names.REGION, names.ENV):
            assert name in received
        assert Path(received[names.ASSET_DIR]).name == request_id
        assert Path(received[names.LARGE_OUTPUT_DIR]).name == request_id

    def test_asset_ids_only_with_assets(self, call: Caller) -> None:
        """§1 "NVCF-FUNCTION-ASSET-IDS": only when assets exist; NVCF-ASSET-DIR always."""
        echo = call.invoke({}).json()
        assert _values(echo, names.FUNCTION_ASSET_IDS) == []
        assert len(_values(echo, names.ASSET_DIR)) == 1

    def test_client_headers_forwarded_in_go_casing(self, call: Caller) -> None:
        """§1 "Client headers": every other client header is forwarded, in Go's casing.

        Hop-by-hop headers (also those the Connection header names) and
        Authorization are removed, as NVCF's gateway does; a header sent
        twice arrives twice; the caller's region is replaced by the gateway's.
        """
        sent = [
            ("Content-Type", "application/json"),
            ("x-trace-id", "t-1"),
            ("X-DUP", "a"),
            ("X-DUP", "b"),
            ("Authorization", "Bearer secret"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "gone"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Proxy-Authorization", "Basic eA=="),
            (names.INVOCATION_REGION, "spoofed"),
            (names.INPUT_ASSET_REFERENCES, ""),
        ]
        received = _received(call.invoke({}, sent).json())
        lowered = {name.lower() for name, _ in received}
        assert ("X-Trace-Id", "t-1") in received
        assert [pair for pair in received if pair[0] == "X-Dup"] == [("X-Dup", "a"), ("X-Dup", "b")]
        for gone in ("authorization", "x-hop", "keep-alive", "te", "proxy-authorization"):
            assert gone not in lowered
        assert [v for n, v in received if n.lower() == names.INVOCATION_REGION.lower()] == ["local"]
        assert ("Nvcf-Input-Asset-References", "") in received

    def test_worker_owned_names_from_the_client_are_dropped(self, call: Caller) -> None:
        """§1 "Client headers", dropped: the 15 worker-owned names, in any case."""
        owned = [
            names.REQUEST_ID,
            names.SUBJECT,
            names.NCA_ID,
            names.FUNCTION_NAME,
            names.FUNCTION_ID,
            names.FUNCTION_VERSION_ID,
            names.ASSET_DIR,
            names.LARGE_OUTPUT_DIR,
            names.MAX_RESPONSE_SIZE,
            names.NSPECT_ID,
            names.BACKEND,
            names.INSTANCE_TYPE,
            names.REGION,
            names.ENV,
            names.FUNCTION_ASSET_IDS,
        ]
        sent = [(name.lower(), "spoofed") for name in owned]
        sent.append(("Content-Type", "application/json"))
        received = _received(call.invoke({}, sent).json())
        assert "spoofed" not in [value for _, value in received]
        assert _values({"headers": received}, names.FUNCTION_ASSET_IDS) == []

    def test_default_content_type_is_json(self, call: Caller) -> None:
        """§1 "Default Content-Type": application/json when the request has none."""
        echo = call.invoke({}, headers=()).json()
        assert _values(echo, "Content-Type") == ["application/json"]
        echo = call.invoke({}, headers=[("Content-Type", "text/plain")]).json()
        assert _values(echo, "Content-Type") == ["text/plain"]

    def test_poll_seconds_is_the_window_left(self, call: Caller) -> None:
        """§1 "nvcf-poll-seconds": the caller's window minus the time since, truncated."""
        echo = call.invoke({}, [("Content-Type", "application/json"), (names.POLL_SECONDS, "30")])
        values = [v for n, v in _received(echo.json()) if n.lower() == "nvcf-poll-seconds"]
        assert values in (["29"], ["30"])

    def test_poll_seconds_after_queueing_is_zero_or_negative(
        self, call: Caller, gate: Path
    ) -> None:
        """§1 "nvcf-poll-seconds": it can be 0 or negative after queueing.

        The one slot is busy until about 2.2 s after a request with a 1 s
        window arrives, so that request starts with about -1.2 s left: -1.
        """
        window = [("Content-Type", "application/json"), (names.POLL_SECONDS, "1")]
        busy = call.invoke({"wait_for": str(gate)}, window)
        opener = threading.Timer(2.2, gate.touch)
        opener.start()
        try:
            queued = call.result(call.invoke({}, window))
        finally:
            opener.join()
        assert call.result(busy).status == 200
        assert queued.status == 200
        values = [v for n, v in _received(queued.json()) if n.lower() == "nvcf-poll-seconds"]
        assert len(values) == 1
        assert int(values[0]) < 0


def test_poll_seconds_truncates_toward_zero() -> None:
    """§1 "nvcf-poll-seconds": truncated to whole seconds, and can be 0 or negative."""
    for left, sent in ((29.99, "29"), (0.9, "0"), (-0.5, "0"), (-1.5, "-1"), (-2.0, "-2")):
        headers = container_headers((), (), region="local", asset_ids=(), poll_left=left)
        assert headers.getall("Nvcf-Poll-Seconds") == [sent]


def test_go_canonical_spelling() -> None:
    """§1 "Client headers": forwarded with canonical Go casing (invalid names as they are)."""
    assert go_canonical("x-trace-id") == "X-Trace-Id"
    assert go_canonical("CONTENT-TYPE") == "Content-Type"
    assert go_canonical("nvcf-poll-seconds") == "Nvcf-Poll-Seconds"
    assert go_canonical("bad name") == "bad name"


def test_empty_content_type_gets_the_default() -> None:
    """§1 "Default Content-Type": an empty Content-Type counts as none."""
    headers = container_headers(
        [("content-type", "")], (), region="local", asset_ids=("a", "b"), poll_left=1
    )
    assert headers.getall("Content-Type") == ["application/json"]
    assert headers.getall(names.FUNCTION_ASSET_IDS) == ["a,b"]


# -- §2 container -> caller ------------------------------------------------------------------------


class TestErrorRewrap:
    """§2 "Errors (compatibility mode)": a container status >= 400 is rewrapped, exactly."""

    def test_error_body_is_exactly_nvcfs(self, call: Caller) -> None:
        """§2 "Errors": type from Go's status text, title, status, detail; nothing else.

        The container's own headers do not come back with the problem.
        """
        reply = call.invoke(
            {"status": 422, "body": '{"error": "x must be positive"}', "headers": {"X-Own": "1"}}
        )
        assert reply.status == 422
        assert reply.headers["Content-Type"] == PROBLEM
        assert reply.json() == {
            "type": "urn:inference-service:problem-details:unprocessable-entity",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "x must be positive",
        }
        assert "X-Own" not in reply.headers

    def test_body_without_error_string_is_inference_error(self, call: Caller) -> None:
        """§2 "Errors": no JSON "error" string gives "Inference error"."""
        reply = call.invoke({"status": 503, "body": "down", "content_type": "text/plain"})
        assert reply.json() == {
            "type": "urn:inference-service:problem-details:service-unavailable",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "Inference error",
        }

    def test_unknown_code_has_no_title(self) -> None:
        """§2 "Errors": for codes Go does not know, the title is empty (and left out)."""
        assert json.loads(inference_problem(499, b'{"error": "gone"}')) == {
            "type": "urn:inference-service:problem-details:",
            "status": 499,
            "detail": "gone",
        }

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (b'{"error": "plain"}', "plain"),
            (b'{"Error": "any case"}', "any case"),  # Go matches field names in any case
            (b'{"error": 5}', "Inference error"),
            (b'{"error": ""}', "Inference error"),
            (b'["error"]', "Inference error"),
            (b"not json", "Inference error"),
        ],
    )
    def test_detail_is_the_error_string(self, body: bytes, detail: str) -> None:
        """§2 "Errors": detail = the body's JSON "error" string, or "Inference error"."""
        assert json.loads(inference_problem(400, body))["detail"] == detail

    def test_teapot_title_is_gos(self) -> None:
        """§2 "Errors": title is Go's status text, and the type its kebab-case."""
        problem = json.loads(inference_problem(418, b""))
        assert problem["title"] == "I'm a teapot"
        assert problem["type"] == "urn:inference-service:problem-details:i'm-a-teapot"


class TestConnectionErrors:
    """§2 "Connection errors": NVCF's body when the exchange with the container fails."""

    def test_reset_is_an_inference_connection_error(self, call: Caller, nvcf: LocalNvcf) -> None:
        """§2 "Connection errors": a network error gives urn:inference-connection, 500."""
        reply = call.invoke({"reset": True})
        assert reply.status == 500
        assert reply.headers["Content-Type"] == PROBLEM
        assert reply.json() == {
            "type": "urn:inference-connection:problem-details:internal-server-error",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "Inference connection error while making inference request",
        }
        assert "connection to the container failed" in reply.headers[names.LOCAL_WARNING]

    def test_clean_close_is_an_internal_error(self, call: Caller) -> None:
        """§2 "Connection errors": any other error (EOF) gives urn:nvcf-worker-service, 500."""
        reply = call.invoke({"close": True})
        assert reply.status == 500
        assert reply.json() == {
            "type": "urn:nvcf-worker-service:problem-details:internal-server-error",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "Internal error while making inference request",
        }


class TestCompatibilityMode:
    """§2 "Compatibility mode" and "Outside compatibility mode": when answers pass through."""

    def test_disable_header_passes_errors_and_files_through(self, call: Caller) -> None:
        """§2 "Outside compatibility mode": status, headers and body unchanged; no zip."""
        disabled = [
            ("Content-Type", "application/json"),
            (names.DISABLE_WORKER_COMPATIBILITY, "true"),
        ]
        reply = call.invoke(
            {"status": 422, "body": '{"error": "raw"}', "headers": {"X-Own": "1"}}, disabled
        )
        assert reply.status == 422
        assert reply.body == b'{"error": "raw"}'
        assert reply.headers["X-Own"] == "1"
        reply = call.invoke({"files": {"out.bin": "data"}}, disabled)
        assert reply.status == 200
        assert reply.json()["input"] == {"files": {"out.bin": "data"}}

    def test_event_stream_error_passes_through(self, call: Caller) -> None:
        """§2 "Compatibility mode" is skipped for Accept: text/event-stream: no rewrap."""
        sse = [("Content-Type", "application/json"), ("Accept", "text/event-stream")]
        reply = call.invoke(
            {"status": 500, "body": "stream failed", "content_type": "text/plain"}, sse
        )
        assert reply.status == 500
        assert reply.body == b"stream failed"
        assert reply.headers["Content-Type"] == "text/plain"

    @pytest.mark.parametrize(
        ("headers", "mode"),
        [
            ({}, True),
            ({"Accept": "text/event-stream"}, False),
            ({"Accept": "Text/Event-Stream; charset=utf-8"}, False),
            ({"Accept": "text/event-stream, application/json"}, True),  # not one media type
            ({names.DISABLE_WORKER_COMPATIBILITY: "true"}, False),
            ({names.DISABLE_WORKER_COMPATIBILITY: "True"}, True),  # Go compares exactly
        ],
    )
    def test_which_requests_are_mapped(self, headers: dict[str, str], mode: bool) -> None:
        """§2 "Compatibility mode": the Accept media type, or the exact header value "true"."""
        assert compatibility_mode(headers) is mode


class TestLargeResults:
    """§2 "Large output": any regular file in the output directory means a 302 zip."""

    def test_any_file_means_a_302_with_the_response_first(self, call: Caller) -> None:
        """§2 "Large output": walked recursively, hidden files too, ``progress`` left out.

        The zip's first entry is ``<reqid>.response``; the 302 carries only
        Location (the container's status and headers are dropped).
        """
        files = {".hidden": "h", "sub/dir/a.txt": "a", "sub/progress": "{}", "progress": "{}"}
        reply = call.invoke({"files": files, "headers": {"X-Own": "1"}})
        assert reply.status == 302
        assert "X-Own" not in reply.headers
        request_id = reply.headers[names.REQUEST_ID]
        bundle = call.zip_of(reply)
        assert bundle.namelist() == [names.response_member(request_id), ".hidden", "sub/dir/a.txt"]
        assert json.loads(bundle.read(names.response_member(request_id)))["input"]["files"] == files

    def test_partial_file_ships_with_a_warning(self, call: Caller, nvcf: LocalNvcf) -> None:
        """§2 "Large output": a ``.partial`` file is not skipped; the local NVCF warns."""
        reply = call.invoke({"files": {"deep/x.partial": "half"}})
        assert reply.status == 302
        assert "deep/x.partial" in reply.headers[names.LOCAL_WARNING]
        assert "deep/x.partial" in call.zip_of(reply).namelist()

    def test_small_success_passes_through(self, call: Caller) -> None:
        """§2 "Small successes": the container's status and headers, inline."""
        reply = call.invoke({"status": 201, "body": '{"made": 1}', "headers": {"X-Own": "1"}})
        assert (reply.status, reply.body, reply.headers["X-Own"]) == (201, b'{"made": 1}', "1")


class TestOutputDirectorySafety:
    """Artifacts are regular files inside the output directory, nothing else (issue 10)."""

    def test_symlink_is_never_followed(self, call: Caller) -> None:
        """A symlink to /etc/passwd does not put that file in the zip; it is reported.

        §2 "Large output" counts regular files; NVCF's worker would ship the target.
        """
        reply = call.invoke({"files": {"real.txt": "r"}, "symlinks": {"passwd": "/etc/passwd"}})
        assert reply.status == 302
        bundle = call.zip_of(reply)
        assert bundle.namelist()[1:] == ["real.txt"]
        assert "passwd (a symlink)" in reply.headers[names.LOCAL_WARNING]

    def test_symlink_alone_is_no_artifact(self, call: Caller) -> None:
        """Only a symlink left: no regular file, so the answer stays inline (with a warning)."""
        reply = call.invoke({"symlinks": {"etc": "/etc"}})
        assert reply.status == 200
        assert "etc (a symlink)" in reply.headers[names.LOCAL_WARNING]

    def test_fifo_artifact_is_not_opened(self, call: Caller) -> None:
        """A FIFO in the output directory is reported, never opened (it would block)."""
        reply = call.invoke({"fifos": ["pipe"]}, timeout=20)
        assert reply.status == 200
        assert "pipe (a FIFO)" in reply.headers[names.LOCAL_WARNING]

    def test_fifo_named_progress_does_not_freeze_the_api(
        self, call: Caller, nvcf: LocalNvcf, gate: Path
    ) -> None:
        """A FIFO named ``progress`` is never read: another route still answers meanwhile.

        §3 "Watching"/"Which file"; reads happen in a thread, and only of regular files.
        """
        window = [("Content-Type", "application/json"), (names.POLL_SECONDS, "1")]
        pending = call.invoke({"fifos": ["progress"], "wait_for": str(gate)}, window, timeout=10)
        assert pending.status == 202
        time.sleep(0.3)  # the watcher has looked at it by now
        listing = call("GET", "/v2/nvcf/functions", timeout=5)
        assert listing.status == 200
        gate.touch()
        assert call.result(pending).status == 200
        log = nvcf.log.read_text()  # type: ignore[attr-defined]
        assert "progress is not read: it is a FIFO" in log

    def test_walk_never_opens_what_is_not_a_regular_file(self, tmp_path: Path) -> None:
        """The walk lists regular files only, in NVCF's order, and reports the rest."""
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "c.txt").write_text("c")
        (tmp_path / "a.txt").write_text("a")
        (tmp_path / "link").symlink_to(tmp_path / "a.txt")
        (tmp_path / "dirlink").symlink_to(tmp_path / "b")
        os.mkfifo(tmp_path / "fifo")
        opened: list[str] = []
        found = walk(tmp_path, lambda relative, fd, status: opened.append(relative))
        assert found.files == opened == ["a.txt", "b/c.txt"]
        assert found.skipped == ["dirlink (a symlink)", "fifo (a FIFO)", "link (a symlink)"]


class TestResponseHeaders:
    """§2 "Gateway limits on the relayed response": heads NVCF relays, and those it cannot."""

    def test_header_over_8_kib_is_relayed(self, call: Caller) -> None:
        """§2 "Gateway limits": a 10 KB header is within NVCF's ~417 KB head buffer."""
        reply = call.invoke({"status": 200, "body": "{}", "header_bytes": 10_000})
        assert reply.status == 200
        assert len(reply.headers["X-Big"]) == 10_000

    def test_head_over_nvcfs_buffer_is_named(self, call: Caller) -> None:
        """§2 "Gateway limits": a head over ~417 KB is reported as too large, not as a close."""
        reply = call.invoke({"status": 200, "body": "{}", "header_bytes": 500_000})
        assert reply.status == 500
        assert reply.headers["Content-Type"] == PROBLEM
        assert "the container's response headers are too large" in reply.json()["detail"]

    def test_more_than_64_headers_is_named(self, call: Caller) -> None:
        """§2 "Gateway limits": more than 64 headers is reported as too many/too large."""
        reply = call.invoke({"status": 200, "body": "{}", "header_count": 70})
        assert reply.status == 500
        assert "the container's response headers are too large" in reply.json()["detail"]


# -- §3 progress -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "percent"),
    [
        ('{"id": "r", "progress": 40}', 40),
        ('{"id": "r"}', 0),
        ('{"id": "r", "progress": null}', 0),
        ('{"ID": "r", "Progress": 7}', 7),  # Go matches field names in any case
        ('{"id": "r", "progress": 150}', 150),  # no 0..100 check
        ('{"id": "r", "progress": 4294967295}', 4294967295),
    ],
)
def test_progress_the_worker_accepts(text: str, percent: int) -> None:
    """§3 "Format"/"Validation": an unsigned 32-bit progress is taken, with no range check."""
    update = parse_worker_progress(text.encode())
    assert update.problems == ()
    assert (update.request_id, update.percent) == ("r", percent)


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "r", "progress": 55.5}',
        '{"id": "r", "progress": 50.0}',
        '{"id": "r", "progress": 1e2}',
        '{"id": "r", "progress": -5}',
        '{"id": "r", "progress": 4294967296}',
        '{"id": "r", "progress": "50"}',
        '{"id": "r", "progress": true}',
        '{"id": 5, "progress": 5}',
        '{"id": "r", "partialResponse": [1]}',
        '{"id": "r", "progress": NaN}',
        '{"id": "r", "progress": 5',
        '["r", 5]',
    ],
)
def test_progress_the_worker_skips(text: str) -> None:
    """§3 "Validation": invalid JSON, negative or fractional progress is skipped."""
    assert parse_worker_progress(text.encode()).problems


def test_progress_contract_breaks_are_noted() -> None:
    """§3 "Validation": no 0..100 or size limit; the local NVCF notes where the docs are broken."""
    assert parse_worker_progress(b'{"id": "r", "progress": 100}').broken == ()
    over = parse_worker_progress(b'{"id": "r", "progress": 101}')
    assert "outside 0..100" in over.broken[0]
    fraction = parse_worker_progress(b'{"id": "r", "progress": 5.5}')
    assert "not a whole percentage" in fraction.broken[0]
    large = {"id": "r", "progress": 1, "partialResponse": {"text": "x" * 250_000}}
    big = parse_worker_progress(json.dumps(large).encode())
    assert big.problems == ()
    assert big.partial_response == large["partialResponse"]
    assert "under 250000" in big.broken[0]


def _write(path: Path, document: Any, mtime_ns: int) -> None:
    """Replace ``path`` atomically with ``document``, stamped with ``mtime_ns``."""
    temporary = path.with_name(".progress.tmp")
    temporary.write_text(json.dumps(document))
    os.utime(temporary, ns=(mtime_ns, mtime_ns))
    os.replace(temporary, path)


class TestProgressWatcher:
    """§3: which progress updates reach which request, read the way NVCF's worker reads."""

    def test_id_decides_not_the_directory(self, tmp_path: Path) -> None:
        """§3 "Validation": id must match an in-flight request; the directory does not matter."""

        async def scenario() -> tuple[int, int]:
            watcher = ProgressWatcher()
            first, second = Invocation("f", "v"), Invocation("f", "v")
            for invocation in (first, second):
                (tmp_path / invocation.request_id).mkdir()
                watcher.watch(invocation, tmp_path / invocation.request_id)
            progress = tmp_path / first.request_id / names.PROGRESS_FILE
            _write(progress, {"id": second.request_id, "progress": 30}, 10**18)
            await watcher.poll()
            await watcher.close()
            return first.progress, second.progress

        assert asyncio.run(scenario()) == (0, 30)

    def test_mtime_must_advance(self, tmp_path: Path) -> None:
        """§3 "Validation": the file's mtime must be later than the previous update's."""

        async def scenario() -> list[int]:
            watcher = ProgressWatcher()
            invocation = Invocation("f", "v")
            watcher.watch(invocation, tmp_path)
            seen = []
            for percent, mtime in ((10, 2 * 10**18), (20, 2 * 10**18), (30, 2 * 10**18 + 1)):
                _write(
                    tmp_path / "progress", {"id": invocation.request_id, "progress": percent}, mtime
                )
                await watcher.poll()
                seen.append(invocation.progress)
            await watcher.close()
            return seen

        assert asyncio.run(scenario()) == [10, 10, 30]

    def test_warnings_where_the_docs_are_broken(self, tmp_path: Path) -> None:
        """§3 "Validation": 150 is applied and a fraction skipped, each with a warning."""

        async def scenario() -> tuple[int, str | None, tuple[str, ...]]:
            watcher = ProgressWatcher()
            invocation = Invocation("f", "v")
            watcher.watch(invocation, tmp_path)
            _write(tmp_path / "progress", {"id": invocation.request_id, "progress": 150}, 10**18)
            await watcher.poll()
            _write(
                tmp_path / "progress", {"id": invocation.request_id, "progress": 7.5}, 2 * 10**18
            )
            await watcher.poll()
            warning = watcher.warning(invocation)
            await watcher.close()
            return invocation.progress, warning, watcher.unwatch(invocation)

        percent, warning, _ = asyncio.run(scenario())
        assert percent == 150
        assert warning is not None
        assert "progress 150 is outside 0..100" in warning
        assert "progress 7.5 is not a whole percentage" in warning

    def test_unsafe_or_huge_progress_files_are_not_read(self, tmp_path: Path) -> None:
        """A symlink, a FIFO or a file over the read bound named ``progress`` is never read."""

        async def scenario(kind: str) -> tuple[int, str | None]:
            directory = tmp_path / kind
            directory.mkdir()
            watcher = ProgressWatcher()
            invocation = Invocation("f", "v")
            watcher.watch(invocation, directory)
            valid = json.dumps({"id": invocation.request_id, "progress": 50})
            if kind == "symlink":
                (tmp_path / "elsewhere").write_text(valid)
                (directory / "progress").symlink_to(tmp_path / "elsewhere")
            elif kind == "fifo":
                os.mkfifo(directory / "progress")
            else:
                padding = " " * MAX_PROGRESS_FILE_BYTES
                (directory / "progress").write_text(valid[:-1] + padding + "}")
            await asyncio.wait_for(watcher.poll(), 5)
            warning = watcher.warning(invocation)
            await watcher.close()
            return invocation.progress, warning

        for kind, reason in (("symlink", "symlink"), ("fifo", "FIFO"), ("huge", "bytes")):
            percent, warning = asyncio.run(scenario(kind))
            assert percent == 0
            assert warning is not None
            assert reason in warning


class TestProgressWarningsReachTheCaller:
    """§3 with NVCF_CONTRACT §0: accepted as the worker does, warned as the docs ask."""

    def test_final_result_carries_the_warning(self, call: Caller, nvcf: LocalNvcf) -> None:
        """§3 "Validation": a percent of 150 is passed on, and the result warns about it."""
        reply = call.result(call.invoke({"progress": {"percent": 150}}))
        assert reply.status == 200
        assert "progress 150 is outside 0..100" in reply.headers[names.LOCAL_WARNING]
        log = nvcf.log.read_text()  # type: ignore[attr-defined]
        assert "progress 150 is outside 0..100" in log

    def test_202_carries_the_warning(self, call: Caller, gate: Path) -> None:
        """§3 "Delivery": the 202 of a broken update carries NVCF-LOCAL-WARNING."""
        window = [("Content-Type", "application/json"), (names.POLL_SECONDS, "1")]
        request = {"progress": {"percent": 150, "partial": {"step": 1}}, "wait_for": str(gate)}
        try:
            reply = call.invoke(request, window)
            assert reply.status == 202
            assert "outside 0..100" in reply.headers.get(names.LOCAL_WARNING, "")
        finally:
            gate.touch()
