"""The contract suite's target: a local NVCF by default, or a real NVCF to compare.

By default one ``nvcf-helpers local`` per session runs ``echo/server.py``. With
``NVCF_CONTRACT_BASE_URL``, ``NVCF_CONTRACT_API_KEY`` and
``NVCF_CONTRACT_FUNCTION_ID`` set, the same tests call that NVCF instead, where
``echo/`` is deployed (see docs/guides/contract-suite.md). The caller's side is
plain ``http.client``: nothing here depends on the local NVCF's internals.

Markers: ``local_only(reason)`` skips a test against a real NVCF;
``local_differs(reason)`` expects a test to fail against the local NVCF (a
difference from NVCF's source, reported; strict, so a fix shows up).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator

import pytest
from contract_support import ECHO_DIR, ECHO_SPEC, LOCAL_KEY, LOCAL_QUEUE_SIZE, Target


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only(reason): checkable only on a local NVCF")
    config.addinivalue_line(
        "markers", "local_differs(reason): the local NVCF is known to differ from NVCF's source"
    )


def _remote() -> Target | None:
    base_url = os.environ.get("NVCF_CONTRACT_BASE_URL")
    if not base_url:
        return None
    function_id = os.environ.get("NVCF_CONTRACT_FUNCTION_ID")
    if not function_id:
        raise pytest.UsageError("NVCF_CONTRACT_BASE_URL needs NVCF_CONTRACT_FUNCTION_ID too")
    return Target(
        base_url=base_url.rstrip("/"),
        api_key=os.environ.get("NVCF_CONTRACT_API_KEY"),
        function_id=function_id,
        version_id=os.environ.get("NVCF_CONTRACT_VERSION_ID", ""),
        function_name=os.environ.get("NVCF_CONTRACT_FUNCTION_NAME", ECHO_SPEC["name"]),
        inference_url=os.environ.get("NVCF_CONTRACT_INFERENCE_URL", ECHO_SPEC["inferenceUrl"]),
        local=False,
    )


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The NVCF under test, with the echo function deployed."""
    remote = _remote()
    if remote is not None:
        if not remote.version_id:
            echo = remote.invoke({}, timeout=120)
            remote.version_id = echo.seen("NVCF-FUNCTION-VERSION-ID")[0]
        yield remote
        return
    from nvcf_helpers.local import LocalNvcf
    from nvcf_helpers.testing import free_port

    port = free_port()
    spec = {
        **ECHO_SPEC,
        "inferencePort": port,
        "health": {**ECHO_SPEC["health"], "port": port},
    }
    log = tmp_path_factory.mktemp("contract") / "local.log"
    command = [sys.executable, str(ECHO_DIR / "server.py"), str(port), "127.0.0.1"]
    extra = ["--queue-size", str(LOCAL_QUEUE_SIZE)]
    with LocalNvcf(spec, command, api_key=LOCAL_KEY, output=log, extra_args=extra) as nvcf:
        yield Target(
            base_url=nvcf.base_url,
            api_key=LOCAL_KEY,
            function_id=nvcf.function_id,
            version_id=nvcf.version_id,
            function_name=ECHO_SPEC["name"],
            inference_url=ECHO_SPEC["inferenceUrl"],
            local=True,
            extras={"log": log},
        )


@pytest.fixture(autouse=True)
def _target_markers(request: pytest.FixtureRequest) -> None:
    local_only = request.node.get_closest_marker("local_only")
    differs = request.node.get_closest_marker("local_differs")
    if local_only is None and differs is None:
        return
    target: Target = request.getfixturevalue("target")
    if local_only is not None and not target.local:
        pytest.skip(f"local only: {local_only.args[0]}")
    if differs is not None and target.local:
        request.applymarker(pytest.mark.xfail(strict=True, reason=differs.args[0]))


@pytest.fixture
def token() -> str:
    """A fresh token for the echo container's counters."""
    return uuid.uuid4().hex
