"""Tests for nvcf_helpers.triton_backend.

The Python backend's ``pb_utils`` exists only inside Triton's stub process, so
the unit tests read inputs from minimal stand-ins for its request objects
(``inputs()``, ``name()``, ``as_numpy()``, ``parameters()``); the integration
tests run the hand-written model in ``tests/fixtures/triton_repository``
under the real tritonserver and call it with tritonclient.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import pickle
import re
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nvcf_helpers import RequestContext, configure_logging, current_request_id, names
from nvcf_helpers import triton_backend as backend
from nvcf_helpers.errors import HeaderError, InputError, InvalidInputError
from nvcf_helpers.triton.server import TritonServer
from nvcf_helpers.triton_backend import (
    _error_code_and_message,
    context_from_request,
    execute_requests,
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
        self.parameter_reads = 0

    def inputs(self) -> list[_Tensor]:
        return self._inputs

    def parameters(self) -> str:
        self.parameter_reads += 1
        return self._parameters


def _params(headers: dict[str, str]) -> str:
    """The ``parameters()`` JSON of a request that carried ``headers``."""
    return json.dumps(headers)


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
        parameters = f'{{"{names.REQUEST_ID}": "from-body", "{names.REQUEST_ID}": "hdr"}}'
        ctx = context_from_request(_Request(parameters))
        assert ctx.request_id == "hdr"

    def test_malformed_header_is_client_error(self) -> None:
        """A malformed NVCF header raises HeaderError, an InvalidInputError."""
        with pytest.raises(HeaderError, match=rf"{names.MAX_RESPONSE_SIZE} is 'x'"):
            context_from_request(_Request(_params({names.MAX_RESPONSE_SIZE: "x"})))


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


class TestLazyContext:
    """The context execute_requests hands over is parsed when a field is first read."""

    def _context(self, parameters: str) -> tuple[RequestContext, _Request]:
        request = _Request(parameters)
        seen: list[RequestContext] = []

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            seen.append(ctx)
            return {}

        execute_requests([request], handle)
        return seen[0], request

    def test_not_parsed_until_read(self, fake_pb_utils: Any) -> None:
        """Building it reads nothing; the first field read parses every header, once."""
        ctx, request = self._context(
            _params({names.REQUEST_ID: "r1", names.MAX_RESPONSE_SIZE: "9"})
        )
        assert request.parameter_reads == 0
        assert isinstance(ctx, RequestContext)
        assert (ctx.request_id, ctx.max_response_bytes, ctx.asset_ids) == ("r1", 9, ())
        assert request.parameter_reads == 1

    def test_behaves_as_a_plain_context(self, fake_pb_utils: Any) -> None:
        """Equality, hashing, repr, copies, pickling and replace match the parsed context."""
        ctx, _ = self._context(_params({names.REQUEST_ID: "r1"}))
        plain = RequestContext(request_id="r1")
        assert ctx == plain
        assert plain == ctx
        assert hash(ctx) == hash(plain)
        assert repr(ctx) == repr(plain)
        assert pickle.loads(pickle.dumps(ctx)) == plain
        assert copy.copy(ctx) == plain
        assert dataclasses.asdict(ctx) == dataclasses.asdict(plain)
        assert dataclasses.replace(ctx, region="r") == RequestContext(request_id="r1", region="r")

    def test_malformed_header_raises_on_read(self, fake_pb_utils: Any) -> None:
        """A malformed header raises HeaderError from the read, and repr says why."""
        ctx, _ = self._context(_params({names.MAX_RESPONSE_SIZE: "lots"}))
        with pytest.raises(HeaderError, match=rf"{names.MAX_RESPONSE_SIZE} is 'lots'"):
            _ = ctx.request_id
        assert f"{names.MAX_RESPONSE_SIZE} is 'lots'" in repr(ctx)

    def test_unknown_attribute(self, fake_pb_utils: Any) -> None:
        """A name that is no field is an AttributeError, and parses nothing."""
        ctx, request = self._context("{}")
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = ctx.nope  # type: ignore[attr-defined]
        assert request.parameter_reads == 0


class _PbTensor:
    def __init__(self, name: str, array: Any) -> None:
        self.name, self.array = name, array


class _PbError:
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message: str, code: str) -> None:
        self.message, self.code = message, code


class _PbResponse:
    def __init__(self, output_tensors: Any = None, error: _PbError | None = None) -> None:
        self.output_tensors, self.error = output_tensors, error


@pytest.fixture
def fake_pb_utils(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in triton_python_backend_utils."""
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = _PbTensor  # type: ignore[attr-defined]
    module.TritonError = _PbError  # type: ignore[attr-defined]
    module.InferenceResponse = _PbResponse  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    monkeypatch.setattr(backend, "_pb_utils", None)
    return module


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """NVCF-format log lines, captured; the root logger restored afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream=stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    """The messages of the NVCF-format lines written (traceback lines left out)."""
    marker = "[INFERENCE] "
    return [line.split(marker, 1)[1] for line in stream.getvalue().splitlines() if marker in line]


class TestExecuteRequests:
    """A request pays for its context and its request id only when it uses them."""

    def test_unused_context_is_never_parsed(self, fake_pb_utils: Any, log_output: Any) -> None:
        """No field read, no log line: parameters() is never called, even if malformed."""
        request = _Request(_params({names.MAX_RESPONSE_SIZE: "lots"}), INPUT0=np.ones(2))
        (response,) = execute_requests(
            [request], lambda r, ctx: {"OUTPUT0": input_array(r, "INPUT0")}
        )
        assert response.error is None
        assert [t.name for t in response.output_tensors] == ["OUTPUT0"]
        assert request.parameter_reads == 0

    def test_log_lines_carry_the_request_id(self, fake_pb_utils: Any, log_output: Any) -> None:
        """Lines logged while a request is handled name it; lines after it do not."""
        log = logging.getLogger("model")

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            log.info("first")
            log.info("second")
            return {}

        requests = [_Request(json.dumps({names.REQUEST_ID.lower(): rid})) for rid in "ab"]
        execute_requests(requests, handle)
        log.info("after")
        assert _lines(log_output) == [
            "[reqid=a] first",
            "[reqid=a] second",
            "[reqid=b] first",
            "[reqid=b] second",
            "after",
        ]
        assert [r.parameter_reads for r in requests] == [1, 1]
        assert current_request_id() is None

    def test_other_threads_lines_do_not_take_the_id(
        self, fake_pb_utils: Any, log_output: Any
    ) -> None:
        """A thread the handler starts logs without the request's id, as log_request binds."""

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            worker = threading.Thread(target=logging.getLogger("model").info, args=("worker",))
            worker.start()
            worker.join()
            logging.getLogger("model").info("handler")
            return {}

        execute_requests([_Request(_params({names.REQUEST_ID: "r4"}))], handle)
        assert _lines(log_output) == ["worker", "[reqid=r4] handler"]

    def test_malformed_header_met_by_a_log_line_still_names_the_request(
        self, fake_pb_utils: Any, log_output: Any
    ) -> None:
        """A log line does not read the context: the request is answered, its line named."""
        request = _Request(_params({names.REQUEST_ID: "r1", names.MAX_RESPONSE_SIZE: "lots"}))

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            logging.getLogger("model").info("working")
            return {}

        (response,) = execute_requests([request], handle)
        assert response.error is None
        assert _lines(log_output) == ["[reqid=r1] working"]

    def test_current_request_id_inside_the_handler(self, fake_pb_utils: Any) -> None:
        """current_request_id() names the running request, and nothing after it."""
        seen: list[str | None] = []

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            seen.append(current_request_id())
            return {}

        execute_requests([_Request(_params({names.REQUEST_ID: "r5"}))], handle)
        assert seen == ["r5"]
        assert current_request_id() is None

    def test_malformed_header_read_is_400(self, fake_pb_utils: Any) -> None:
        """Reading a field of a malformed context answers that request alone with 400."""
        requests = [_Request(_params({names.MAX_RESPONSE_SIZE: "x"})), _Request()]
        responses = execute_requests(requests, lambda r, ctx: {"N": ctx.max_response_bytes})
        assert responses[0].error.code == "INVALID_ARG"
        assert responses[1].error is None
        assert responses[1].output_tensors[0].array == names.DEFAULT_MAX_RESPONSE_BYTES

    def test_crash_is_internal_and_logged_with_the_id(
        self, fake_pb_utils: Any, log_output: Any
    ) -> None:
        """An unexpected error answers INTERNAL; its logged traceback names the request."""

        def handle(request: Any, ctx: RequestContext) -> dict[str, Any]:
            raise RuntimeError("boom")

        (response,) = execute_requests([_Request(_params({names.REQUEST_ID: "r9"}))], handle)
        assert (response.error.code, response.error.message) == (
            "INTERNAL",
            "internal error: RuntimeError: boom",
        )
        assert (
            _lines(log_output)[0] == "[reqid=r9] request failed: internal error: RuntimeError: boom"
        )


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
            names.REQUEST_ID: request_id,
            names.FUNCTION_ID: "fn-1",
            names.ASSET_DIR: "/var/inf/inputAssets/x",
            names.MAX_RESPONSE_SIZE: "1234",
            names.FUNCTION_ASSET_IDS: "a1, a2",
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
        assert seen["max_response_bytes"] == names.DEFAULT_MAX_RESPONSE_BYTES

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
            _call(client, [1.0], headers={names.MAX_RESPONSE_SIZE: "lots"})
        assert caught.value.status() == "400"
        assert f"header {names.MAX_RESPONSE_SIZE} is 'lots'" in caught.value.message()

    def test_crash_is_500_without_traceback(
        self, client: Any, served: tuple[TritonServer, io.StringIO]
    ) -> None:
        """An unexpected error answers 500 naming it; the traceback stays in the server log."""
        from tritonclient.utils import InferenceServerException

        request_id = str(uuid.uuid4())
        with pytest.raises(InferenceServerException) as caught:
            _call(client, [1.0], mode="crash", headers={names.REQUEST_ID: request_id})
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
        _call(client, [1.0, 2.0, 3.0], headers={names.REQUEST_ID: request_id})
        pattern = (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] \[INFERENCE\] "
            rf"\[reqid={re.escape(request_id)}\] echo of 3 values"
        )
        assert re.search(pattern, _wait_for_line(served[1], pattern), re.MULTILINE)
