"""The old home of the Triton launcher; it lives in :mod:`nvcf_helpers.triton` now."""

from __future__ import annotations

from nvcf_helpers.triton import server as _server
from nvcf_helpers.triton.server import *  # noqa: F403 - the same names, re-exported

__all__ = _server.__all__
