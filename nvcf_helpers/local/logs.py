"""The containers' log lines, kept as NVCF's Logs tab keeps them: parsed, filtered, 48 hours.

Every complete line an instance writes (stdout and stderr share one pipe) is
parsed here: NVCF's format (``TIME [LEVEL] [INFERENCE] [reqid=ID] message``,
what :func:`nvcf_helpers.configure_logging` writes) and the library's JSON
lines give a level, the ``[INFERENCE]`` marker and the request id; any other
line is kept as it is, with no level. A :class:`LogStore` keeps the lines of
every instance of the local NVCF within a byte budget and NVCF's 48 hours of
history, and answers queries (:meth:`LogStore.query`) by function, version,
request id, level, time and cursor. Lines arrive from the copying threads,
queries from the event loop: every access holds the store's lock briefly.
"""

from __future__ import annotations

import bisect
import datetime
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LOG_BUDGET_BYTES",
    "HISTORY_SECONDS",
    "LEVELS",
    "MAX_LINE_CHARS",
    "LogLine",
    "LogQuery",
    "LogStore",
    "iso_millis",
    "level_rank",
    "page_json",
    "parse_since",
]

#: What the store keeps by default: about this many bytes of lines.
DEFAULT_LOG_BUDGET_BYTES = 32 << 20
#: NVCF shows 48 hours of a function's logs; older lines are dropped.
HISTORY_SECONDS = 48 * 3600
#: A longer line is split into pieces this long (Docker splits log lines at 16 KiB too).
MAX_LINE_CHARS = 16 * 1024
#: What one kept line costs beyond its text (the object, its fields, the queue's slot).
LINE_OVERHEAD_BYTES = 240
#: Log levels in increasing order of severity; a level filter keeps that level and above.
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "PANIC": "CRITICAL", "DPANIC": "CRITICAL"}
_RANK = {name: rank for rank, name in enumerate(LEVELS)}

# asctime (logging's default, or ISO with a T and a zone), [LEVEL], then optionally
# [INFERENCE] and the [reqid=...] that nvcf_helpers.log_request adds.
_NVCF_LINE = re.compile(
    r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? +"
    r"\[(?P<level>[A-Za-z]+)\] +(?P<inference>\[INFERENCE\] ?)?"
    r"(?:\[reqid=(?P<reqid>[^\]\s]+)\] ?)?"
)
_REQUEST_ID_KEYS = ("reqid", "requestId", "request_id")


def level_rank(level: str) -> int | None:
    """The rank of a level name in :data:`LEVELS` (any case, ``WARN`` and ``FATAL`` too)."""
    upper = level.upper()
    return _RANK.get(_ALIASES.get(upper, upper))


def iso_millis(timestamp: float) -> str:
    """A time in ISO 8601, UTC, with milliseconds: ``2025-01-31T12:00:00.123Z``."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_since(text: str, now: float) -> float:
    """A ``since`` value as a time: seconds ago (``600``, ``10m``, ``2h``, ``1d``) or ISO 8601.

    Raises:
        ValueError: neither; the message says what is accepted.
    """
    text = text.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text)
    if match:
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return now - float(match.group(1)) * unit
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since {text!r} is neither a duration (600, 10m, 2h, 1d) nor an ISO 8601 time "
            "(2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


class LogLine:
    """One line an instance wrote, with what its text says about it.

    Attributes:
        id: increasing with each line the store kept (a cursor for ``after``).
        time: when the local NVCF read it (seconds since the epoch).
        function_id: the function of the instance that wrote it.
        version_id: its version.
        instance: the instance's index in the deployment.
        level: ``DEBUG`` ... ``CRITICAL`` when the line names one, else ``None``.
        inference: the line carries NVCF's ``[INFERENCE]`` marker.
        request_id: the request it was written for, when it says.
        text: the line as written.
    """

    __slots__ = (
        "_message",
        "function_id",
        "id",
        "inference",
        "instance",
        "level",
        "request_id",
        "text",
        "time",
        "version_id",
    )

    def __init__(
        self,
        line_id: int,
        moment: float,
        source: tuple[str, str, int],
        text: str,
    ) -> None:
        self.id = line_id
        self.time = moment
        self.function_id, self.version_id, self.instance = source
        self.text = text
        self.level: str | None = None
        self.inference = False
        self.request_id: str | None = None
        # An offset into text (the message is the rest of it), or the message of a JSON line.
        self._message: int | str = 0
        self._parse()

    def _parse(self) -> None:
        text = self.text
        if text.startswith("{"):
            self._parse_json()
            return
        match = _NVCF_LINE.match(text)
        if match is None:
            return
        rank = level_rank(match.group("level"))
        self.level = LEVELS[rank] if rank is not None else match.group("level").upper()
        self.inference = match.group("inference") is not None
        self.request_id = match.group("reqid")
        self._message = match.end()

    def _parse_json(self) -> None:
        try:
            document = json.loads(self.text)
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        message = document.get("message", document.get("msg"))
        level = document.get("level")
        if not isinstance(message, str) or not isinstance(level, str):
            return
        rank = level_rank(level)
        self.level = LEVELS[rank] if rank is not None else level.upper()
        self.inference = document.get("source") == "INFERENCE"
        for key in _REQUEST_ID_KEYS:
            value = document.get(key)
            if isinstance(value, str) and value:
                self.request_id = value
                break
        self._message = message

    @property
    def message(self) -> str:
        """What the line says, without its time, level, marker and request id."""
        message = self._message
        return self.text[message:] if isinstance(message, int) else message

    @property
    def cost(self) -> int:
        """About the bytes of memory the line takes."""
        extra = len(self._message) if isinstance(self._message, str) else 0
        return len(self.text) + extra + LINE_OVERHEAD_BYTES

    def to_json(self) -> dict[str, Any]:
        """The line as ``GET /_local/logs`` lists it."""
        return {
            "id": self.id,
            "time": iso_millis(self.time),
            "functionId": self.function_id,
            "versionId": self.version_id,
            "instance": self.instance,
            "level": self.level,
            "inference": self.inference,
            "requestId": self.request_id,
            "message": self.message,
            "text": self.text,
        }


@dataclass(frozen=True)
class LogQuery:
    """Which lines to list.

    Attributes:
        function_id: only this function's lines.
        version_id: only this version's.
        request_id: only the lines written for this request.
        level: only lines of this level (a :data:`LEVELS` name) or above.
        since: only lines read at or after this time (seconds since the epoch).
        after: only lines with a greater id (the ``next`` of an earlier answer);
            the first ``limit`` of them, oldest first. Without it, the last ``limit``.
        limit: at most this many lines.
    """

    function_id: str | None = None
    version_id: str | None = None
    request_id: str | None = None
    level: str | None = None
    since: float | None = None
    after: int | None = None
    limit: int = 1000

    def matches(self, line: LogLine) -> bool:
        """Whether the line passes every filter but the time and the cursor."""
        if self.function_id is not None and line.function_id != self.function_id:
            return False
        if self.version_id is not None and line.version_id != self.version_id:
            return False
        if self.request_id is not None and line.request_id != self.request_id:
            return False
        if self.level is not None:
            rank = level_rank(line.level) if line.level is not None else None
            return rank is not None and rank >= _RANK[self.level]
        return True


class LogStore:
    """The lines of every instance, bounded by ``budget`` bytes and NVCF's 48 hours.

    Args:
        budget: about the bytes of memory the lines may take; past it, the
            oldest lines go.
        history: seconds a line is kept (NVCF's 48 hours).
    """

    def __init__(
        self, budget: int = DEFAULT_LOG_BUDGET_BYTES, history: float = HISTORY_SECONDS
    ) -> None:
        self.budget = budget
        self.history = history
        self._lines: deque[LogLine] = deque()
        self._bytes = 0
        self._next_id = 1
        self._last_time = 0.0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def bytes(self) -> int:
        """About the bytes of memory the kept lines take."""
        return self._bytes

    def add(self, function_id: str, version_id: str, instance: int, text: str) -> None:
        """Keep one complete line an instance wrote (any thread)."""
        source = (function_id, version_id, instance)
        pieces = [text[at : at + MAX_LINE_CHARS] for at in range(0, len(text), MAX_LINE_CHARS)]
        with self._lock:
            # Never backwards, so that lines stay in time order for `since`.
            now = self._last_time = max(self._last_time, time.time())
            for piece in pieces or [""]:
                line = LogLine(self._next_id, now, source, piece)
                self._next_id += 1
                self._lines.append(line)
                self._bytes += line.cost
            self._trim(now)

    def _trim(self, now: float) -> None:
        lines = self._lines
        oldest = now - self.history
        while lines and (self._bytes > self.budget or lines[0].time < oldest):
            self._bytes -= lines.popleft().cost

    def query(self, query: LogQuery) -> tuple[list[LogLine], int]:
        """The lines that match, oldest first, and the cursor for the next query.

        The cursor (``next``) is the id of the last line looked at: give it as
        ``after`` to get only lines that arrived since.
        """
        with self._lock:
            self._trim(time.time())
            lines = list(self._lines)
        newest = lines[-1].id if lines else (query.after or 0)
        start = 0
        if query.after is not None:
            start = bisect.bisect_right(lines, query.after, key=_line_id)
        if query.since is not None:
            start = max(start, bisect.bisect_left(lines, query.since, key=_line_time))
        window = lines[start:] if start else lines
        if query.after is None:
            return _last(window, query), newest
        found: list[LogLine] = []
        for line in window:
            if query.matches(line):
                found.append(line)
                if len(found) >= query.limit:
                    return found, line.id
        return found, max(newest, query.after)


def _last(lines: list[LogLine], query: LogQuery) -> list[LogLine]:
    found: list[LogLine] = []
    for line in reversed(lines):
        if len(found) >= query.limit:
            break
        if query.matches(line):
            found.append(line)
    found.reverse()
    return found


def _line_id(line: LogLine) -> int:
    return line.id


def _line_time(line: LogLine) -> float:
    return line.time


def page_json(lines: Iterable[LogLine], cursor: int) -> dict[str, Any]:
    """The answer of ``GET /_local/logs``."""
    return {"lines": [line.to_json() for line in lines], "next": cursor}
