"""nvcf_helpers: the NVIDIA Cloud Functions container contract, in Python.

Importing this package imports only the standard library; the adapters
(``nvcf_helpers.triton_backend``, ``nvcf_helpers.pytriton``), the client and
the command line import what they need when they are used.
"""

from __future__ import annotations

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
from nvcf_helpers.spec import FunctionSpec, HealthCheck, load_spec, parse_spec


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
    "FunctionSpec",
    "HeaderError",
    "HealthCheck",
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
    "load_spec",
    "log_request",
    "open_asset",
    "parse_progress",
    "parse_spec",
    "read_asset",
    "respond_or_spill",
    "spill_outputs",
]
