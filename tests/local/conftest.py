"""Fixtures for the local NVCF tests: one gateway in front of the contract server, per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_support import API_KEY, MAX_RESPONSE_BYTES, Raw, contract_command, contract_spec

from nvcf_helpers.client import NvcfClient
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port


@pytest.fixture(scope="session")
def nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """``nvcf-helpers local`` in front of the contract server, with an API key and 4 slots."""
    port = free_port()
    log = tmp_path_factory.mktemp("nvcf-local") / "output.log"
    local = LocalNvcf(
        contract_spec(port),
        contract_command(port),
        api_key=API_KEY,
        max_concurrency=4,
        max_response_bytes=MAX_RESPONSE_BYTES,
        output=log,
    )
    with local:
        local.log = log  # type: ignore[attr-defined]
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
