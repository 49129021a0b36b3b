"""`make demo` runs `python -m nvcf_helpers.demo`; these keep both of its modes working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


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


@pytest.mark.integration
class TestDemo:
    def test_generates_runs_and_invokes_a_function(self, tmp_path: Path) -> None:
        """The default demo scaffolds, serves behind local NVCF, shows progress and the result."""
        result = _demo("--keep", str(tmp_path), timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        assert "nvcf-helpers check: 2 files checked, no problems" in result.stdout + result.stderr
        assert "is ACTIVE at http://127.0.0.1:" in out
        # The invoke progress bar passed through 202s before finishing.
        assert "in-progress" in result.stderr
        assert "100% fulfilled" in result.stderr
        # The story repeats 40 times; 'the' appears 11 times in it.
        assert "top words: the 440, " in out
        assert (tmp_path / "result" / "WORDS.npy").is_file()
        assert "0 PyTriton workspaces are left behind" in out
