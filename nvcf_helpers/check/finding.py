"""One problem found by ``nvcf-helpers check``, and how it is printed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "line_of"]


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """A problem in one file, with the way to fix it.

    Printed as ``file:line: what is wrong; how to fix it``, the format
    compilers use, so editors and CI logs link straight to the line.

    Attributes:
        path: the file the problem is in.
        line: its 1-based line number (1 when the problem is the whole file).
        problem: what is wrong.
        fix: what to do about it.
    """

    path: Path
    line: int
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}; {self.fix}"


def line_of(text: str, needle: str, start: int = 1) -> int:
    """The 1-based number of the first line at or after ``start`` containing ``needle``.

    Returns ``start`` when no line contains it, so a finding still points near
    the right place.
    """
    lines = text.splitlines()
    for number in range(max(start, 1), len(lines) + 1):
        if needle in lines[number - 1]:
            return number
    return max(start, 1)
