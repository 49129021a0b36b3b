"""Tying a child process's life to its parent's, with Linux's parent-death signal.

A local NVCF killed outright (SIGKILL, a crashed test run) cannot stop its
container; with ``PR_SET_PDEATHSIG`` the kernel sends the child SIGTERM when
the thread that started it ends. The ``prctl`` function is looked up before
the fork, so the child only makes one C call between fork and exec (nothing
that could take a lock another thread of the parent held).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

__all__ = ["parent_death_signal"]

_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks for ``sig`` when the parent thread ends; ``None`` off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def request() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, int(sig))

    return request
