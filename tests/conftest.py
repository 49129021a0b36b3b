"""Shared test configuration.

Fixtures live next to the tests that use them (per module or per directory);
this file only holds what every test needs.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_pytriton_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep PyTriton's workspaces out of the real home directory during the suite."""
    os.environ.setdefault("PYTRITON_HOME", str(tmp_path_factory.mktemp("pytriton-home")))
