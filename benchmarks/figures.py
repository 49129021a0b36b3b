"""How every benchmark compares and reports: interleaved medians, one line per figure.

The machines these run on are small VMs with noisy neighbours, so a
comparison is never two separate rounds: :func:`interleaved_medians` sends
one call at a time to each side, alternating A B B A A B ..., and compares
median latencies, which drift hits alike and stalls do not move.

Each figure prints as one line: its name, its value, its bound, and whether
the bound is met.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

_UNITS = {"x": "{}x", "s": "{} s", "ms": "{} ms", "MB": "{} MB"}


@dataclass(frozen=True)
class Figure:
    """One measured figure and the bound it must meet.

    Attributes:
        name: what was measured, e.g. ``generated triton-model vs hand-written, 4 FP32``.
        value: the measurement, in ``unit``.
        bound: the value it must reach.
        unit: ``x`` (a ratio), ``s``, ``ms`` or ``MB``.
        at_least: True when the value must be at least ``bound``, False at most.
    """

    name: str
    value: float
    bound: float
    unit: str = "x"
    at_least: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def line(self) -> str:
        """``name  value  (>= bound)  met`` (or ``MISSED``)."""
        value, bound = f"{self.value:.2f}", f"{self.bound:.2f}"
        if value == bound:  # two decimals would hide which side of the bound it is
            value = f"{self.value:.3f}"
        value = _UNITS[self.unit].format(value)
        if self.unit != "x":
            bound = _UNITS[self.unit].format(bound)
        limit = f"({'>=' if self.at_least else '<='} {bound})"
        verdict = "met" if self.met else "MISSED"
        return f"{self.name:<58} {value:>8}  {limit:<12} {verdict}"


def report(figures: Iterable[Figure]) -> int:
    """Print each figure's line as it comes; 0 when every bound is met, else 1."""
    status = 0
    for figure in figures:
        print(figure.line(), flush=True)
        if not figure.met:
            status = 1
    return status


def interleaved_times(
    calls: Mapping[str, Callable[[], object]], count: int, warmup: int = 200
) -> dict[str, list[float]]:
    """Seconds each of ``count`` calls of each side took, sent one at a time.

    The order alternates forwards and backwards (A B B A A B ...), so each
    side is as often first as last and drift hits both alike. Each call is
    warmed up ``warmup`` times first.
    """
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    orders = (names, names[::-1])
    clock = time.perf_counter
    for index in range(count):
        for name in orders[index % 2]:
            call = calls[name]
            start = clock()
            call()
            times[name].append(clock() - start)
    return times


def interleaved_medians(
    calls: Mapping[str, Callable[[], object]], count: int, warmup: int = 200
) -> dict[str, float]:
    """Median seconds of each call, over ``count`` interleaved calls each (see above)."""
    times = interleaved_times(calls, count, warmup)
    return {name: statistics.median(values) for name, values in times.items()}
