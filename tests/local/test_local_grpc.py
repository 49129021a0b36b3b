"""gRPC functions: tritonclient.grpc through the local NVCF to a real tritonserver (facts §7)."""

from __future__ import annotations

import json
import queue
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from nvcf_helpers import names
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[1] / "fixtures" / "triton_repository"
KEY = "grpc-key"


@pytest.fixture(scope="module")
def triton_behind_nvcf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNvcf]:
    """``nvcf-helpers serve`` of the fixture repository as a gRPC function of a local NVCF."""
    grpc_port, http_port = free_port(), free_port()
    spec = {
        "name": "triton-grpc",
        "inferenceUrl": "/grpc",
        "inferencePort": grpc_port,
        "health": {
            "protocol": "gRPC",
            "uri": "/",
            "port": grpc_port,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "containerImage": "nvcr.io/local/triton-grpc:1",
    }
    command = [sys.executable, "-m", "nvcf_helpers", "serve", str(REPOSITORY)]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    log = tmp_path_factory.mktemp("grpc") / "output.log"
    with LocalNvcf(spec, command, api_key=KEY, output=log, startup_timeout=180) as nvcf:
        yield nvcf


def _grpc_port(nvcf: LocalNvcf) -> int:
    assert nvcf.info is not None
    return int(nvcf.info["grpcPort"])


def _infer(nvcf: LocalNvcf, headers: dict[str, str]) -> grpcclient.InferResult:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{_grpc_port(nvcf)}")
    data = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    tensor = grpcclient.InferInput("INPUT0", [3], "FP32")
    tensor.set_data_from_numpy(data)
    try:
        return client.infer("nvcf_echo", [tensor], headers=headers)
    finally:
        client.close()


class TestGrpcFunction:
    def test_tritonclient_call_reaches_tritonserver(self, triton_behind_nvcf: LocalNvcf) -> None:
        """Routed by function-id, relayed as it is: the model answers, and sees no NVCF-* metadata.

        NVCF's worker relays gRPC as a plain proxy and adds no ``NVCF-*``
        metadata (facts §7); the request id the model reports is Triton's own.
        """
        nvcf = triton_behind_nvcf
        result = _infer(
            nvcf,
            {"authorization": f"Bearer {KEY}", names.DIRECT_FUNCTION_ID: nvcf.function_id},
        )
        output = result.as_numpy("OUTPUT0")
        assert output is not None
        assert output.tolist() == [1.0, 2.0, 3.0]
        context = result.as_numpy("CONTEXT")
        assert context is not None
        seen = json.loads(context[0])
        assert not seen.get("function_id")  # no NVCF-FUNCTION-ID reached the model

    def test_with_the_version_id(self, triton_behind_nvcf: LocalNvcf) -> None:
        nvcf = triton_behind_nvcf
        result = _infer(
            nvcf,
            {
                "authorization": f"Bearer {KEY}",
                names.DIRECT_FUNCTION_ID: nvcf.function_id,
                names.DIRECT_FUNCTION_VERSION_ID: nvcf.version_id,
            },
        )
        assert result.as_numpy("OUTPUT0") is not None

    def test_missing_or_wrong_key_is_unauthenticated(self, triton_behind_nvcf: LocalNvcf) -> None:
        nvcf = triton_behind_nvcf
        for headers in (
            {names.DIRECT_FUNCTION_ID: nvcf.function_id},
            {"authorization": "Bearer wrong", names.DIRECT_FUNCTION_ID: nvcf.function_id},
        ):
            with pytest.raises(InferenceServerException) as refused:
                _infer(nvcf, headers)
            assert refused.value.status() == "StatusCode.UNAUTHENTICATED"
            assert "--api-key" in refused.value.message()

    def test_missing_function_id_is_invalid_argument(self, triton_behind_nvcf: LocalNvcf) -> None:
        with pytest.raises(InferenceServerException) as refused:
            _infer(triton_behind_nvcf, {"authorization": f"Bearer {KEY}"})
        assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert f"'{names.DIRECT_FUNCTION_ID}' is missing" in refused.value.message()

    def test_unknown_function_is_not_found(self, triton_behind_nvcf: LocalNvcf) -> None:
        with pytest.raises(InferenceServerException) as refused:
            _infer(
                triton_behind_nvcf,
                {
                    "authorization": f"Bearer {KEY}",
                    names.DIRECT_FUNCTION_ID: "00000000-0000-0000-0000-000000000000",
                },
            )
        assert refused.value.status() == "StatusCode.NOT_FOUND"

    def test_health_is_the_standard_grpc_service(self, triton_behind_nvcf: LocalNvcf) -> None:
        """The function went ACTIVE through grpc.health.v1.Health/Check on Triton's gRPC port."""
        versions = triton_behind_nvcf.client().list_functions()
        assert versions[0]["status"] == "ACTIVE"
        assert versions[0]["health"]["protocol"] == "gRPC"

    def test_a_stream_is_relayed_both_ways(self, triton_behind_nvcf: LocalNvcf) -> None:
        """ModelStreamInfer (a bidirectional stream) through the proxy: every answer comes back."""
        nvcf = triton_behind_nvcf
        received: queue.Queue[object] = queue.Queue()
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{_grpc_port(nvcf)}")
        headers = {"authorization": f"Bearer {KEY}", names.DIRECT_FUNCTION_ID: nvcf.function_id}
        client.start_stream(
            callback=lambda result, error: received.put(error or result), headers=headers
        )
        try:
            for value in (1.0, 2.0, 3.0):
                tensor = grpcclient.InferInput("INPUT0", [1], "FP32")
                tensor.set_data_from_numpy(np.array([value], dtype=np.float32))
                client.async_stream_infer("nvcf_echo", [tensor])
            answers = [received.get(timeout=30) for _ in range(3)]
        finally:
            client.stop_stream()
            client.close()
        values = sorted(answer.as_numpy("OUTPUT0").tolist()[0] for answer in answers)  # type: ignore[attr-defined]
        assert values == [1.0, 2.0, 3.0]
