"""Triton on this machine: the ``tritonserver`` command model, the launcher, ``serve``."""

from __future__ import annotations

from nvcf_helpers.triton.command import EXIT_TIMEOUT_SECONDS, TritonCommand
from nvcf_helpers.triton.server import (
    TritonInstall,
    TritonNotInstalledError,
    TritonServer,
    TritonServerError,
    configs_are_complete,
    find_triton,
    list_models,
)

__all__ = [
    "EXIT_TIMEOUT_SECONDS",
    "TritonCommand",
    "TritonInstall",
    "TritonNotInstalledError",
    "TritonServer",
    "TritonServerError",
    "configs_are_complete",
    "find_triton",
    "list_models",
]
