"""Tests for nvcf_helpers.progress: the progress file, its checks, its atomicity."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nvcf_helpers import (
    MAX_PARTIAL_RESPONSE_BYTES,
    PROGRESS_FILE,
    MissingContextError,
    NvcfHelperError,
    ProgressError,
    ProgressReporter,
    ProgressUpdate,
    RequestContext,
    parse_progress,
)

REQUEST_ID = "7d3c9a56-3a8e-4d0b-9b7e-2f6f0d2c4e11"

# Serialised compactly, {"x": "<n characters>"} takes n + 8 bytes.
OVERHEAD = len(json.dumps({"x": ""}, separators=(",", ":")))


@pytest.fixture
def ctx(tmp_path: Path) -> RequestContext:
    """A request whose output directory already exists, as the worker makes it."""
    output = tmp_path / "output"
    output.mkdir()
    return RequestContext(request_id=REQUEST_ID, large_output_dir=output)


@pytest.fixture
def reporter(ctx: RequestContext) -> ProgressReporter:
    """A reporter for ``ctx``."""
    return ProgressReporter(ctx)


def progress_file(ctx: RequestContext) -> Path:
    """Where the worker looks for progress."""
    assert ctx.large_output_dir is not None
    return ctx.large_output_dir / PROGRESS_FILE


def listing(ctx: RequestContext) -> list[str]:
    """Every entry of the output directory, hidden ones included."""
    assert ctx.large_output_dir is not None
    return sorted(os.listdir(ctx.large_output_dir))


class TestContent:
    """update writes {"id", "progress", "partialResponse"}."""

    def test_file_content(self, ctx: RequestContext, reporter: ProgressReporter) -> None:
        """The file holds the request id, the integer progress and the partial object."""
        reporter.update(42, {"tokens": ["a", "é"], "n": 2})
        assert PROGRESS_FILE == "progress"
        assert json.loads(progress_file(ctx).read_bytes()) == {
            "id": REQUEST_ID,
            "progress": 42,
            "partialResponse": {"tokens": ["a", "é"], "n": 2},
        }

    def test_without_partial_response(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """Without a partial response the key is left out."""
        reporter.update(0)
        assert json.loads(progress_file(ctx).read_bytes()) == {"id": REQUEST_ID, "progress": 0}

    def test_later_update_replaces_earlier(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """The file always holds the latest update."""
        reporter.update(10, {"step": 1})
        reporter.update(100)
        update = parse_progress(progress_file(ctx).read_bytes(), REQUEST_ID)
        assert update == ProgressUpdate(100, None)

    def test_creates_the_directory(self, tmp_path: Path) -> None:
        """A missing output directory is created, parents included."""
        ctx = RequestContext(request_id=REQUEST_ID, large_output_dir=tmp_path / "a" / "b")
        ProgressReporter(ctx).update(5)
        assert json.loads((tmp_path / "a" / "b" / "progress").read_text())["progress"] == 5

    @pytest.mark.parametrize(
        ("ctx_", "header"),
        [
            (RequestContext(request_id="r"), "NVCF-LARGE-OUTPUT-DIR"),
            (RequestContext(large_output_dir=Path("/nonexistent")), "NVCF-REQID"),
        ],
    )
    def test_missing_context(self, ctx_: RequestContext, header: str) -> None:
        """A reporter needs both the output directory and the request id."""
        with pytest.raises(MissingContextError, match=f"header {header} is missing"):
            ProgressReporter(ctx_)


class TestRefusals:
    """update refuses what NVCF's worker would reject, writing nothing."""

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (55.5, "progress 55.5 is not an integer: NVCF's worker rejects fractions"),
            (100.0, "progress 100.0 is not an integer"),
            (True, "progress True is not an integer"),
            ("50", "progress '50' is not an integer"),
            (None, "progress None is not an integer"),
            (101, "progress 101 is outside 0..100: pass a whole percentage"),
            (-1, "progress -1 is outside 0..100"),
        ],
    )
    def test_bad_progress(
        self, ctx: RequestContext, reporter: ProgressReporter, value: object, message: str
    ) -> None:
        """Fractions, booleans, strings and out-of-range numbers raise ProgressError."""
        with pytest.raises(ProgressError, match=message):
            reporter.update(value)  # type: ignore[arg-type]
        assert listing(ctx) == []

    @pytest.mark.parametrize("value", [0, 1, 99, 100])
    def test_bounds_accepted(self, reporter: ProgressReporter, value: int) -> None:
        """0 and 100 are valid percentages."""
        reporter.update(value)
        assert parse_progress(reporter.path.read_bytes(), REQUEST_ID).progress == value

    @pytest.mark.parametrize(
        ("partial", "message"),
        [
            ([1, 2], "partial response is a list: NVCF passes on only JSON objects"),
            ("text", "partial response is a str"),
            (7, "partial response is a int"),
            ({"a": object()}, "partial response is not JSON-serialisable"),
            ({"a": float("nan")}, "partial response is not JSON-serialisable"),
        ],
    )
    def test_bad_partial(
        self, ctx: RequestContext, reporter: ProgressReporter, partial: object, message: str
    ) -> None:
        """A partial response that is not a JSON object raises ProgressError."""
        with pytest.raises(ProgressError, match=message):
            reporter.update(50, partial)  # type: ignore[arg-type]
        assert listing(ctx) == []

    def test_partial_just_under_limit_accepted(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """A partial response one byte under 250 KB once serialised is written."""
        assert MAX_PARTIAL_RESPONSE_BYTES == 250_000
        partial = {"x": "a" * (MAX_PARTIAL_RESPONSE_BYTES - OVERHEAD - 1)}
        reporter.update(50, partial)
        assert parse_progress(progress_file(ctx).read_bytes(), REQUEST_ID).partial_response == (
            partial
        )

    def test_partial_at_limit_refused(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """A partial response of exactly 250 KB once serialised is refused."""
        partial = {"x": "a" * (MAX_PARTIAL_RESPONSE_BYTES - OVERHEAD)}
        with pytest.raises(ProgressError, match="is 250000 bytes once serialised; NVCF accepts"):
            reporter.update(50, partial)
        assert listing(ctx) == []

    def test_partial_size_counts_utf8_bytes(self, reporter: ProgressReporter) -> None:
        """The limit is in bytes: 2-byte characters count twice."""
        characters = (MAX_PARTIAL_RESPONSE_BYTES - OVERHEAD) // 2
        with pytest.raises(ProgressError, match="is 250000 bytes"):
            reporter.update(50, {"x": "é" * characters})

    def test_errors_are_nvcf_helper_errors(self, reporter: ProgressReporter) -> None:
        """ProgressError is an NvcfHelperError."""
        with pytest.raises(NvcfHelperError):
            reporter.update(-5)


class TestAtomicity:
    """No temporary file survives, and updates reach the file whole."""

    def test_no_temporary_file_left(self, ctx: RequestContext, reporter: ProgressReporter) -> None:
        """After many updates the directory holds only ``progress``."""
        for value in range(0, 101, 5):
            reporter.update(value, {"v": value})
        assert listing(ctx) == ["progress"]

    def test_no_temporary_file_left_when_writing_fails(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """If the rename fails, the error propagates and the temporary file is removed."""
        blocker = progress_file(ctx)
        blocker.mkdir()
        (blocker / "keep").write_bytes(b"")  # a non-empty directory cannot be replaced
        with pytest.raises(OSError):  # noqa: PT011 - the OS decides which OSError
            reporter.update(10)
        assert listing(ctx) == ["progress"]
        assert os.listdir(blocker) == ["keep"]

    def test_two_reporters_in_two_threads(self, ctx: RequestContext) -> None:
        """Two reporters of one request, updating at once, never collide."""
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            reporter = ProgressReporter(ctx)
            for index in range(200):
                try:
                    reporter.update(index % 101, {"worker": worker, "pad": "x" * 2000})
                except BaseException as exc:  # collected, asserted below
                    errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert listing(ctx) == ["progress"]
        parse_progress(progress_file(ctx).read_bytes(), REQUEST_ID)

    def test_concurrent_reader_never_sees_a_torn_file(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """A reader polling while thousands of updates land never reads an unparseable file.

        The same reader against a truncate-and-write writer (NVIDIA's sample's
        way) does see torn files, which shows the reader can catch them.
        """
        path = progress_file(ctx)

        def naive(seq: int) -> None:
            document = {"id": REQUEST_ID, "progress": seq % 101, "partialResponse": {"seq": seq}}
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(json.dumps({**document, "pad": "x" * 200}))

        def atomic(seq: int) -> None:
            reporter.update(seq % 101, {"seq": seq, "pad": "x" * 200})

        def race(write: Callable[[int], None], updates: int) -> tuple[int, int, list[int]]:
            write(0)
            stop = threading.Event()
            torn, reads, seen = 0, 0, []

            def reader() -> None:
                nonlocal torn, reads
                while not stop.is_set():
                    data = path.read_bytes()
                    reads += 1
                    try:
                        update = parse_progress(data, REQUEST_ID)
                    except ProgressError:
                        torn += 1
                    else:
                        assert update.partial_response is not None
                        seen.append(update.partial_response["seq"])
                    time.sleep(0)  # let the writer have the GIL between reads

            thread = threading.Thread(target=reader)
            thread.start()
            try:
                for seq in range(1, updates):
                    write(seq)
            finally:
                stop.set()
                thread.join()
            return torn, reads, seen

        torn, reads, seen = race(atomic, 3000)
        assert reads >= 100, "the reader must overlap the writer to prove anything"
        assert torn == 0
        assert seen == sorted(seen), "a reader must never see an older update after a newer"
        assert listing(ctx) == ["progress"]

        naive_torn, naive_reads, _ = race(naive, 1000)
        assert naive_reads >= 100
        assert naive_torn > 0


class TestMtimeRule:
    """Each update's mtime is strictly newer than the previous file's."""

    def test_strictly_increasing_over_rapid_updates(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """Hundreds of back-to-back updates each get a newer mtime."""
        path = progress_file(ctx)
        mtimes = []
        for index in range(300):
            reporter.update(index % 101)
            mtimes.append(os.stat(path).st_mtime_ns)
        assert all(a < b for a, b in itertools.pairwise(mtimes))

    def test_newer_than_a_file_stamped_in_the_future(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """Even when the current file's mtime is ahead of the clock, the next is newer.

        This is what a coarse-grained filesystem (or a clock step) produces: a
        plain rewrite would carry an mtime the worker considers old and be dropped.
        """
        reporter.update(10)
        path = progress_file(ctx)
        ahead = time.time_ns() + 5_000_000_000
        os.utime(path, ns=(ahead, ahead))
        reporter.update(20)
        assert os.stat(path).st_mtime_ns > ahead
        assert parse_progress(path.read_bytes(), REQUEST_ID).progress == 20


class TestParseProgress:
    """parse_progress accepts what update writes and rejects what the worker rejects."""

    @pytest.mark.parametrize(
        ("progress", "partial"),
        [(0, None), (37, {"a": [1, 2, {"b": None}]}), (100, {"text": "fin ✓"})],
    )
    def test_accepts_what_update_writes(
        self,
        ctx: RequestContext,
        reporter: ProgressReporter,
        progress: int,
        partial: dict[str, object] | None,
    ) -> None:
        """Whatever update wrote parses back to the same update."""
        reporter.update(progress, partial)
        data = progress_file(ctx).read_bytes()
        assert parse_progress(data, REQUEST_ID) == ProgressUpdate(progress, partial)
        assert parse_progress(data.decode("utf-8"), REQUEST_ID).progress == progress

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ('{"id": "other", "progress": 5}', "names request 'other', not '7d3c9a56"),
            ('{"progress": 5}', "names request None"),
            (f'{{"id": "{REQUEST_ID}", "progress": 55.5}}', "progress 55.5 is not an integer"),
            (f'{{"id": "{REQUEST_ID}", "progress": 100.0}}', "progress 100.0 is not an integer"),
            (f'{{"id": "{REQUEST_ID}", "progress": true}}', "progress True is not an integer"),
            (f'{{"id": "{REQUEST_ID}", "progress": "5"}}', "progress '5' is not an integer"),
            (f'{{"id": "{REQUEST_ID}", "progress": 101}}', "progress 101 is outside 0..100"),
            (f'{{"id": "{REQUEST_ID}", "progress": -1}}', "progress -1 is outside 0..100"),
            (f'{{"id": "{REQUEST_ID}"}}', "progress None is not an integer"),
            (
                f'{{"id": "{REQUEST_ID}", "progress": 5, "partialResponse": [1]}}',
                "partial response is a list",
            ),
            ("[1, 2]", "must hold a JSON object"),
            ('"text"', "must hold a JSON object"),
            ("", "progress file is not JSON"),
        ],
    )
    def test_rejects(self, data: str, message: str) -> None:
        """A wrong id, a float, out of range, or a non-object raises ProgressError."""
        with pytest.raises(ProgressError, match=message):
            parse_progress(data, REQUEST_ID)

    def test_rejects_every_torn_prefix(
        self, ctx: RequestContext, reporter: ProgressReporter
    ) -> None:
        """Every strict prefix of a valid file (a torn read) is rejected as not JSON."""
        reporter.update(64, {"words": ["alpha", "beta"]})
        data = progress_file(ctx).read_bytes()
        for end in range(len(data)):
            with pytest.raises(ProgressError, match=r"not JSON|must hold a JSON object"):
                parse_progress(data[:end], REQUEST_ID)

    def test_rejects_oversized_partial(self) -> None:
        """A partial response of 250 KB or more is rejected on the reading side too."""
        partial = {"x": "a" * MAX_PARTIAL_RESPONSE_BYTES}
        data = json.dumps({"id": REQUEST_ID, "progress": 1, "partialResponse": partial})
        with pytest.raises(ProgressError, match="bytes once serialised"):
            parse_progress(data, REQUEST_ID)
