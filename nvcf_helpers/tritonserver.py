"""The old home of the Triton launcher; it lives in :mod:`nvcf_helpers.triton` now."""

from __future__ import annotations

from nvcf_helpers.triton.server import (
    HEADER_FORWARD_PATTERN,
    TritonInstall,
    TritonNotInstalledError,
    TritonServer,
    TritonServerError,
    apply_libpython_fix,
    configs_are_complete,
    find_triton,
    list_models,
    make_backend_directory,
    server_command,
    server_environment,
)

__all__ = [
    "HEADER_FORWARD_PATTERN",
    "TritonInstall",
    "TritonNotInstalledError",
    "TritonServer",
    "TritonServerError",
    "apply_libpython_fix",
    "configs_are_complete",
    "find_triton",
    "list_models",
    "make_backend_directory",
    "server_command",
    "server_environment",
]
