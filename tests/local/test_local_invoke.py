"""nvcf-helpers invoke against the local NVCF."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from local_support import API_KEY

from nvcf_helpers import cli
from nvcf_helpers.client import Progress
from nvcf_helpers.client.invoke import ProgressBar
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port


@pytest.fixture
def invoke_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invoke command, unaffected by an NVCF_BASE_URL in the environment."""
    monkeypatch.delenv("NVCF_BASE_URL", raising=False)


def _args(nvcf: LocalNvcf, *more: str) -> list[str]:
    return ["invoke", *more, "--base-url", nvcf.base_url, "--api-key", API_KEY]


@pytest.mark.integration
class TestInvokeCommand:
    """The command prints the body, draws progress and saves large outputs."""

    def test_picks_the_only_function_and_sends_assets(
        self,
        invoke_cli: None,
        nvcf: LocalNvcf,
        tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes],
    ) -> None:
        """Without FUNCTION_ID it invokes the only function, with @file data and an asset."""
        payload = tmp_path / "payload.json"
        payload.write_text('{"question": 42}')
        asset = tmp_path / "input.txt"
        asset.write_text("asset content")
        status = cli.main(_args(nvcf, "--data", f"@{payload}", "--asset", str(asset)))
        captured = capsysbinary.readouterr()
        assert status == 0, captured.err
        echo = json.loads(captured.out)
        assert echo["input"] == {"question": 42}
        assert list(echo["assets"].values()) == ["asset content"]
        assert f"invoking contract-server ({nvcf.function_id})" in captured.err.decode()

    def test_progress_bar_and_large_outputs(
        self,
        invoke_cli: None,
        nvcf: LocalNvcf,
        tmp_path: Path,
        capsysbinary: pytest.CaptureFixture[bytes],
    ) -> None:
        """Progress is drawn on stderr while 202s arrive; large outputs land in --output."""
        data = json.dumps(
            {
                "progress": [[50, {"done": "half"}]],
                "sleep": 2.5,
                "large": {"name": "r.bin", "bytes": 10},
            }
        )
        output = tmp_path / "out"
        status = cli.main(
            _args(
                nvcf,
                nvcf.function_id,
                "--data",
                data,
                "--poll-seconds",
                "1",
                "--output",
                str(output),
            )
        )
        captured = capsysbinary.readouterr()
        err = captured.err.decode()
        assert status == 0, err
        assert " 50% in-progress" in err
        assert '{"done":"half"}' in err
        assert "100% fulfilled" in err
        assert "wrote 1 large output(s)" in err
        assert (output / "r.bin").read_bytes() == b"L" * 10
        assert json.loads(captured.out)["input"]["large"]["name"] == "r.bin"

    def test_container_error_is_one_line(
        self, invoke_cli: None, nvcf: LocalNvcf, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A container error exits 1 with the problem's detail."""
        data = json.dumps({"status": 400, "error": "field 'x' is missing"})
        assert cli.main(_args(nvcf, nvcf.function_id, "--data", data)) == 1
        err = capsys.readouterr().err
        assert err.startswith("nvcf-helpers invoke: error: ")
        assert "answered 400" in err
        assert "field 'x' is missing" in err


class TestInvokeMistakes:
    """User mistakes are reported before anything is sent."""

    def test_data_that_is_not_json(
        self, invoke_cli: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--data must be JSON."""
        assert cli.main(["invoke", "f", "--data", "{oops"]) == 1
        assert "--data is not JSON" in capsys.readouterr().err

    def test_missing_asset_file(
        self, invoke_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An --asset that does not exist is named."""
        assert cli.main(["invoke", "f", "--asset", str(tmp_path / "none.png")]) == 1
        assert "none.png: no such file" in capsys.readouterr().err

    def test_nothing_listening(self, invoke_cli: None, capsys: pytest.CaptureFixture[str]) -> None:
        """No API at the base URL: the error says what to check."""
        url = f"http://127.0.0.1:{free_port()}"
        assert cli.main(["invoke", "f", "--base-url", url]) == 1
        assert "nvcf-helpers local`) is running" in capsys.readouterr().err


class TestProgressBar:
    """The bar writes one line per change when stderr is not a terminal."""

    def test_one_line_per_change(self) -> None:
        """Repeated identical progress is not repeated in a log."""
        stream = io.StringIO()
        bar = ProgressBar(stream)
        for percent, elapsed in ((10, 1.0), (10, 2.0), (60, 3.0)):
            bar.update(Progress("r", "in-progress", percent, {"p": percent}, elapsed))
        bar.finish(Progress("r", "fulfilled", 100, None, 4.0))
        lines = stream.getvalue().splitlines()
        assert len(lines) == 3
        assert lines[0].startswith("[##----------------------]  10% in-progress")
        assert lines[1].endswith('{"p":60}')
        assert lines[2].startswith("[########################] 100% fulfilled")

    def test_nothing_drawn_for_an_immediate_result(self) -> None:
        """A 200 at once draws no bar at all."""
        stream = io.StringIO()
        ProgressBar(stream).finish(Progress("r", "fulfilled", 100, None, 0.1))
        assert stream.getvalue() == ""
