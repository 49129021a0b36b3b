"""`make demo` runs `python -m nvcf_helpers.demo`; these keep both of its modes working."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nvcf_helpers import demo
from nvcf_helpers.local import LocalNvcfError

# What reads as a failure when it shows up in a demo that worked.
NOISE = ("Traceback", "Error:", "leaked", "Signal (15)", "Exit timeout expired", "failure")


def _demo(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nvcf_helpers.demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TestOfflineDemo:
    def test_shows_the_contract_without_a_server(self) -> None:
        """--offline exits 0 and shows request ids in logs, progress and the zipped result."""
        result = _demo("--offline", timeout=120)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "[INFO] [INFERENCE] [reqid=" in out
        assert "202 NVCF-PERCENT-COMPLETE: 100" in out
        assert "302 Location:" in out
        assert "word-counts.tsv" in out
        assert ".response " in out  # the inline response's member of the zip


@pytest.fixture(scope="class")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """One run of the default demo: its work directory, its log file and its result."""
    root = tmp_path_factory.mktemp("demo")
    workdir, log_path = root / "work", root / "logs" / "servers.log"
    result = _demo("--keep", str(workdir), "--log", str(log_path), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, log_path, result


@pytest.mark.integration
class TestDemo:
    def test_generates_runs_and_invokes_a_function(
        self, demo_run: tuple[Path, Path, subprocess.CompletedProcess[str]]
    ) -> None:
        """The default demo scaffolds, serves behind local NVCF, shows progress and the result."""
        workdir, _, result = demo_run
        out = result.stdout
        assert "nvcf-helpers check: 2 files checked, no problems" in result.stdout + result.stderr
        assert "is ACTIVE at http://127.0.0.1:" in out
        # The invoke progress bar passed through 202s before finishing.
        assert "in-progress" in result.stderr
        assert "100% fulfilled" in result.stderr
        # The story repeats 40 times; 'the' appears 11 times in it.
        assert "top words: the 440, " in out
        assert (workdir / "result" / "WORDS.npy").is_file()
        assert "and 0 PyTriton workspaces are left behind" in out

    def test_nothing_on_screen_reads_as_a_failure(
        self, demo_run: tuple[Path, Path, subprocess.CompletedProcess[str]]
    ) -> None:
        """No traceback, leak warning, signal or server start-up table in what it prints."""
        shown = demo_run[2].stdout + demo_run[2].stderr
        for noise in NOISE:
            assert noise not in shown, f"{noise!r} in the demo's output:\n{shown}"
        assert "+----" not in shown  # tritonserver's start-up tables

    def test_server_logs_go_to_the_file_it_names(
        self, demo_run: tuple[Path, Path, subprocess.CompletedProcess[str]]
    ) -> None:
        """The local NVCF's and the container's logs are in the file named on screen."""
        _, log_path, result = demo_run
        assert f"logs go to {log_path}" in result.stdout
        assert result.stdout.rstrip().endswith(f"the container's logs: {log_path}")
        logs = log_path.read_text()
        assert "successfully loaded 'word_count'" in logs  # tritonserver's
        assert "function word-count-pytriton is ACTIVE" in logs  # the local NVCF's
        assert "SIGTERM received, shutting down" in logs  # the container's, when stopped

    def test_the_container_stops_cleanly(
        self, demo_run: tuple[Path, Path, subprocess.CompletedProcess[str]]
    ) -> None:
        """Stopped as docker stop stops it, the container's shutdown logs no error either."""
        logs = demo_run[1].read_text()
        shutdown = logs[logs.index("SIGTERM received, shutting down") :]
        for noise in ("Traceback", "leaked", "Signal (15)", "Non-graceful termination"):
            assert noise not in shutdown, f"{noise!r} in the container's shutdown:\n{shutdown}"


class TestFailure:
    def test_a_failed_step_shows_the_tail_of_the_log(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """When the function never gets healthy, the demo says so, shows the log's tail, exits 1."""

        @contextmanager
        def unhealthy(project: Path, log_path: Path, home: Path) -> Iterator[Any]:
            lines = [f"server line {n}" for n in range(100)] + ["the model failed to load"]
            log_path.write_text("\n".join(lines) + "\n")
            raise LocalNvcfError("function word-count-pytriton went to ERROR: exited")
            yield  # pragma: no cover - a generator, as the real one

        monkeypatch.setattr(demo, "running", unhealthy)
        log_path = tmp_path / "demo.log"
        assert demo.full(tmp_path, log_path) == 1
        out = capsys.readouterr().out
        assert "The demo failed: function word-count-pytriton went to ERROR: exited" in out
        assert f"The last lines of {log_path}:" in out
        assert out.rstrip().endswith("the model failed to load")
        # 101 lines written: the last LOG_TAIL_LINES of them are shown, no more.
        assert f"server line {101 - demo.LOG_TAIL_LINES}\n" in out
        assert f"server line {100 - demo.LOG_TAIL_LINES}\n" not in out
