"""Fixtures for the local NVCF tests: one gateway in front of the contract server, per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_support import API_KEY, Raw, contract_nvcf

from nvcf_helpers.client import NvcfClient
from nvcf_helpers.local import LocalNvcf


@pytest.fixture(scope="session")
def nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """``nvcf-helpers local`` in front of the contract server, with an API key and 4 slots."""
    with contract_nvcf(tmp_path_factory.mktemp("nvcf-local")) as local:
        yield local


@pytest.fixture(scope="session")
def raw(nvcf: LocalNvcf) -> Raw:
    """Raw HTTP access to the session's local NVCF, with its API key."""
    return Raw(nvcf, API_KEY)


@pytest.fixture
def client(nvcf: LocalNvcf) -> NvcfClient:
    """An :class:`NvcfClient` for the session's local NVCF."""
    return nvcf.client()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file the contract server waits for; created at teardown so nothing stays blocked."""
    path = tmp_path / "gate"
    yield path
    path.touch()
