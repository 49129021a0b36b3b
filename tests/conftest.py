"""Shared test configuration.

Fixtures live next to the tests that use them (per module or per directory);
this file only holds what every test needs.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

_hypothesis_home = tempfile.mkdtemp(prefix="nvcf-hypothesis-")


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps caches in ./.hypothesis even without a database: not in the checkout."""
    set_hypothesis_home_dir(_hypothesis_home)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_hypothesis_home, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _isolated_pytriton_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep PyTriton's workspaces out of the real home directory during the suite."""
    os.environ.setdefault("PYTRITON_HOME", str(tmp_path_factory.mktemp("pytriton-home")))
