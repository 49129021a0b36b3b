"""Tests for nvcf_helpers.outputs: the .partial -> rename protocol and spilling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nvcf_helpers import (
    PARTIAL_SUFFIX,
    MissingContextError,
    NvcfHelperError,
    OutputError,
    RequestContext,
    large_output,
    respond_or_spill,
)


@pytest.fixture
def ctx(tmp_path: Path) -> RequestContext:
    """A request with an output directory and a small inline-response limit."""
    output = tmp_path / "output"
    output.mkdir()
    return RequestContext(request_id="r", large_output_dir=output, max_response_bytes=100)


def listing(ctx: RequestContext) -> list[str]:
    """Every entry of the output directory."""
    assert ctx.large_output_dir is not None
    return sorted(os.listdir(ctx.large_output_dir))


class TestLargeOutput:
    """large_output writes name.partial and renames it only on success."""

    def test_only_partial_exists_while_open(self, ctx: RequestContext) -> None:
        """While the block runs, only ``name.partial`` is in the directory."""
        assert PARTIAL_SUFFIX == ".partial"
        with large_output(ctx, "result.bin") as stream:
            stream.write(b"half")
            stream.flush()
            assert listing(ctx) == ["result.bin.partial"]
        assert listing(ctx) == ["result.bin"]

    def test_content_intact_after_rename(self, ctx: RequestContext) -> None:
        """Every byte written is in the final file."""
        payload = os.urandom(3 * 1024 * 1024 + 17)
        with large_output(ctx, "blob") as stream:
            for start in range(0, len(payload), 65536):
                stream.write(payload[start : start + 65536])
        assert ctx.large_output_dir is not None
        assert (ctx.large_output_dir / "blob").read_bytes() == payload

    def test_exception_removes_partial_and_propagates(self, ctx: RequestContext) -> None:
        """If the block raises, the partial file is gone and the error reaches the caller."""

        class ModelFailedError(Exception):
            pass

        def infer() -> None:
            with large_output(ctx, "result.bin") as stream:
                stream.write(b"partial data")
                assert listing(ctx) == ["result.bin.partial"]
                raise ModelFailedError("out of memory")

        with pytest.raises(ModelFailedError, match="out of memory"):
            infer()
        assert listing(ctx) == []

    def test_keyboard_interrupt_also_cleans_up(self, ctx: RequestContext) -> None:
        """Even a BaseException such as KeyboardInterrupt removes the partial file."""
        with pytest.raises(KeyboardInterrupt), large_output(ctx, "x"):
            raise KeyboardInterrupt
        assert listing(ctx) == []

    def test_creates_the_directory(self, tmp_path: Path) -> None:
        """A missing output directory is created."""
        ctx = RequestContext(large_output_dir=tmp_path / "new" / "dir")
        with large_output(ctx, "f") as stream:
            stream.write(b"1")
        assert (tmp_path / "new" / "dir" / "f").read_bytes() == b"1"

    def test_overwrites_an_existing_output(self, ctx: RequestContext) -> None:
        """Writing the same name twice leaves the second content."""
        for content in (b"first", b"second"):
            with large_output(ctx, "same") as stream:
                stream.write(content)
        assert ctx.large_output_dir is not None
        assert (ctx.large_output_dir / "same").read_bytes() == b"second"

    def test_missing_output_dir(self) -> None:
        """Without NVCF-LARGE-OUTPUT-DIR it raises MissingContextError."""
        with (
            pytest.raises(MissingContextError, match="header NVCF-LARGE-OUTPUT-DIR is missing"),
            large_output(RequestContext(), "x"),
        ):
            pass


class TestRefusedNames:
    """Names the worker would mishandle are refused before anything is written."""

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("", "large output name '' is empty: give the file a name"),
            ("a/b", "'a/b' is not a plain file name: use a name without separators"),
            ("a\\b", "is not a plain file name"),
            ("../escape", "is not a plain file name"),
            ("..", "'..' is not a plain file name"),
            (".", "'.' is not a plain file name"),
            ("a\0b", "is not a plain file name"),
            ("progress", "'progress' is reserved for progress reports: pick another name"),
            ("result.partial", "ends in '.partial', which marks unfinished files"),
        ],
    )
    def test_refused(self, ctx: RequestContext, name: str, message: str) -> None:
        """Empty, separators, '..', NUL, 'progress' and '*.partial' raise OutputError."""
        with pytest.raises(OutputError, match=message), large_output(ctx, name):
            pass
        with pytest.raises(OutputError, match=message):
            respond_or_spill(ctx, b"x" * 1000, name)
        assert listing(ctx) == []

    def test_output_error_is_an_nvcf_helper_error(self, ctx: RequestContext) -> None:
        """OutputError is an NvcfHelperError."""
        with pytest.raises(NvcfHelperError), large_output(ctx, "progress"):
            pass


class TestRespondOrSpill:
    """respond_or_spill returns small bodies and spills large ones."""

    def test_body_that_fits_is_returned(self, ctx: RequestContext) -> None:
        """A body under the limit comes back unchanged and nothing is written."""
        assert respond_or_spill(ctx, b"small", "out.json") == b"small"
        assert listing(ctx) == []

    def test_exactly_the_limit_fits(self, ctx: RequestContext) -> None:
        """A body of exactly max_response_bytes is still inline."""
        body = b"x" * ctx.max_response_bytes
        assert respond_or_spill(ctx, body, "out.json") == body
        assert listing(ctx) == []

    def test_one_byte_over_is_spilled(self, ctx: RequestContext) -> None:
        """One byte over the limit writes the body and returns a JSON reference."""
        body = b"y" * (ctx.max_response_bytes + 1)
        reference = respond_or_spill(ctx, body, "out.json")
        assert json.loads(reference) == {"largeOutput": "out.json", "bytes": 101}
        assert listing(ctx) == ["out.json"]
        assert ctx.large_output_dir is not None
        assert (ctx.large_output_dir / "out.json").read_bytes() == body

    def test_default_limit(self, tmp_path: Path) -> None:
        """Without the header, NVCF's 5,000,000 bytes is the limit."""
        ctx = RequestContext(large_output_dir=tmp_path)
        limit = 5 * 1024 * 1024  # what NVCF's gateway always sends
        assert respond_or_spill(ctx, b"z" * limit, "big") == b"z" * limit
        reference = json.loads(respond_or_spill(ctx, b"z" * (limit + 1), "big"))
        assert reference == {"largeOutput": "big", "bytes": limit + 1}


# Writes chunks into a large output forever, saying "writing" once data is on disk.
CRASH_CHILD = """
import sys
from pathlib import Path
from nvcf_helpers import RequestContext, large_output

ctx = RequestContext(request_id="crash", large_output_dir=Path(sys.argv[1]))
chunk = b"x" * 65536
with large_output(ctx, "result.bin") as stream:
    stream.write(chunk)
    stream.flush()
    print("writing", flush=True)
    while True:
        stream.write(chunk)
        stream.flush()
        stream.seek(0)
"""


class TestCrash:
    """A process killed mid-write leaves no file under the final name."""

    def test_sigkill_mid_write(self, tmp_path: Path) -> None:
        """SIGKILL while writing leaves only the partial file, never the final one."""
        output = tmp_path / "output"
        child = subprocess.Popen(
            [sys.executable, "-c", CRASH_CHILD, str(output)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "writing\n"
            assert (output / "result.bin.partial").stat().st_size > 0
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert not (output / "result.bin").exists()
        assert sorted(os.listdir(output)) == ["result.bin.partial"]


class TestSpillOutputs:
    """spill_outputs moves the largest outputs out until the rest fits inline."""

    def test_largest_go_first_until_the_rest_fits(self, tmp_path: Path) -> None:
        """Only as many outputs move as needed, largest first, written by the caller's writer."""
        from nvcf_helpers import spill_outputs
        from nvcf_helpers.testing import fake_request

        ctx = fake_request(tmp_path, max_response_bytes=11)
        outputs = {"small": b"abc", "big": b"x" * 20, "mid": b"y" * 8}
        kept = spill_outputs(ctx, outputs, len, lambda stream, value: stream.write(value), ".bin")
        assert kept == {"small": b"abc", "mid": b"y" * 8}
        assert ctx.large_output_dir is not None
        assert sorted(p.name for p in ctx.large_output_dir.iterdir()) == ["big.bin"]
        assert (ctx.large_output_dir / "big.bin").read_bytes() == b"x" * 20

    def test_nothing_moves_when_it_fits(self, tmp_path: Path) -> None:
        """Outputs within max_response_bytes stay inline and no file is written."""
        from nvcf_helpers import spill_outputs
        from nvcf_helpers.testing import fake_request

        ctx = fake_request(tmp_path, max_response_bytes=100)
        kept = spill_outputs(ctx, {"a": b"1"}, len, lambda stream, value: stream.write(value))
        assert kept == {"a": b"1"}
        assert ctx.large_output_dir is not None
        assert list(ctx.large_output_dir.iterdir()) == []

    def test_without_output_dir_answers_inline(self, caplog: pytest.LogCaptureFixture) -> None:
        """Without NVCF-LARGE-OUTPUT-DIR everything stays inline, with a warning."""
        from nvcf_helpers import RequestContext, spill_outputs

        ctx = RequestContext(max_response_bytes=1)
        kept = spill_outputs(ctx, {"a": b"12"}, len, lambda stream, value: stream.write(value))
        assert kept == {"a": b"12"}
        assert "has no NVCF-LARGE-OUTPUT-DIR" in caplog.text
