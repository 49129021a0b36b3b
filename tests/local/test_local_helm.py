"""A Helm function's service, run by the local NVCF as NVCF treats one (facts §8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_support import Raw, contract_command, headers_seen, server_spec

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    port = free_port()
    spec = server_spec("helm-service", port)
    del spec["containerImage"]
    spec["helmChart"] = "https://helm.ngc.nvidia.com/org/team/charts/helm-service-1.0.tgz"
    spec["helmChartServiceName"] = "helm-service"
    log = tmp_path_factory.mktemp("helm") / "output.log"
    with LocalNvcf(spec, contract_command(port), output=log) as nvcf:
        yield nvcf


def test_the_service_gets_no_asset_directory(helm: LocalNvcf) -> None:
    reply = Raw(helm, None).invoke({"n": 1})
    assert reply.status == 200
    seen = headers_seen(reply.json())
    assert names.ASSET_DIR.lower() not in seen
    assert names.LARGE_OUTPUT_DIR.lower() in seen
    assert names.LOCAL_WARNING not in reply.headers


def test_files_in_the_output_directory_are_shipped_with_a_warning(
    helm: LocalNvcf, tmp_path: Path
) -> None:
    """NVCF's worker does not tell Helm functions apart; its docs say they get no large outputs."""
    reply = Raw(helm, None).invoke({"large": {"name": "result.bin", "bytes": 100}})
    assert reply.status == 302
    assert "Helm functions do not support them" in reply.headers[names.LOCAL_WARNING]
