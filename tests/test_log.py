"""Tests for nvcf_helpers.log: NVCF's log format, request ids, JSON lines, UTF-8."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from nvcf_helpers import (
    NVCF_LOG_FORMAT,
    RequestContext,
    configure_logging,
    current_request_id,
    log_request,
)

# "2026-11-25 20:30:00,123 [INFO] [INFERENCE] message", as logging's asctime writes it.
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(?P<level>[A-Z]+)\] \[INFERENCE\] (?P<message>.*)$"
)

log = logging.getLogger("tests.nvcf_helpers.log")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """Undo whatever a test did to the root logger's handlers and level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def lines(text: str) -> list[str]:
    """The non-empty lines of captured output."""
    return [line for line in text.splitlines() if line]


class TestFormat:
    """configure_logging writes NVCF's format to stdout."""

    def test_format_constant(self) -> None:
        """The format is exactly the one NVCF documents."""
        assert NVCF_LOG_FORMAT == "%(asctime)s [%(levelname)s] [INFERENCE] %(message)s"

    def test_line_on_stdout_in_nvcf_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A record becomes one NVCF-format line on stdout, nothing on stderr."""
        configure_logging()
        log.info("model loaded in %d ms", 12)
        out, err = capsys.readouterr()
        assert err == ""
        [line] = lines(out)
        match = LINE.match(line)
        assert match is not None, line
        assert match["level"] == "INFO"
        assert match["message"] == "model loaded in 12 ms"

    def test_level_is_applied(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Records below the configured level are dropped."""
        configure_logging(level=logging.WARNING)
        log.info("hidden")
        log.warning("shown")
        [line] = lines(capsys.readouterr().out)
        assert line.endswith("[WARNING] [INFERENCE] shown")

    def test_twice_leaves_one_handler(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A second call replaces the first handler: one line per record, not two."""
        root = logging.getLogger()
        before = list(root.handlers)
        first = configure_logging()
        second = configure_logging()
        assert first not in root.handlers
        assert root.handlers == [*before, second]
        log.info("once")
        assert len(lines(capsys.readouterr().out)) == 1

    def test_other_handlers_are_left_alone(self) -> None:
        """A handler somebody else installed survives configure_logging."""
        root = logging.getLogger()
        theirs = logging.NullHandler()
        root.addHandler(theirs)
        configure_logging()
        configure_logging()
        assert theirs in root.handlers

    def test_exception_traceback_is_logged(self, capsys: pytest.CaptureFixture[str]) -> None:
        """log.exception writes the NVCF line followed by the traceback."""
        configure_logging()
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("inference failed")
        out = capsys.readouterr().out
        assert LINE.match(out.splitlines()[0])
        assert "RuntimeError: boom" in out


class TestLogRequest:
    """log_request stamps the request id on lines written inside its block."""

    def test_lines_inside_carry_reqid_lines_after_do_not(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Inside the block: [reqid=...]; before and after: nothing."""
        configure_logging()
        log.info("before")
        with log_request(RequestContext(request_id="req-1")):
            log.info("inside")
        log.info("after")
        before, inside, after = lines(capsys.readouterr().out)
        assert before.endswith("[INFERENCE] before")
        assert inside.endswith("[INFERENCE] [reqid=req-1] inside")
        assert after.endswith("[INFERENCE] after")
        assert "reqid" not in before + after

    def test_accepts_a_plain_id_and_nests(self) -> None:
        """A string id works, an inner block wins, and leaving restores the outer one."""
        assert current_request_id() is None
        with log_request("outer"):
            assert current_request_id() == "outer"
            with log_request("inner"):
                assert current_request_id() == "inner"
            assert current_request_id() == "outer"
        assert current_request_id() is None

    @pytest.mark.parametrize("request_", [None, RequestContext()])
    def test_nothing_to_bind(
        self, request_: RequestContext | None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """None, or a context without an id, adds no reqid prefix."""
        configure_logging()
        with log_request(request_):
            assert current_request_id() is None
            log.info("plain")
        [line] = lines(capsys.readouterr().out)
        assert line.endswith("[INFERENCE] plain")

    def test_restored_after_an_exception(self) -> None:
        """An exception inside the block still unbinds the id."""
        with pytest.raises(ValueError, match="inside"), log_request("r"):
            raise ValueError("inside")
        assert current_request_id() is None

    def test_threads_do_not_mix_ids(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Two threads logging at once under different ids each get their own."""
        configure_logging()
        barrier = threading.Barrier(2)

        def handle(request_id: str) -> None:
            with log_request(request_id):
                barrier.wait()  # both blocks are open before either logs
                for index in range(50):
                    log.info("from %s #%d", request_id, index)
                barrier.wait()

        threads = [threading.Thread(target=handle, args=(rid,)) for rid in ("alpha", "beta")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out = lines(capsys.readouterr().out)
        assert len(out) == 100
        for line in out:
            match = re.search(r"\[reqid=(\w+)\] from (\w+) #", line)
            assert match is not None, line
            assert match[1] == match[2], line


class TestJson:
    """configure_logging(json=True) writes one JSON object per line."""

    def test_json_lines_with_reqid(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each line is JSON with level, source, message and, inside a request, reqid."""
        configure_logging(json=True)
        log.info("outside")
        with log_request("req-json"):
            log.warning("inside %s", "ü")
        first, second = (json.loads(line) for line in lines(capsys.readouterr().out))
        assert first["level"] == "INFO"
        assert first["message"] == "outside"
        assert first["source"] == "INFERENCE"
        assert "reqid" not in first
        assert second["level"] == "WARNING"
        assert second["message"] == "inside ü"
        assert second["reqid"] == "req-json"
        assert isinstance(second["time"], str)

    def test_json_exception(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An exception's traceback is a field of the same JSON line."""
        configure_logging(json=True)
        try:
            raise KeyError("missing")
        except KeyError:
            log.exception("failed")
        [line] = lines(capsys.readouterr().out)
        assert "KeyError: 'missing'" in json.loads(line)["exception"]


class TestUtf8:
    """Non-ASCII messages reach stdout as UTF-8."""

    def test_non_ascii_message(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Accents, CJK and emoji survive the handler."""
        configure_logging()
        with log_request("r-ü"):
            log.info("résumé 推論 ✓")
        [line] = lines(capsys.readouterr().out)
        assert line.endswith("[reqid=r-ü] résumé 推論 ✓")

    def test_stdout_is_switched_to_utf8(self) -> None:
        """With an ASCII stdout, configure_logging still writes the message as UTF-8."""
        code = (
            "import logging, nvcf_helpers\n"
            "nvcf_helpers.configure_logging()\n"
            "logging.getLogger('x').info('r\\u00e9sum\\u00e9 \\u2713')\n"
        )
        env = {**os.environ, "PYTHONIOENCODING": "ascii"}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, env=env, check=True, timeout=60
        )
        assert result.stdout.decode("utf-8").rstrip("\n").endswith("[INFERENCE] résumé ✓")
