"""Tests for nvcf_helpers.triton_backend.

The Python backend's ``pb_utils`` exists only inside Triton's stub process, so
the unit tests read inputs from minimal stand-ins for its request objects
(``inputs()``, ``name()``, ``as_numpy()``, ``parameters()``); the integration
tests run the hand-written model in ``tests/fixtures/triton_repository``
under the real tritonserver and call it with tritonclient.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvcf_helpers.errors import HeaderError, InputError, InvalidInputError
from nvcf_helpers.triton.server import TritonServer
from nvcf_helpers.triton_backend import (
    _error_code_and_message,
    context_from_request,
    input_array,
    scalar_input,
    scalar_inputs,
)

REPOSITORY = Path(__file__).parent / "fixtures" / "triton_repository"


class _Tensor:
    def __init__(self, name: str, array: Any) -> None:
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> Any:
        return self._array


class _Request:
    """The slice of pb_utils.InferenceRequest that the module reads."""

    def __init__(self, parameters: str = "{}", **inputs: Any) -> None:
        self._parameters = parameters
        self._inputs = [_Tensor(name, array) for name, array in inputs.items()]

    def inputs(self) -> list[_Tensor]:
        return self._inputs

    def parameters(self) -> str:
        return self._parameters


class TestScalarInput:
    """Reading one-value inputs as typed Python scalars."""

    @pytest.mark.parametrize(
        ("array", "kind", "expected"),
        [
            (np.array([3], dtype=np.int32), int, 3),
            (np.array([[7]], dtype=np.uint8), int, 7),
            (np.array(2.5, dtype=np.float32), float, 2.5),
            (np.array([4], dtype=np.int64), float, 4.0),
            (np.array([True]), bool, True),
            (np.array([b"caf\xc3\xa9"], dtype=np.object_), str, "café"),
            (np.array([b"\x00\xff"], dtype=np.object_), bytes, b"\x00\xff"),
        ],
    )
    def test_reads_typed_value(self, array: Any, kind: type, expected: object) -> None:
        """Shapes [], [1] and [1, 1] give one value of the asked type."""
        value = scalar_input(_Request(X=array), "X", kind)
        assert value == expected
        assert type(value) is kind

    def test_default_when_absent(self) -> None:
        """An absent input gives the default, None included."""
        assert scalar_input(_Request(), "X", float, default=1.5) == 1.5
        assert scalar_input(_Request(), "X", int, default=None) is None

    def test_missing_without_default(self) -> None:
        """An absent required input is an InputError naming it and the type to send."""
        with pytest.raises(InputError, match=r"^input STEPS is missing: send one integer \(INT8"):
            scalar_input(_Request(), "STEPS", int)

    def test_wrong_shape(self) -> None:
        """More than one value is refused, naming the shape received."""
        request = _Request(X=np.array([1.0, 2.0], dtype=np.float32))
        with pytest.raises(InputError, match=r"^input X has shape \[2\]: expected one number"):
            scalar_input(request, "X", float, default=0.0)

    def test_empty_is_wrong_shape(self) -> None:
        """Zero values are refused too (NVIDIA's helper indexed [0] and crashed)."""
        request = _Request(X=np.zeros((0,), dtype=np.float32))
        with pytest.raises(InputError, match=r"has shape \[0\]"):
            scalar_input(request, "X", float)

    @pytest.mark.parametrize(
        ("array", "kind", "message"),
        [
            (np.array([1.5], dtype=np.float32), int, r"data type FP32: expected INT8 to INT64"),
            (np.array([True]), int, r"data type BOOL: expected INT8"),
            (np.array([1], dtype=np.int32), bool, r"data type INT32: expected BOOL"),
            (np.array([b"1"], dtype=np.object_), float, r"data type BYTES: expected FP16"),
            (np.array([1], dtype=np.int32), str, r"data type INT32: expected BYTES"),
        ],
    )
    def test_wrong_data_type(self, array: Any, kind: type, message: str) -> None:
        """A data type that does not fit the asked type is refused, naming both."""
        with pytest.raises(InputError, match=message):
            scalar_input(_Request(X=array), "X", kind)

    def test_invalid_utf8(self) -> None:
        """Text that is not UTF-8 is refused with what to send."""
        request = _Request(X=np.array([b"\xff\xfe"], dtype=np.object_))
        with pytest.raises(InputError, match=r"^input X is not valid UTF-8 text"):
            scalar_input(request, "X", str)

    def test_unsupported_kind_is_a_programming_error(self) -> None:
        """Asking for a type it cannot produce is a TypeError, not a client error."""
        with pytest.raises(TypeError, match=r"reads int, float, bool, str or bytes"):
            scalar_input(_Request(), "X", list)  # type: ignore[type-var]

    def test_input_errors_are_client_errors(self) -> None:
        """InputError is an InvalidInputError, so adapters answer it with 400."""
        assert issubclass(InputError, InvalidInputError)


class TestScalarInputs:
    """Reading several scalars with one spec."""

    def test_spec_with_defaults(self) -> None:
        """Required and defaulted inputs come back in spec order."""
        request = _Request(STEPS=np.array([5], dtype=np.int64))
        values = scalar_inputs(request, {"STEPS": int, "TEMPERATURE": (float, 0.7)})
        assert values == {"STEPS": 5, "TEMPERATURE": 0.7}
        assert list(values) == ["STEPS", "TEMPERATURE"]

    def test_first_bad_input_reported(self) -> None:
        """A missing required input in the spec raises for that input."""
        with pytest.raises(InputError, match=r"^input STEPS is missing"):
            scalar_inputs(_Request(), {"TEMPERATURE": (float, 0.7), "STEPS": int})


class TestInputArrayAndContext:
    """Whole tensors and the request context."""

    def test_input_array(self) -> None:
        """The tensor comes back as the numpy array Triton gave."""
        array = np.arange(3, dtype=np.float32)
        assert input_array(_Request(INPUT0=array), "INPUT0") is array

    def test_input_array_missing(self) -> None:
        """A missing tensor is an InputError naming it."""
        with pytest.raises(InputError, match=r"^input INPUT0 is missing"):
            input_array(_Request(), "INPUT0")

    def test_context_from_parameters_json(self) -> None:
        """A repeated key (body parameter, then forwarded header) keeps the header's value."""
        parameters = '{"NVCF-REQID": "from-body", "NVCF-REQID": "hdr"}'
        ctx = context_from_request(_Request(parameters))
        assert ctx.request_id == "hdr"

    def test_malformed_header_is_client_error(self) -> None:
        """A malformed NVCF header raises HeaderError, an InvalidInputError."""
        with pytest.raises(HeaderError, match=r"NVCF-MAX-RESPONSE-SIZE-BYTES is 'x'"):
            context_from_request(_Request('{"NVCF-MAX-RESPONSE-SIZE-BYTES": "x"}'))


class TestErrorClassification:
    """Which Triton error code and message an exception becomes."""

    def test_invalid_input_is_invalid_arg(self) -> None:
        """A caller's mistake keeps its message and becomes INVALID_ARG."""
        code, message = _error_code_and_message(InputError("input X is missing"))
        assert (code, message) == ("INVALID_ARG", "input X is missing")

    def test_other_errors_are_internal_without_traceback(self) -> None:
        """Anything else is INTERNAL and names the exception, one line."""
        code, message = _error_code_and_message(KeyError("weights"))
        assert code == "INTERNAL"
        assert message == "internal error: KeyError: 'weights'"
        assert _error_code_and_message(RuntimeError())[1] == "internal error: RuntimeError"


# --- the fixture model under real tritonserver -------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TritonServer, io.StringIO]]:
    """The fixture repository on a real tritonserver; its output captured."""
    output = io.StringIO()
    with TritonServer(REPOSITORY, stdout=output) as server:
        server.wait_ready(timeout=120)
        yield server, output


@pytest.fixture(scope="module")
def client(served: tuple[TritonServer, io.StringIO]) -> Iterator[Any]:
    """A tritonclient HTTP client of the served repository."""
    import tritonclient.http as httpclient

    server, _ = served
    connection = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield connection
    connection.close()


def _call(
    client: Any,
    values: list[float],
    *,
    scale: list[float] | None = None,
    mode: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    import tritonclient.http as httpclient

    inputs = []
    for name, array, datatype in (
        ("INPUT0", np.array(values, dtype=np.float32), "FP32"),
        ("SCALE", None if scale is None else np.array(scale, dtype=np.float32), "FP32"),
        ("MODE", None if mode is None else np.array([mode.encode()], dtype=np.object_), "BYTES"),
    ):
        if array is not None:
            tensor = httpclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
    result = client.infer("nvcf_echo", inputs, headers=headers or {})
    return result.as_numpy("OUTPUT0"), json.loads(result.as_numpy("CONTEXT")[0])


def _wait_for_line(output: io.StringIO, pattern: str, timeout: float = 10.0) -> str:
    """The server log once it holds a line matching ``pattern``.

    The stub writes to the server's output, which a thread copies to
    ``output``: a line can arrive just after the response does.
    """
    deadline = time.monotonic() + timeout
    while True:
        log = output.getvalue()
        if re.search(pattern, log, re.MULTILINE) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


@pytest.mark.integration
class TestUnderTritonServer:
    """The fixture model.py, using this module, under the real tritonserver."""

    def test_context_fields_from_headers(self, client: Any) -> None:
        """The model sees the NVCF headers tritonclient sent, parsed into typed fields."""
        request_id = str(uuid.uuid4())
        headers = {
            "NVCF-REQID": request_id,
            "NVCF-FUNCTION-ID": "fn-1",
            "NVCF-ASSET-DIR": "/var/inf/inputAssets/x",
            "NVCF-MAX-RESPONSE-SIZE-BYTES": "1234",
            "NVCF-FUNCTION-ASSET-IDS": "a1, a2",
        }
        output, seen = _call(client, [1.0, 2.0], headers=headers)
        assert output.tolist() == [1.0, 2.0]
        assert seen == {
            "request_id": request_id,
            "function_id": "fn-1",
            "asset_dir": "/var/inf/inputAssets/x",
            "max_response_bytes": 1234,
            "asset_ids": ["a1", "a2"],
        }

    def test_scalar_default_and_value(self, client: Any) -> None:
        """SCALE defaults to 1 when absent and is applied when sent."""
        assert _call(client, [2.0])[0].tolist() == [2.0]
        assert _call(client, [2.0], scale=[3.0])[0].tolist() == [6.0]

    def test_without_headers_context_is_empty(self, client: Any) -> None:
        """No NVCF headers: no request id, NVCF's default response size."""
        _, seen = _call(client, [1.0])
        assert seen["request_id"] is None
        assert seen["max_response_bytes"] == 5_000_000

    def test_bad_scalar_is_400_without_traceback(self, client: Any) -> None:
        """Two SCALE values answer HTTP 400 with the message alone."""
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException) as caught:
            _call(client, [1.0], scale=[1.0, 2.0])
        assert caught.value.status() == "400"
        assert (
            caught.value.message() == "input SCALE has shape [2]: expected one number (shape [1])"
        )

    def test_missing_required_scalar_is_400(self, client: Any) -> None:
        """A required scalar that was not sent answers 400 naming it."""
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match=r"input SCALE is missing") as caught:
            _call(client, [1.0], mode="require")
        assert caught.value.status() == "400"

    def test_malformed_header_is_400(self, client: Any) -> None:
        """A malformed NVCF header answers 400 naming the header."""
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException) as caught:
            _call(client, [1.0], headers={"NVCF-MAX-RESPONSE-SIZE-BYTES": "lots"})
        assert caught.value.status() == "400"
        assert "header NVCF-MAX-RESPONSE-SIZE-BYTES is 'lots'" in caught.value.message()

    def test_crash_is_500_without_traceback(
        self, client: Any, served: tuple[TritonServer, io.StringIO]
    ) -> None:
        """An unexpected error answers 500 naming it; the traceback stays in the server log."""
        from tritonclient.utils import InferenceServerException

        request_id = str(uuid.uuid4())
        with pytest.raises(InferenceServerException) as caught:
            _call(client, [1.0], mode="crash", headers={"NVCF-REQID": request_id})
        assert caught.value.status() == "500"
        assert (
            caught.value.message() == "internal error: RuntimeError: the model crashed on purpose"
        )
        log = _wait_for_line(served[1], f"reqid={request_id}.*\\n(.*\\n)*RuntimeError: the model")
        assert f"[reqid={request_id}] request failed: internal error: RuntimeError" in log
        assert "Traceback (most recent call last)" in log

    def test_request_id_on_nvcf_log_line(
        self, client: Any, served: tuple[TritonServer, io.StringIO]
    ) -> None:
        """The model's log line is in NVCF's format and carries the request id."""
        request_id = str(uuid.uuid4())
        _call(client, [1.0, 2.0, 3.0], headers={"NVCF-REQID": request_id})
        pattern = (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] \[INFERENCE\] "
            rf"\[reqid={re.escape(request_id)}\] echo of 3 values"
        )
        assert re.search(pattern, _wait_for_line(served[1], pattern), re.MULTILINE)
