"""nvcf_helpers: the NVIDIA Cloud Functions container contract, in Python.

This is the runtime's public API, what an inference container imports; it
needs only the standard library. The developer's tools (client, local NVCF,
checks, templates, the Triton launcher) live in subpackages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvcf_helpers.assets import asset_path, list_assets, open_asset, read_asset
from nvcf_helpers.context import DEFAULT_MAX_RESPONSE_BYTES, HEADER_NAMES, RequestContext
from nvcf_helpers.errors import (
    AssetError,
    AssetNotFoundError,
    HeaderError,
    InputError,
    InvalidInputError,
    MissingContextError,
    NvcfHelperError,
    OutputError,
    ProgressError,
    SecretsError,
    SpecError,
)
from nvcf_helpers.log import NVCF_LOG_FORMAT, configure_logging, current_request_id, log_request
from nvcf_helpers.outputs import PARTIAL_SUFFIX, large_output, respond_or_spill, spill_outputs
from nvcf_helpers.progress import (
    MAX_PARTIAL_RESPONSE_BYTES,
    PROGRESS_FILE,
    ProgressReporter,
    ProgressUpdate,
    parse_progress,
)
from nvcf_helpers.secrets import Secrets, load_secrets

if TYPE_CHECKING:  # tooling, not runtime: see __getattr__
    from nvcf_helpers.spec import FunctionSpec as FunctionSpec
    from nvcf_helpers.spec import HealthCheck as HealthCheck
    from nvcf_helpers.spec import load_spec as load_spec
    from nvcf_helpers.spec import parse_spec as parse_spec

# Function definitions are developer tooling, never copied into a container;
# their old import path from the package root still works, on demand.
_TOOLING = {
    "FunctionSpec": "nvcf_helpers.spec",
    "HealthCheck": "nvcf_helpers.spec",
    "load_spec": "nvcf_helpers.spec",
    "parse_spec": "nvcf_helpers.spec",
}


def __getattr__(name: str) -> Any:
    module = _TOOLING.get(name)
    if module is None:
        raise AttributeError(f"module 'nvcf_helpers' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nvcf-helpers")
    except PackageNotFoundError:  # a copy vendored into a model directory
        return "0+vendored"


__version__ = _version()

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HEADER_NAMES",
    "MAX_PARTIAL_RESPONSE_BYTES",
    "NVCF_LOG_FORMAT",
    "PARTIAL_SUFFIX",
    "PROGRESS_FILE",
    "AssetError",
    "AssetNotFoundError",
    "HeaderError",
    "InputError",
    "InvalidInputError",
    "MissingContextError",
    "NvcfHelperError",
    "OutputError",
    "ProgressError",
    "ProgressReporter",
    "ProgressUpdate",
    "RequestContext",
    "Secrets",
    "SecretsError",
    "SpecError",
    "__version__",
    "asset_path",
    "configure_logging",
    "current_request_id",
    "large_output",
    "list_assets",
    "load_secrets",
    "log_request",
    "open_asset",
    "parse_progress",
    "read_asset",
    "respond_or_spill",
    "spill_outputs",
]
