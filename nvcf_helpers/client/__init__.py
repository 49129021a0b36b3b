"""NVCF's API from Python and the command line: invocation, assets, functions.

:class:`NvcfClient` speaks to NVCF itself and to ``nvcf-helpers local`` alike;
:mod:`~nvcf_helpers.client.arguments` gives scripts the usual options.
"""

from __future__ import annotations

from nvcf_helpers.client import api as _api
from nvcf_helpers.client.api import *  # noqa: F403 - the client's public names

__all__ = _api.__all__
