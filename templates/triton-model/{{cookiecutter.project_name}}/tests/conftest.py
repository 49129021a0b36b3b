"""Serve model_repository once for the whole test session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # for client.py


@pytest.fixture(scope="session")
def server() -> Iterator[object]:
    """tritonserver (from the nvidia-pytriton wheel) serving this project's model repository."""
    pytest.importorskip("tritonclient.http", reason="pip install 'nvcf-helpers[triton]'")
    tritonserver = pytest.importorskip(
        "nvcf_helpers.tritonserver", reason="pip install 'nvcf-helpers[pytriton]'"
    )
    with tritonserver.TritonServer(PROJECT / "model_repository") as running:
        running.wait_ready(timeout=120)
        yield running
