"""Fixtures for the template tests (helpers are in template_support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hadolint_available() -> bool:
    """Whether hadolint is installed (it is, with the check extra)."""
    from nvcf_helpers.check.dockerfile import HadolintNotFoundError, find_hadolint

    try:
        find_hadolint()
    except HadolintNotFoundError:
        return False
    return True
