"""Each generated project's own tests pass when run inside it, as a user runs them.

Those tests start the real server (tritonserver for the Triton templates,
``python run.py`` for PyTriton, which they finally stop with SIGTERM and check
that it exits within 15 s, leaving no PyTriton workspace), call it with the
generated ``client.py`` and NVCF's headers, and run ``nvcf-helpers check``.
With ``protocol=grpc`` they serve the project as a gRPC function behind a
local NVCF and call it with ``tritonclient.grpc`` and NVCF's metadata.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from template_support import CUSTOM_IO, bake_ok

pytestmark = pytest.mark.integration

PROJECTS = [
    ("triton-model", {}, 5),
    ("triton-container", {}, 9),
    # protocol=grpc: the tests call the model with tritonclient.grpc through the
    # local NVCF's gRPC endpoint (and a call without function-id is INVALID_ARGUMENT).
    ("triton-container", {"protocol": "grpc"}, 12),
    ("pytriton-container", {}, 6),
    ("pytriton-container", {"max_batch_size": "0", "long_running": "yes", **CUSTOM_IO}, 8),
    ("pytriton-container", {"protocol": "grpc"}, 8),
]


@pytest.mark.parametrize(("template", "extra", "count"), PROJECTS)
def test_generated_tests_pass(
    cookies: Any, template: str, extra: dict[str, str], count: int
) -> None:
    """The project's pytest run passes every test, skipping none."""
    project = bake_ok(cookies, template, **extra)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(rf"{count} passed in [\d.]+s", summary), summary
