"""``check`` on gRPC functions: NVCF's exact ``/grpc`` marker, and a gRPC health check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nvcf_helpers.check.function_spec import check_function_spec


def _definition(tmp_path: Path, url: str, protocol: str) -> Path:
    path = tmp_path / "function.json"
    body = {
        "name": "grpc-function",
        "inferenceUrl": url,
        "inferencePort": 8001,
        "health": {
            "protocol": protocol,
            "uri": "/v2/health/ready",
            "port": 8001,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "containerImage": "nvcr.io/org/grpc-function:1",
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("url", ["/gRPC", "/GRPC", "/Grpc"])
def test_a_marker_in_another_case_is_not_grpc_for_nvcf(tmp_path: Path, url: str) -> None:
    _, findings = check_function_spec(_definition(tmp_path, url, "gRPC"))
    assert [str(finding) for finding in findings] == [
        f"{tmp_path / 'function.json'}:3: inferenceUrl is {url!r}: NVCF recognises a gRPC "
        "function only by '/grpc' in lower case, and would send this one HTTP requests; "
        "write inferenceUrl '/grpc'"
    ]


def test_a_grpc_function_with_an_http_health_check(tmp_path: Path) -> None:
    _, findings = check_function_spec(_definition(tmp_path, "/grpc", "HTTP"))
    assert len(findings) == 1
    assert findings[0].line == 6
    assert "a gRPC function (inferenceUrl '/grpc') with an HTTP health check" in str(findings[0])
    assert "set health.protocol to 'gRPC'" in str(findings[0])


def test_a_well_formed_grpc_function_passes(tmp_path: Path) -> None:
    spec, findings = check_function_spec(_definition(tmp_path, "/grpc", "gRPC"))
    assert findings == []
    assert spec is not None
