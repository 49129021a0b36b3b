"""Fixtures for the examples' tests; the machinery is in ``example_support``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory shared by one test module."""
    return tmp_path_factory.mktemp("example")
