"""NVCF's API from Python and the command line: invocation, assets, functions.

:class:`NvcfClient` speaks to NVCF itself and to ``nvcf-helpers local`` alike.
"""

from __future__ import annotations

from nvcf_helpers.client.api import (
    DEFAULT_BASE_URL,
    Asset,
    InvocationResult,
    NvcfApiError,
    NvcfClient,
    NvcfClientError,
    NvcfConnectionError,
    Progress,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "Asset",
    "InvocationResult",
    "NvcfApiError",
    "NvcfClient",
    "NvcfClientError",
    "NvcfConnectionError",
    "Progress",
]
