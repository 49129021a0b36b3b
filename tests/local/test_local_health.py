"""Health checks of the local NVCF's container, as NVCF's worker runs them (facts section 5).

Each test starts a real child process (``health_server.py``, steered through
a control file) under the supervisor, with shortened intervals where the
source's would make the test slow, and checks what the function reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.health import HealthTiming
from nvcf_helpers.local.server import LocalServer, ServeOptions
from nvcf_helpers.local.supervisor import Supervisor
from nvcf_helpers.spec import FunctionSpec, parse_spec
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration

HEALTH_SERVER = Path(__file__).with_name("health_server.py")
#: Intervals short enough for a test; the defaults (NVCF's) are checked separately.
FAST = HealthTiming(
    startup_interval=0.1, interval=0.5, not_found_retry=0.1, not_found_window=1.0, hint_after=0.3
)


@dataclass
class Container:
    """One health server: its port, the file that steers it, and what it was asked."""

    port: int
    control: Path
    record: Path

    def command(self, health_path: str = "/health") -> list[str]:
        return [
            sys.executable,
            str(HEALTH_SERVER),
            str(self.port),
            str(self.control),
            str(self.record),
            health_path,
        ]

    def answer(self, what: str) -> None:
        """Make the health path answer ``what`` from now on."""
        self.control.write_text(what)

    def requests(self, method: str = "GET") -> list[tuple[float, str, str]]:
        """(time, path, status) of each request with ``method``, in order."""
        if not self.record.exists():
            return []
        rows = [line.split() for line in self.record.read_text().splitlines()]
        return [(float(row[0]), row[2], row[3]) for row in rows if row[1] == method]


@pytest.fixture
def container(tmp_path: Path) -> Container:
    return Container(free_port(), tmp_path / "control", tmp_path / "record")


@pytest.fixture
def log() -> Iterator[list[str]]:
    """The local NVCF's log lines (its logger may not propagate after a CLI test)."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("nvcf_helpers.local")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def spec_for(port: int, health_port: int | None = None, **fields: Any) -> FunctionSpec:
    health: dict[str, Any] = {
        "protocol": "HTTP",
        "uri": "/health",
        "timeout": "PT2S",
        "expectedStatusCode": 200,
    }
    health.update(fields.pop("health", {}))
    health["port"] = health_port or port
    return parse_spec(
        {
            "name": "health-test",
            "inferenceUrl": "/infer",
            "inferencePort": port,
            "health": health,
            "containerImage": "local/health-test:latest",
            **fields,
        }
    )


@contextlib.asynccontextmanager
async def supervised(
    spec: FunctionSpec,
    command: Sequence[str],
    *,
    timing: HealthTiming = FAST,
    startup_timeout: float = 20.0,
) -> AsyncIterator[LocalFunction]:
    """The function, with ``command`` started as its container; stopped at the end."""
    function = LocalFunction(spec)
    async with aiohttp.ClientSession() as session:
        supervisor = Supervisor(
            function, command, session, startup_timeout=startup_timeout, timing=timing
        )
        await supervisor.start()
        try:
            yield function
        finally:
            await supervisor.stop(grace=5.0)


async def until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def gaps(times: Sequence[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def unhealthy(function: LocalFunction) -> bool:
    return function.health is not None and not function.health.healthy


class TestCheckTiming:
    """How often the worker checks: 500 ms at start-up, 10 s once ACTIVE."""

    def test_start_up_checks_every_500_ms(self, container: Container) -> None:
        """Fact: at start-up the worker checks every 500 ms (W/worker.go:462)."""
        container.answer("503")

        async def scenario() -> None:
            spec = spec_for(container.port)
            async with supervised(spec, container.command(), timing=HealthTiming()) as function:
                await until(lambda: len(container.requests()) >= 4)
                container.answer("200")
                await until(lambda: function.status is FunctionStatus.ACTIVE)

        asyncio.run(scenario())
        failed = [when for when, _, status in container.requests() if status == "503"]
        assert all(0.45 <= gap <= 0.8 for gap in gaps(failed)), gaps(failed)

    def test_after_active_checks_every_interval(self, container: Container) -> None:
        """Fact: once ACTIVE the worker checks every 10 s (L/health/health.go:45,88-101)."""
        assert HealthTiming().interval == 10.0
        timing = HealthTiming(startup_interval=0.1, interval=0.6)

        async def scenario() -> None:
            async with supervised(spec_for(container.port), container.command(), timing=timing):
                await until(lambda: len(container.requests()) >= 4)

        asyncio.run(scenario())
        assert all(0.55 <= gap <= 0.9 for gap in gaps([t for t, _, _ in container.requests()]))


class TestOneCheck:
    """One check: a GET, the expected code, 404 retried, anything else or no answer fails."""

    def test_a_get_and_only_the_expected_code_is_healthy(self, container: Container) -> None:
        """Fact: HTTP health is a GET and the expected code means healthy (health.go:151-176).

        With ``expectedStatusCode`` 204, a 200 keeps the function DEPLOYING, and
        once ACTIVE a 200 makes it unhealthy, with the answer in the status API.
        """
        container.answer("200")
        spec = spec_for(container.port, health={"expectedStatusCode": 204})

        async def scenario() -> dict[str, Any]:
            async with supervised(spec, container.command()) as function:
                await until(lambda: len(container.requests()) >= 3)
                assert function.status is FunctionStatus.DEPLOYING
                container.answer("204")
                await until(lambda: function.status is FunctionStatus.ACTIVE)
                container.answer("200")
                await until(lambda: unhealthy(function))
                return {"healthInfo": function.health_info()}

        body = asyncio.run(scenario())
        assert {method for _, method, _ in container.requests("GET")} == {"/health"}
        assert container.requests("POST") == []
        info = body["healthInfo"]
        assert info["healthCheck"]["answer"] == "200"
        assert info["error"] == (
            f"GET http://127.0.0.1:{container.port}/health answered 200, expected 204"
        )
        assert info["fix"] == (
            "if 200 is what your server answers when ready, set health.expectedStatusCode to 200"
        )

    def test_404_is_asked_again_with_exponential_backoff(self, container: Container) -> None:
        """Fact: a 404 is asked again with backoff from 2 s for up to 30 s (health.go:171-183).

        Scaled down: first retry after 0.2 s, growing by 1.5; all in one check.
        """
        assert (HealthTiming().not_found_retry, HealthTiming().not_found_window) == (2.0, 30.0)
        container.answer("seq:404,404,404,200")
        timing = HealthTiming(startup_interval=5.0, not_found_retry=0.2, not_found_window=5.0)
        spec = spec_for(container.port, health={"timeout": "PT10S"})

        async def scenario() -> None:
            async with supervised(spec, container.command(), timing=timing) as function:
                await until(lambda: function.status is FunctionStatus.ACTIVE)

        asyncio.run(scenario())
        asked = container.requests()
        assert [status for _, _, status in asked] == ["404", "404", "404", "200"]
        waits = gaps([when for when, _, _ in asked])
        for gap, expected in zip(waits, [0.2, 0.3, 0.45], strict=True):
            assert expected * 0.9 <= gap <= expected + 0.25, (gap, expected)

    def test_any_other_status_fails_at_once(self, container: Container) -> None:
        """Fact: any status but the expected one or 404 fails, not retried (health.go:175-176)."""

        async def scenario() -> None:
            async with supervised(spec_for(container.port), container.command()) as function:
                await until(lambda: function.status is FunctionStatus.ACTIVE)
                container.answer("503")
                await until(lambda: unhealthy(function))
                assert [s for _, _, s in container.requests()].count("503") == 1
                assert function.health is not None
                assert function.health.answer == "503"

        asyncio.run(scenario())

    def test_a_hanging_check_fails_after_the_health_timeout(
        self, container: Container, log: list[str]
    ) -> None:
        """Fact: a check that takes longer than the health timeout fails (health-go's Timeout)."""
        spec = spec_for(container.port, health={"timeout": "PT1S"})

        async def scenario() -> float:
            async with supervised(spec, container.command()) as function:
                await until(lambda: function.status is FunctionStatus.ACTIVE)
                container.answer("hang")
                await until(lambda: unhealthy(function))
                failed_at = time.time()
                container.answer("200")
                await until(lambda: function.taking_work)
                return failed_at

        failed_at = asyncio.run(scenario())
        hung_at = next(when for when, _, status in container.requests() if status == "hang")
        assert 0.9 <= failed_at - hung_at <= 2.0
        request = f"GET http://127.0.0.1:{container.port}/health"
        assert any(
            f"{request} got no answer within 1 s (health.timeout)" in line
            and "serve it from its own thread" in line
            for line in log
        ), log
        assert any("is healthy again" in line for line in log)


class TestUnhealthyTakesNoWork:
    """Fact: while unhealthy the worker stops pulling work (health.go:88-101, worker.go:573-581)."""

    @pytest.mark.parametrize("failure", ["503", "hang"])
    def test_requests_wait_in_the_queue_until_healthy_again(
        self, container: Container, failure: str, log: list[str]
    ) -> None:
        """An unhealthy or hanging container gets no new request; it is served on recovery.

        The function stays ACTIVE (NVCF's control plane still counts the
        running instance); the status API and the log say which check failed.
        """
        spec = spec_for(container.port, health={"timeout": "PT1S"})
        options = ServeOptions(spec=spec, command=tuple(container.command()), port=0)
        outcome = asyncio.run(_queue_scenario(options, container, failure))
        assert outcome["status_while_unhealthy"] == "ACTIVE"
        info = outcome["health_info"]
        assert info["takingWork"] is False
        assert info["healthCheck"]["request"] == f"GET http://127.0.0.1:{container.port}/health"
        expected_answer = "503" if failure == "503" else "no answer within 1 s"
        assert info["healthCheck"]["answer"] == expected_answer
        assert outcome["served"] == (200, {"served": True})
        served_at = container.requests("POST")[0][0]
        assert served_at >= outcome["recovered_at"]
        assert any(
            "is unhealthy" in line
            and expected_answer in line
            and "takes no new requests (they wait in the queue)" in line
            for line in log
        ), log


async def _queue_scenario(
    options: ServeOptions, container: Container, failure: str
) -> dict[str, Any]:
    server = LocalServer(options)
    server.supervisor.timing = FAST
    outcome: dict[str, Any] = {}
    function = server.function
    try:
        base = await server.listen()
        await server.supervisor.start()
        await until(lambda: function.status is FunctionStatus.ACTIVE)
        container.answer(failure)
        await until(lambda: unhealthy(function))
        async with aiohttp.ClientSession() as client:
            invoke = f"{base}/v2/nvcf/pexec/functions/{function.function_id}"
            # Well inside the poll window: NVCF's gateway gives up on a request no
            # worker took within poll + 2 s (504), so recovery must come before that.
            call = asyncio.create_task(
                client.post(invoke, json={}, headers={"NVCF-POLL-SECONDS": "30"})
            )
            await asyncio.sleep(1.5)  # three health checks, all failing
            assert not call.done()
            assert container.requests("POST") == []
            outcome["status_while_unhealthy"] = function.status.value
            outcome["health_info"] = function.health_info()
            outcome["recovered_at"] = time.time()
            container.answer("200")
            async with await call as reply:
                outcome["served"] = (reply.status, json.loads(await reply.read()))
    finally:
        await server.close()
    return outcome


class TestDeploymentFailures:
    """The seed's "Common Deployment Failures": each names its cause and its fix."""

    def test_wrong_health_port(self, container: Container, log: list[str]) -> None:
        """Wrong health port: the check is refused, and the message names the port that listens."""
        wrong = free_port()
        spec = spec_for(container.port, health_port=wrong)

        async def scenario() -> dict[str, Any]:
            async with supervised(spec, container.command(), startup_timeout=2.0) as function:
                await until(lambda: function.status is FunctionStatus.ERROR)
                return function.health_info()

        info = asyncio.run(scenario())
        assert info["error"] == (
            f"the health check (GET http://127.0.0.1:{wrong}/health) did not answer 200 "
            f"within 2 s: GET http://127.0.0.1:{wrong}/health: connection refused, nothing "
            f"listens on port {wrong}; the container listens on port {container.port} "
            "(wrong health port)"
        )
        assert info["fix"] == (
            "set health.port (and inferencePort) in the function definition to the port "
            f"your server listens on ({container.port}), or make it listen on {wrong}"
        )
        hints = [line for line in log if "is not healthy yet" in line]
        assert hints, log
        assert "(wrong health port)" in hints[0]

    def test_wrong_health_uri(self, container: Container, log: list[str]) -> None:
        """Wrong health URI: 404 for the whole retry window; the fix names the path that answers."""
        spec = spec_for(
            container.port, inferenceUrl="/v2/models/x/infer", health={"uri": "/v2/health/ready"}
        )
        command = container.command("/v2/models/x/ready")

        async def scenario() -> dict[str, Any]:
            async with supervised(spec, command, startup_timeout=2.0) as function:
                await until(lambda: function.status is FunctionStatus.ERROR)
                return function.health_info()

        info = asyncio.run(scenario())
        request = f"GET http://127.0.0.1:{container.port}/v2/health/ready"
        assert info["error"].startswith(
            f"the health check ({request}) did not answer 200 within 2 s: {request} answered 404"
        )
        assert info["error"].endswith(
            f"a server runs on port {container.port} but has no path /v2/health/ready "
            "(wrong health URI)"
        )
        assert info["fix"] == "set health.uri to /v2/models/x/ready (it answers 200)"
        assert any("set health.uri to /v2/models/x/ready" in line for line in log), log

    def test_container_that_exits_at_start_up(
        self, container: Container, log: list[str], capfd: pytest.CaptureFixture[str]
    ) -> None:
        """Restart loop: an exit before healthy gives its status, last lines and the fix."""
        script = (
            "import sys\n"
            "for i in range(30): print(f'loading shard {i}')\n"
            "raise SystemExit('cannot open /models/x: No such file or directory')\n"
        )
        command = [sys.executable, "-c", script]

        async def scenario() -> dict[str, Any]:
            async with supervised(spec_for(container.port), command) as function:
                await until(lambda: function.status is FunctionStatus.ERROR)
                return function.health_info()

        info = asyncio.run(scenario())
        assert info["error"] == "the container process exited with status 1"
        assert info["exitStatus"] == 1
        assert info["lastOutput"][-2:] == [
            "loading shard 29",
            "cannot open /models/x: No such file or directory",
        ]
        assert len(info["lastOutput"]) == 20
        assert info["fix"].startswith(
            "NVCF restarts a container that exits, so this deployment would sit in a restart "
            "loop and end in ERROR: run the entrypoint by hand and fix what stops it"
        )
        message = next(line for line in log if "is ERROR" in line)
        assert "restart loop" in message
        assert message.endswith("| cannot open /models/x: No such file or directory")
        # Its stdout and stderr still reach ours, in the order it wrote them.
        out = capfd.readouterr().out
        assert "loading shard 29\ncannot open /models/x: No such file or directory\n" in out

    def test_container_that_exits_when_active(self, container: Container, log: list[str]) -> None:
        """A container that exits once ACTIVE: ERROR with its status and last output lines."""

        async def scenario() -> dict[str, Any]:
            async with supervised(spec_for(container.port), container.command()) as function:
                await until(lambda: function.status is FunctionStatus.ACTIVE)
                container.answer("exit:4")
                await until(lambda: function.status is FunctionStatus.ERROR)
                return function.health_info()

        info = asyncio.run(scenario())
        assert info["error"] == "the container process exited with status 4"
        assert info["exitStatus"] == 4
        assert info["lastOutput"] == [
            f"health server listening on {container.port}",
            "model crashed: out of cheese",
        ]
        assert info["fix"].startswith("NVCF would restart it (a restart loop if it keeps exiting)")
        assert any(line.endswith("| model crashed: out of cheese") for line in log), log

    def test_never_healthy_within_the_start_up_timeout(self, container: Container) -> None:
        """Never healthy in time: ERROR naming the check, its last answer, and the fix."""
        command = [sys.executable, "-c", "import time; time.sleep(60)"]

        async def scenario() -> dict[str, Any]:
            spec = spec_for(container.port)
            async with supervised(spec, command, startup_timeout=1.5) as function:
                await until(lambda: function.status is FunctionStatus.ERROR)
                return function.health_info()

        info = asyncio.run(scenario())
        request = f"GET http://127.0.0.1:{container.port}/health"
        assert info["error"] == (
            f"the health check ({request}) did not answer 200 within 1.5 s: {request}: "
            f"connection refused, nothing listens on port {container.port}"
        )
        assert info["fix"] == (
            f"make the server listen on port {container.port} (health.port), or set "
            "health.port to its port; if it is still loading, allow it more time with "
            "--startup-timeout (NVCF allows 30 min)"
        )
