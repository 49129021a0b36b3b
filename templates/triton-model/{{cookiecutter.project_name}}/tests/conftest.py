"""Serve (a copy of) model_repository once for the whole test session."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # for client.py


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """tritonserver (from the nvidia-pytriton wheel) serving this project's models.

    The copy it serves logs at DEBUG (log_level in config.pbtxt), so that
    every request gets a log line the tests can look for.
    """
    pytest.importorskip("tritonclient.http", reason="pip install 'nvcf-helpers[triton]'")
    tritonserver = pytest.importorskip(
        "nvcf_helpers.triton", reason="pip install 'nvcf-helpers[pytriton]'"
    )
    repository = tmp_path_factory.mktemp("served") / "model_repository"
    shutil.copytree(PROJECT / "model_repository", repository)
    for config in repository.glob("*/config.pbtxt"):
        text = config.read_text().replace('string_value: "INFO"', 'string_value: "DEBUG"')
        config.write_text(text)
    with tritonserver.TritonServer(repository) as running:
        running.wait_ready(timeout=120)
        yield running
