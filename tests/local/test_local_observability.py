"""What the local NVCF shows of itself: logs, Prometheus metrics, state, series, and the key.

One local NVCF with an API key runs the contract server for the module; the
contract server logs one NVCF-format line per request (WARNING for a failure),
so each request's log lines are known. The log store and the output copier
are also tested on their own, without a server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_support import (
    API_KEY,
    Raw,
    Reply,
    contract_nvcf,
    eventually,
)
from prometheus_client.parser import text_string_to_metric_families

from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.local.logs import LogQuery, LogStore, parse_since
from nvcf_helpers.local.metrics import Metrics
from nvcf_helpers.local.observe_routes import KEY_COOKIE
from nvcf_helpers.local.supervisor import OutputTail

NVCF_HELPERS = str(Path(sys.executable).with_name("nvcf-helpers"))
POLL = {"NVCF-POLL-SECONDS": "1"}
KEYED = ("/metrics", "/_local/state", "/_local/series", "/_local/logs")


# -- the local NVCF under observation ---------------------------------------------------------


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """A local NVCF of its own (its counters start at zero), in front of the contract server."""
    with contract_nvcf(tmp_path_factory.mktemp("nvcf-observed")) as local:
        yield local


@pytest.fixture(scope="module")
def api(observed: LocalNvcf) -> Raw:
    """Raw HTTP calls with the API key."""
    return Raw(observed, API_KEY)


def invoke(api: Raw, body: dict[str, Any]) -> Reply:
    """Invoke the function and poll until its final answer."""
    reply = api.invoke(body, POLL)
    request_id = reply.headers["NVCF-REQID"]
    deadline = time.monotonic() + 30
    while reply.status == 202 and time.monotonic() < deadline:
        reply = api("GET", f"/v2/nvcf/pexec/status/{request_id}", headers=POLL)
    return reply


def logged(api: Raw, request_id: str) -> list[dict[str, Any]]:
    """The request's lines in ``GET /_local/logs``, once its line has arrived."""
    path = f"/_local/logs?requestId={request_id}"
    assert eventually(lambda: bool(api("GET", path).json()["lines"])), request_id
    lines: list[dict[str, Any]] = api("GET", path).json()["lines"]
    return lines


def metric_samples(api: Raw) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/metrics`` parsed by prometheus-client's own parser: value by (sample, labels)."""
    reply = api("GET", "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def cli(observed: LocalNvcf, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``nvcf-helpers ARGS`` against the local NVCF, with its key in the environment."""
    env = {**os.environ, "NVCF_API_KEY": API_KEY, "NVCF_BASE_URL": observed.base_url}
    return subprocess.run(
        [NVCF_HELPERS, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.integration
class TestLogs:
    """Each instance's output is kept, parsed, and listed by request, level and cursor."""

    def test_a_request_line_is_parsed(self, api: Raw, observed: LocalNvcf) -> None:
        """The contract server's line carries its level, the marker and the request id."""
        reply = invoke(api, {"note": "parsed"})
        request_id = reply.headers["NVCF-REQID"]
        (line,) = logged(api, request_id)
        assert line["level"] == "INFO"
        assert line["inference"] is True
        assert line["requestId"] == request_id
        assert line["functionId"] == observed.function_id
        assert line["versionId"] == observed.version_id
        assert line["instance"] == 0
        assert line["message"] == "POST /infer: note"
        assert line["text"].endswith(f"[INFERENCE] [reqid={request_id}] POST /infer: note")
        assert line["time"].endswith("Z")

    def test_cli_request_prints_exactly_its_lines(self, api: Raw, observed: LocalNvcf) -> None:
        """``logs --request`` prints the lines with that request's id, and no other."""
        ids = [invoke(api, {"which": n}).headers["NVCF-REQID"] for n in range(3)]
        for request_id in ids:
            logged(api, request_id)
        target = ids[1]
        output: Path = observed.log  # type: ignore[attr-defined]

        def written() -> list[str]:
            """The container's lines for it, as the local NVCF copied them to its stdout."""
            return [line for line in output.read_text().splitlines() if f"[reqid={target}]" in line]

        assert eventually(lambda: len(written()) == 1)
        done = cli(observed, "logs", "--request", target)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == written()

    def test_cli_level_keeps_that_level_and_above(self, api: Raw, observed: LocalNvcf) -> None:
        """``--level WARNING`` prints the failure's WARNING line, not the INFO ones."""
        fine = invoke(api, {"level": "info"}).headers["NVCF-REQID"]
        failed = invoke(api, {"status": 500, "error": "level test"}).headers["NVCF-REQID"]
        logged(api, fine)
        logged(api, failed)
        done = cli(observed, "logs", observed.function_id, "--level", "warning", "--since", "10m")
        assert done.returncode == 0, done.stderr
        assert any(
            f"[reqid={failed}] answering 500: level test" in line
            for line in done.stdout.splitlines()
        )
        assert f"[reqid={fine}]" not in done.stdout
        assert all("[WARNING]" in line or "[ERROR]" in line for line in done.stdout.splitlines())

    def test_cli_follow_prints_new_lines_until_ctrl_c(self, api: Raw, observed: LocalNvcf) -> None:
        """``-f`` prints a line written after it started; Ctrl-C ends it with status 0."""
        env = {**os.environ, "NVCF_API_KEY": API_KEY, "NVCF_BASE_URL": observed.base_url}
        process = subprocess.Popen(
            [NVCF_HELPERS, "logs", observed.function_id, "-f", "--tail", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            time.sleep(1.5)  # its first page is printed by now
            request_id = invoke(api, {"follow": True}).headers["NVCF-REQID"]
            assert process.stdout is not None
            seen = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                seen.append(line)
                if f"[reqid={request_id}]" in line:
                    break
            assert f"[reqid={request_id}]" in seen[-1], seen
        finally:
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "Traceback" not in errors

    def test_cli_bad_since_is_a_usage_error(self, observed: LocalNvcf) -> None:
        """A ``--since`` that is neither a duration nor a time ends with status 2."""
        done = cli(observed, "logs", "--since", "yesterday")
        assert done.returncode == 2
        assert "neither a duration" in done.stderr

    def test_api_cursor_and_limit(self, api: Raw) -> None:
        """``after`` lists only newer lines; ``limit`` caps them; ``next`` moves on."""
        first = api("GET", "/_local/logs?limit=1").json()
        assert len(first["lines"]) == 1
        cursor = first["next"]
        assert first["lines"][0]["id"] == cursor
        request_id = invoke(api, {"cursor": True}).headers["NVCF-REQID"]
        logged(api, request_id)
        newer = api("GET", f"/_local/logs?after={cursor}").json()
        assert newer["lines"]
        assert all(line["id"] > cursor for line in newer["lines"])
        assert request_id in {line["requestId"] for line in newer["lines"]}
        assert newer["next"] == newer["lines"][-1]["id"]
        assert api("GET", f"/_local/logs?after={newer['next']}").json()["lines"] == []

    @pytest.mark.parametrize(
        ("query", "detail"),
        [
            ("level=LOUD", "level='LOUD' is not one of DEBUG"),
            ("since=tomorrow", "neither a duration"),
            ("limit=0", "limit='0' is not a whole number"),
            ("after=x", "after='x' is not a whole number"),
        ],
    )
    def test_api_refuses_a_wrong_filter(self, api: Raw, query: str, detail: str) -> None:
        """A filter the API cannot read is a 400 that names it."""
        reply = api("GET", f"/_local/logs?{query}")
        assert reply.status == 400
        assert detail in reply.json()["detail"]


@pytest.mark.integration
class TestMetrics:
    """``GET /metrics`` parses with prometheus-client and counts what was invoked."""

    def test_counters_match_the_invocations(self, api: Raw, observed: LocalNvcf) -> None:
        """3 fulfilled, 1 large (302), 2 errored: each counter moves by exactly that."""
        before = metric_samples(api)
        for n in range(3):
            assert invoke(api, {"count": n}).status == 200
        assert invoke(api, {"large": {"name": "big.bin", "bytes": 200_000}}).status == 302
        for _ in range(2):
            assert invoke(api, {"status": 418, "error": "teapot"}).status == 418
        after = metric_samples(api)
        ids = {"function_id": observed.function_id, "version_id": observed.version_id}

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **ids, **labels) - value(before, name, **ids, **labels)

        assert moved("nvcf_local_invocations_total", outcome="fulfilled") == 4
        assert moved("nvcf_local_invocations_total", outcome="errored", status_code="418") == 2
        assert moved("nvcf_local_invocations_total") == 6
        assert moved("request_total") == 6
        assert moved("response_total", error_code="0") == 4
        assert moved("response_total", error_code="418") == 2
        assert moved("nvcf_worker_service_request_latency_seconds_count") == 6
        assert moved("nvcf_worker_service_request_latency_seconds_sum") > 0
        assert moved("nvcf_worker_service_inference_request_time_seconds_total") > 0
        assert moved("nvcf_worker_service_large_response_uploads_total") == 1
        assert moved("nvcf_worker_service_large_response_bytes_total") > 0
        assert value(after, "nvcf_local_instances", **ids) == 1
        assert value(after, "nvcf_local_instances_min", **ids) == 1
        assert value(after, "nvcf_local_instances_max", **ids) == 1
        assert value(after, "nvcf_local_queue_depth", **ids) == 0
        assert value(after, "nvcf_local_in_flight", **ids) == 0

    def test_progress_is_counted_and_watched(self, api: Raw, gate: Path) -> None:
        """A progress update counts once; its file is watched while the request runs."""
        before = metric_samples(api)
        request = {"progress": [[40, {"step": 1}]], "wait_for": str(gate)}
        reply = api.invoke(request, POLL)
        request_id = reply.headers["NVCF-REQID"]
        assert eventually(
            lambda: (
                value(metric_samples(api), "nvcf_local_progress_updates_total")
                > value(before, "nvcf_local_progress_updates_total")
            )
        )
        running = metric_samples(api)
        assert value(running, "nvcf_worker_service_progress_monitor_watches") == 1
        assert value(running, "nvcf_local_in_flight") == 1
        gate.touch()
        while reply.status == 202:
            reply = api("GET", f"/v2/nvcf/pexec/status/{request_id}", headers=POLL)
        done = metric_samples(api)
        assert value(done, "nvcf_worker_service_progress_monitor_watches") == 0
        updates = value(done, "nvcf_local_progress_updates_total")
        assert updates - value(before, "nvcf_local_progress_updates_total") == 1


@pytest.mark.integration
class TestState:
    """``GET /_local/state`` shows the versions and each invocation's status and progress."""

    @staticmethod
    def _invocation(api: Raw, request_id: str) -> dict[str, Any]:
        state = api("GET", "/_local/state").json()
        return next(i for i in state["invocations"] if i["requestId"] == request_id)

    def test_functions_with_their_deployment(self, api: Raw, observed: LocalNvcf) -> None:
        """Each version as GET /v2/nvcf/functions lists it, with its deployment."""
        state = api("GET", "/_local/state").json()
        assert state["now"].endswith("Z")
        (version,) = state["functions"]
        listed = api("GET", "/v2/nvcf/functions").json()["functions"][0]
        assert {k: v for k, v in version.items() if k != "deployment"} == listed
        deployment = version["deployment"]
        assert deployment["functionStatus"] == "ACTIVE"
        assert deployment["instances"][0]["status"] == "ACTIVE"

    def test_progress_then_result(self, api: Raw, gate: Path) -> None:
        """Running with its progress and partial response; then fulfilled, timed."""
        request = {"progress": [[60, {"step": 2}]], "wait_for": str(gate)}
        reply = api.invoke(request, POLL)
        request_id = reply.headers["NVCF-REQID"]
        assert eventually(lambda: self._invocation(api, request_id)["progress"] == 60)
        running = self._invocation(api, request_id)
        assert running["status"] == "running"
        assert running["partialResponse"] == {"step": 2}
        assert running["httpStatus"] is None
        assert running["finishedAt"] is None
        gate.touch()
        while reply.status == 202:
            reply = api("GET", f"/v2/nvcf/pexec/status/{request_id}", headers=POLL)
        done = self._invocation(api, request_id)
        assert done["status"] == "fulfilled"
        assert done["httpStatus"] == 200
        assert done["progress"] == 60
        assert done["seconds"] > 0
        assert done["finishedAt"] >= done["acceptedAt"]
        assert done["resultUrl"] is None
        newest = api("GET", "/_local/state").json()["invocations"][0]
        assert newest["requestId"] == request_id

    def test_error_and_large_result(self, api: Raw) -> None:
        """A failure is errored with its status; a 302's zip URL works without the key."""
        failed = invoke(api, {"status": 503, "error": "busy"})
        shown = self._invocation(api, failed.headers["NVCF-REQID"])
        assert (shown["status"], shown["httpStatus"]) == ("errored", 503)
        large = invoke(api, {"large": {"name": "out.bin", "bytes": 100_000}})
        shown = self._invocation(api, large.headers["NVCF-REQID"])
        assert (shown["status"], shown["httpStatus"]) == ("fulfilled", 302)
        assert shown["resultUrl"] == urllib.parse.urlsplit(large.headers["Location"]).path
        download = api("GET", shown["resultUrl"], auth=False)
        assert download.status == 200
        assert download.body[:2] == b"PK"


@pytest.mark.integration
class TestSeries:
    """``GET /_local/series`` has a point every 5 s with what happened in it."""

    def test_points_after_a_sample(self, api: Raw, observed: LocalNvcf) -> None:
        """An invocation shows in the next point, with its time and the instance count."""
        invoke(api, {"series": True})
        path = f"/_local/series?versionId={observed.version_id}&minutes=15"

        def counted() -> bool:
            return any(p["invocations"] for p in api("GET", path).json()["points"])

        assert eventually(counted, timeout=15)
        series = api("GET", path).json()
        assert series["interval"] == 5
        point = next(p for p in series["points"] if p["invocations"])
        assert point["instances"] == 1
        assert point["inferenceSeconds"] > 0
        assert point["time"].endswith("Z")
        assert set(point) == {
            "time",
            "invocations",
            "failures",
            "queueDepth",
            "inferenceSeconds",
            "instances",
        }
        other = api("GET", "/_local/series?functionId=no-such-function").json()
        assert other["points"] == []
        assert api("GET", "/_local/series?minutes=-1").status == 400


@pytest.mark.integration
class TestAuth:
    """With --api-key the data and the page need the key: a header, or the login cookie."""

    @pytest.mark.parametrize("path", KEYED)
    def test_data_needs_the_key(self, api: Raw, path: str) -> None:
        """Without the key: 401; a wrong one: 401; the right one: 200."""
        assert api("GET", path, auth=False).status == 401
        wrong = api("GET", path, headers={"Authorization": "Bearer nope"}, auth=False)
        assert wrong.status == 401
        assert wrong.headers["WWW-Authenticate"] == "Bearer"
        assert api("GET", path).status == 200

    def test_the_page_asks_for_the_key(self, api: Raw) -> None:
        """``GET /`` without the key answers the login form, which posts to /_local/login."""
        page = api("GET", "/", auth=False)
        assert page.status == 401
        assert page.headers["Content-Type"].startswith("text/html")
        assert b'action="/_local/login"' in page.body
        assert API_KEY.encode() not in page.body

    def test_a_wrong_key_sets_no_cookie(self, api: Raw) -> None:
        """A wrong key answers the form again, saying so, without a cookie."""
        reply = api("POST", "/_local/login", b"key=wrong", _FORM, auth=False)
        assert reply.status == 401
        assert "Set-Cookie" not in reply.headers
        assert b"not the key" in reply.body

    @pytest.mark.parametrize("body", [b"key=" + API_KEY.encode(), {"key": API_KEY}])
    def test_login_sets_the_cookie(self, api: Raw, body: Any) -> None:
        """The right key (form or JSON): 303 to /, an HttpOnly SameSite=Strict cookie."""
        headers = _FORM if isinstance(body, bytes) else None
        reply = api("POST", "/_local/login", body, headers, auth=False)
        assert reply.status == 303
        assert reply.headers["Location"] == "/"
        assert API_KEY not in reply.headers["Location"]
        cookie = reply.headers["Set-Cookie"]
        assert cookie.startswith(f"{KEY_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        sent = {"Cookie": cookie.split(";")[0]}
        page = api("GET", "/", headers=sent, auth=False)
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert b'action="/_local/login"' not in page.body
        for path in KEYED:
            assert api("GET", path, headers=sent, auth=False).status == 200
        # The NVCF API itself still takes a bearer key only, as NVCF's does.
        assert api("GET", "/v2/nvcf/functions", headers=sent, auth=False).status == 401

    def test_logout_forgets_the_cookie(self, api: Raw) -> None:
        """Logout: 303 to / and the cookie expired."""
        reply = api("POST", "/_local/logout", auth=False)
        assert reply.status == 303
        assert reply.headers["Location"] == "/"
        assert "Max-Age=0" in reply.headers["Set-Cookie"]

    def test_dashboard_files_stay_inside_their_folder(self, api: Raw) -> None:
        """A name that climbs out of the dashboard folder is not found."""
        assert api("GET", "/_local/dashboard/login.html", auth=False).status == 200
        assert api("GET", "/_local/dashboard/..%2Fapi.py", auth=False).status == 404
        assert api("GET", "/_local/dashboard/.hidden", auth=False).status == 404


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.integration
def test_without_a_key_everything_is_open() -> None:
    """With no --api-key the data and the page answer anyone, and login just redirects."""
    with LocalNvcf(None) as local:
        open_api = Raw(local, None)
        for path in (*KEYED, "/"):
            assert open_api("GET", path).status == 200, path
        assert open_api("GET", "/_local/state").json()["functions"] == []
        login = open_api("POST", "/_local/login", b"key=anything", _FORM)
        assert login.status == 303
        assert "Set-Cookie" not in login.headers


# -- the parts, without a server ----------------------------------------------------------------


class TestLogStore:
    """The store parses, bounds and filters lines; any thread may add."""

    def test_formats(self) -> None:
        """NVCF's format, the library's JSON lines, and anything else (no level)."""
        store = LogStore()
        store.add("f", "v", 0, "2025-01-31 12:00:00,123 [ERROR] [INFERENCE] [reqid=r1] boom")
        record = {
            "time": "t",
            "level": "WARNING",
            "source": "INFERENCE",
            "message": "m",
            "reqid": "r2",
        }
        store.add("f", "v", 1, json.dumps(record))
        store.add("f", "v", 0, "Traceback (most recent call last):")
        store.add("f", "v", 0, "2025-01-31 12:00:00,124 [INFO] no marker")
        text, structured, plain, unmarked = store.query(LogQuery())[0]
        assert (text.level, text.inference, text.request_id, text.message) == (
            "ERROR",
            True,
            "r1",
            "boom",
        )
        assert (structured.level, structured.request_id, structured.message) == (
            "WARNING",
            "r2",
            "m",
        )
        assert structured.instance == 1
        assert (plain.level, plain.request_id, plain.message) == (None, None, plain.text)
        assert (unmarked.level, unmarked.inference, unmarked.message) == (
            "INFO",
            False,
            "no marker",
        )
        warnings = store.query(LogQuery(level="WARNING"))[0]
        assert [line.id for line in warnings] == [text.id, structured.id]

    def test_budget_drops_the_oldest(self) -> None:
        """Past the byte budget, the oldest lines go."""
        store = LogStore(budget=10_000)
        for n in range(200):
            store.add("f", "v", 0, f"line {n:03d} " + "x" * 50)
        assert store.bytes <= 10_000
        lines = store.query(LogQuery(limit=10_000))[0]
        assert lines[-1].text.startswith("line 199")
        assert len(lines) < 200

    def test_history_drops_old_lines(self) -> None:
        """Lines older than the history are gone."""
        store = LogStore(history=0.05)
        store.add("f", "v", 0, "old")
        time.sleep(0.1)
        store.add("f", "v", 0, "new")
        assert [line.text for line in store.query(LogQuery())[0]] == ["new"]

    def test_long_line_in_pieces(self) -> None:
        """A line over 16 KiB is kept in 16 KiB pieces."""
        store = LogStore()
        store.add("f", "v", 0, "y" * (40 * 1024))
        assert [len(line.text) for line in store.query(LogQuery())[0]] == [16384, 16384, 8192]

    def test_cursor_limit_and_filters(self) -> None:
        """``after`` + ``limit`` page forward; without ``after`` the last ``limit`` come."""
        store = LogStore()
        for n in range(10):
            store.add("f" if n % 2 else "g", "v", 0, f"line {n}")
        last, cursor = store.query(LogQuery(limit=3))
        assert [line.text for line in last] == ["line 7", "line 8", "line 9"]
        assert cursor == 10
        page, cursor = store.query(LogQuery(function_id="f", after=2, limit=2))
        assert [line.text for line in page] == ["line 3", "line 5"]
        assert cursor == 6
        page, cursor = store.query(LogQuery(function_id="f", after=cursor))
        assert [line.text for line in page] == ["line 7", "line 9"]
        assert store.query(LogQuery(after=cursor))[0] == []

    def test_threads(self) -> None:
        """Lines added from many threads get unique, increasing ids."""
        store = LogStore()

        def add(name: str) -> None:
            for n in range(500):
                store.add(name, "v", 0, f"{name} {n}")

        threads = [threading.Thread(target=add, args=(f"t{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        lines = store.query(LogQuery(limit=100_000))[0]
        assert [line.id for line in lines] == list(range(1, 2001))
        assert [line.time for line in lines] == sorted(line.time for line in lines)

    def test_since(self) -> None:
        """``since`` reads durations and ISO times."""
        assert parse_since("10m", 1000.0) == 400.0
        assert parse_since("600", 1000.0) == 400.0
        assert parse_since("1970-01-01T00:10:00Z", 0.0) == 600.0
        with pytest.raises(ValueError, match="neither a duration"):
            parse_since("soon", 0.0)


class TestOutputTail:
    """The copier hands each complete line to the log store, and still copies everything."""

    def test_lines_reach_the_sink(self) -> None:
        """Complete lines, one split across reads, an endless one in pieces, the last one."""
        seen: list[str] = []
        tail = OutputTail(on_line=seen.append)
        for chunk in (b"one\r\ntw", b"o\n" + b"z" * 20_000, b"\nlast"):
            tail._keep(7, chunk)
        tail._last_line(7)
        assert seen == ["one", "two", "z" * 16384, "z" * (20_000 - 16384), "last"]
        assert tail.tail()[-1] == "last"

    def test_everything_is_still_copied(self, tmp_path: Path) -> None:
        """The copy to stdout is byte for byte what the container wrote."""
        seen: list[str] = []
        tail = OutputTail(on_line=seen.append)
        copy = tmp_path / "copy"
        written = b"alpha\r\nbeta\n" + b"z" * 70_000 + b"\nlast"
        with copy.open("wb") as target:
            write_end = tail.pipe(target.fileno())
            os.write(write_end, written)
            os.close(write_end)
            for thread in tail._threads:
                thread.join(5)
        assert copy.read_bytes() == written
        assert "".join(seen) == written.decode().replace("\r\n", "").replace("\n", "")


class TestSeriesSampling:
    """Points hold what happened since the last one; versions of a function add up."""

    def test_points(self) -> None:
        metrics = Metrics()
        first = metrics.version("f", "v1")
        second = metrics.version("f", "v2")
        metrics.sample(100.0)
        first.answered(200, "fulfilled", 0.2, 10)
        first.answered(500, "errored", 0.4, 10)
        second.answered(200, "fulfilled", 0.6, 10)
        second.rejected()
        metrics.sample(105.0)
        (point,) = metrics.series("f", "v1", since=101.0)
        assert (point["invocations"], point["failures"]) == (2, 1)
        assert point["inferenceSeconds"] == pytest.approx(0.3)
        both = metrics.series("f", None, since=0.0)
        assert [p["invocations"] for p in both] == [0, 4]
        assert both[1]["failures"] == 2
        assert both[1]["inferenceSeconds"] == pytest.approx(0.4)
        assert b'nvcf_local_invocations_total{function_id="f",outcome="rejected"' in (
            metrics.exposition()
        )
