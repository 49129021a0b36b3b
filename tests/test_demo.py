"""`make demo` runs the demo module; this keeps it working."""

from __future__ import annotations

import subprocess
import sys


class TestDemo:
    def test_demo_shows_the_contract_end_to_end(self) -> None:
        """The demo exits 0 and shows request ids in logs, progress and the zipped result."""
        result = subprocess.run(
            [sys.executable, "-m", "nvcf_helpers.demo"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "[INFO] [INFERENCE] [reqid=" in out
        assert "202 NVCF-PERCENT-COMPLETE: 100" in out
        assert "302 Location:" in out
        assert "word-counts.tsv" in out
