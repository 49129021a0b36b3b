"""Stopping the local NVCF: every caller answered, nothing left behind (issue 10, item 7).

``nvcf-helpers local`` runs as a program (through :class:`LocalNvcf`) in
front of ``gateway_server.py``; the tests stop it the ways a user does:
SIGTERM, Ctrl-C (SIGINT), :meth:`LocalNvcf.stop`, and SIGKILL.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_support import eventually
from test_local_gateway_facts import KEY, SERVER, Reply, _spec, call, invoke

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def nvcf(tmp_path: Path) -> Iterator[LocalNvcf]:
    """A local NVCF with one slot, its output in ``tmp_path/log``."""
    port = free_port()
    local = LocalNvcf(
        _spec(port),
        [sys.executable, str(SERVER), str(port)],
        api_key=KEY,
        max_concurrency=1,
        output=tmp_path / "log",
    )
    local.start()
    yield local
    local.stop()


def _in_background(nvcf: LocalNvcf, request: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    """Invoke in a thread (60 s poll window); the reply, or the exception, lands in the list."""
    answers: list[Any] = []

    def run() -> None:
        try:
            answers.append(invoke(nvcf, request, [(names.POLL_SECONDS, "60")], timeout=90))
        except OSError as exc:
            answers.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answers


def _stopping_problem(reply: Any) -> str:
    """The detail of a 503 problem that says the local NVCF is stopping."""
    assert isinstance(reply, Reply), reply
    assert reply.status == 503
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    detail: str = reply.json()["detail"]
    assert "the local NVCF is stopping" in detail
    return detail


class TestStop:
    """SIGTERM and Ctrl-C: every caller gets a final answer, and ``local`` exits within 10 s."""

    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_callers_get_503_and_local_exits(
        self, nvcf: LocalNvcf, tmp_path: Path, sig: signal.Signals
    ) -> None:
        """Issue 10 item 7: in-flight and queued callers get a 503 problem; exit 0 within 10 s.

        Today SIGTERM with a request in flight keeps ``local`` alive for the
        caller's whole poll window (58.7 s).
        """
        running = tmp_path / "running"
        never = str(tmp_path / "never")
        first, first_answer = _in_background(nvcf, {"wait": never, "touch": str(running)})
        assert eventually(running.exists)
        second, second_answer = _in_background(nvcf, {"marker": "queued"})
        queue = f"/v2/nvcf/queues/functions/{nvcf.function_id}"
        assert eventually(lambda: call(nvcf, "GET", queue).json()["queues"][0]["queueDepth"] == 1)
        assert nvcf.process is not None
        assert nvcf.root is not None
        stopped_at = time.monotonic()
        nvcf.process.send_signal(sig)
        second.join(10)
        assert "was still waiting in the queue" in _stopping_problem(second_answer[0])
        late = invoke(nvcf, {})
        assert "takes no new invocations" in _stopping_problem(late)
        first.join(10)
        assert "did not finish within" in _stopping_problem(first_answer[0])
        assert nvcf.process.wait(timeout=15) == 0
        assert time.monotonic() - stopped_at < 10
        assert not nvcf.root.exists()

    def test_result_within_the_grace_is_delivered(self, nvcf: LocalNvcf, tmp_path: Path) -> None:
        """Issue 10 item 7: a request that finishes within the short grace gets its result."""
        running = tmp_path / "running"
        thread, answers = _in_background(nvcf, {"touch": str(running), "sleep": 1.0})
        assert eventually(running.exists)
        assert nvcf.process is not None
        nvcf.process.send_signal(signal.SIGTERM)
        thread.join(15)
        reply = answers[0]
        assert isinstance(reply, Reply), reply
        assert reply.status == 200
        assert json.loads(reply.json()["body"])["sleep"] == 1.0
        assert nvcf.process.wait(timeout=15) == 0

    def test_stop_returns_quickly_and_leaves_no_root(self, nvcf: LocalNvcf, tmp_path: Path) -> None:
        """Issue 10 item 7: ``LocalNvcf.stop()`` with a request in flight: fast, exit 0, no root.

        Today it waits 30 s, falls back to SIGKILL and leaves the temporary root.
        """
        running = tmp_path / "running"
        thread, answers = _in_background(
            nvcf, {"wait": str(tmp_path / "never"), "touch": str(running)}
        )
        assert eventually(running.exists)
        root = nvcf.root
        assert root is not None
        assert root.is_dir()
        started = time.monotonic()
        assert nvcf.stop() == 0
        assert time.monotonic() - started < 10
        assert not root.exists()
        thread.join(10)
        _stopping_problem(answers[0])


class TestKilled:
    """SIGKILL of ``local``, which cannot clean up: its guard does."""

    def test_nothing_is_left(self, nvcf: LocalNvcf, tmp_path: Path) -> None:
        """Issue 10 item 7: the container's children and the temporary root go too.

        Today the container's own children are orphaned: only the container's
        first process gets the parent-death signal.
        """
        pid_file = tmp_path / "grandchild"
        echo = invoke(nvcf, {"spawn": str(pid_file)}).json()
        grandchild = int(pid_file.read_text())
        root = nvcf.root
        assert root is not None
        assert _alive(grandchild)
        assert nvcf.process is not None
        nvcf.process.kill()
        nvcf.process.wait()
        assert eventually(lambda: not _alive(grandchild), 15), "the container's child survived"
        assert eventually(lambda: not root.exists(), 15)
        assert echo["method"] == "POST"
