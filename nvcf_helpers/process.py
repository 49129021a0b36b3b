"""The servers this toolkit starts: free ports, tied lives, one way to stop them."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

__all__ = ["free_port", "parent_death_signal", "stop_process"]

_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks for ``sig`` when the parent thread ends; ``None`` off Linux.

    A parent killed outright (SIGKILL, a crashed test run) cannot stop its
    children; with ``PR_SET_PDEATHSIG`` the kernel does. ``prctl`` is looked
    up before the fork, so the child makes one C call between fork and exec.
    """
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


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS reports free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 30.0
) -> int:
    """Stop a child by its pid: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Safe to call when the process already exited. Returns its exit status.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
    return process.returncode
