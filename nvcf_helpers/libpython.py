"""Make a Triton Python backend stub load this interpreter's own libpython."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import MutableMapping

__all__ = ["apply_libpython_fix", "prepend_path_entry"]


def prepend_path_entry(value: str | None, entry: str) -> str:
    """``entry`` first in a colon-separated list, any other copy of it removed."""
    parts = [part for part in (value or "").split(os.pathsep) if part and part != entry]
    return os.pathsep.join([entry, *parts])


def _libdir() -> str | None:
    libdir = sysconfig.get_config_var("LIBDIR")
    return libdir if isinstance(libdir, str) and os.path.isdir(libdir) else None


def apply_libpython_fix(environ: MutableMapping[str, str] | None = None) -> None:
    """Make a Triton started from this process load this interpreter's libpython.

    The Python backend stub links ``libpython3.X.so.1.0``; unless told
    otherwise the dynamic loader picks the system's copy, which may be a
    different patch release than the running interpreter's standard library,
    and model loading then fails (for example ``'_thread.RLock' object has no
    attribute '_recursion_count'``). This puts the interpreter's ``LIBDIR``
    first on ``LD_LIBRARY_PATH``. Calling it again changes nothing.

    Args:
        environ: the environment to change; ``os.environ`` by default (what
            child processes such as PyTriton's ``tritonserver`` inherit).
    """
    target = os.environ if environ is None else environ
    libdir = _libdir()
    if libdir is None:  # a static interpreter: no shared libpython to pick
        return
    current = target.get("LD_LIBRARY_PATH")
    fixed = prepend_path_entry(current, libdir)
    if fixed != current:
        target["LD_LIBRARY_PATH"] = fixed
