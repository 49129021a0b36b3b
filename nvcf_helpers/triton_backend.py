"""The NVCF contract inside a Triton Python-backend ``model.py``.

This module runs inside Triton's Python backend stub, on stock Triton images
where nothing but the ``nvcf_helpers`` core travels with the model. It uses
the standard library, numpy, and ``triton_python_backend_utils`` (imported
lazily, when a response is built).

- :func:`context_from_request`: the :class:`~nvcf_helpers.context.RequestContext`
  of a request, from the ``NVCF-*`` headers Triton forwards into
  ``request.parameters()`` (start tritonserver with
  ``--http-header-forward-pattern NVCF-.*``).
- :func:`input_array` and :func:`scalar_input`: read inputs with clear
  :class:`~nvcf_helpers.errors.InputError` messages; scalars are typed,
  checked for shape and data type, and may have defaults.
- :func:`error_response`: an exception as an ``InferenceResponse`` error:
  ``INVALID_ARG`` (HTTP 400) with the message for the caller's mistakes
  (:class:`~nvcf_helpers.errors.InvalidInputError`), ``INTERNAL`` (HTTP 500)
  otherwise, never a traceback (that one is logged on the server).
- :func:`execute_requests`: runs a per-request handler over
  ``execute(requests)``, each call inside :func:`~nvcf_helpers.log.log_request`
  so log lines carry the request id, with exceptions converted.

A complete ``model.py`` (inputs ``INPUT0`` FP32 ``[-1]`` and an optional
``SCALE`` FP32 ``[1]``; output ``OUTPUT0`` FP32 ``[-1]``)::

    import logging

    from nvcf_helpers import configure_logging
    from nvcf_helpers.triton_backend import execute_requests, input_array, scalar_input

    log = logging.getLogger("my_model")


    class TritonPythonModel:
        def initialize(self, args):
            configure_logging()  # NVCF's format on stdout, which NVCF collects

        def execute(self, requests):
            return execute_requests(requests, self.handle)

        def handle(self, request, ctx):
            values = input_array(request, "INPUT0")
            scale = scalar_input(request, "SCALE", float, default=1.0)
            log.info("scaling %d values by %g", values.size, scale)  # [reqid=...]
            return {"OUTPUT0": (values * scale).astype("float32")}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import InputError, InvalidInputError
from nvcf_helpers.log import log_request

__all__ = [
    "context_from_request",
    "error_response",
    "execute_requests",
    "input_array",
    "scalar_input",
    "scalar_inputs",
]

_LOG = logging.getLogger(__name__)

_T = TypeVar("_T", int, float, bool, str, bytes)


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Any = _Missing()

# numpy dtype name -> Triton data type name, for messages a client understands.
_TRITON_NAMES = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "object": "BYTES",
}

# Python type asked for -> (numpy dtype kinds accepted, what one value is called,
# the data types to send), for the messages a caller reads.
_ACCEPTED_KINDS: dict[type, tuple[str, str, str]] = {
    bool: ("b", "boolean", "BOOL"),
    int: ("iu", "integer", "INT8 to INT64 or UINT8 to UINT64"),
    float: ("fiu", "number", "FP16, FP32, FP64 or an integer type"),
    str: ("OSU", "text value", "BYTES holding UTF-8 text"),
    bytes: ("OSU", "BYTES value", "BYTES"),
}


def _triton_name(dtype: Any) -> str:
    name = str(getattr(dtype, "name", dtype))
    if name.startswith("bytes") or name.startswith("str"):
        return "BYTES"
    return _TRITON_NAMES.get(name, name)


def context_from_request(request: Any) -> RequestContext:
    """The NVCF request context of a Python-backend request.

    Args:
        request: a ``pb_utils.InferenceRequest``; its ``parameters()`` JSON
            holds the forwarded ``NVCF-*`` headers.

    Raises:
        HeaderError: a header holds a malformed value (a client error).
    """
    return RequestContext.from_parameters(request.parameters())


def _find_input(request: Any, name: str) -> Any:
    for tensor in request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def input_array(request: Any, name: str) -> Any:
    """An input tensor of the request as a numpy array.

    Raises:
        InputError: the request has no input called ``name``.
    """
    tensor = _find_input(request, name)
    if tensor is None:
        raise InputError(f"input {name} is missing: send it with the request")
    return tensor.as_numpy()


@overload
def scalar_input(request: Any, name: str, kind: type[_T]) -> _T: ...


@overload
def scalar_input(request: Any, name: str, kind: type[_T], default: _T) -> _T: ...


@overload
def scalar_input(request: Any, name: str, kind: type[_T], default: None) -> _T | None: ...


def scalar_input(request: Any, name: str, kind: type[_T], default: Any = _REQUIRED) -> Any:
    """Read a one-value input as a Python scalar, or return ``default`` when it is absent.

    The value may arrive with shape ``[]``, ``[1]`` or ``[1, 1]`` (a batch of
    one); anything holding another number of values is refused.

    Args:
        request: a ``pb_utils.InferenceRequest``.
        name: the input's name.
        kind: ``int``, ``float``, ``bool``, ``str`` (UTF-8 decoded BYTES) or
            ``bytes``. ``float`` also accepts integer inputs.
        default: returned when the request lacks the input (declare the input
            ``optional: true`` in ``config.pbtxt``); without one the input is
            required.

    Raises:
        InputError: the input is missing and has no default, holds other
            than one value, has a data type that does not fit ``kind``, or is
            text that is not UTF-8. The message names the input and what is
            expected.
    """
    if kind not in _ACCEPTED_KINDS:
        raise TypeError(f"scalar_input reads int, float, bool, str or bytes, not {kind!r}")
    kinds, noun, types = _ACCEPTED_KINDS[kind]
    tensor = _find_input(request, name)
    if tensor is None:
        if default is _REQUIRED:
            raise InputError(f"input {name} is missing: send one {noun} ({types})")
        return default
    array = tensor.as_numpy()
    if array.size != 1:
        raise InputError(
            f"input {name} has shape {list(array.shape)}: expected one {noun} (shape [1])"
        )
    if array.dtype.kind not in kinds:
        raise InputError(
            f"input {name} has data type {_triton_name(array.dtype)}: expected {types}"
        )
    value = array.reshape(-1)[0]
    if kind is str or kind is bytes:
        if isinstance(value, str):
            return value if kind is str else value.encode("utf-8")
        raw = bytes(value)
        if kind is bytes:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"input {name} is not valid UTF-8 text: send the text UTF-8 encoded"
            ) from None
    return kind(value.item())


def scalar_inputs(request: Any, spec: Mapping[str, type | tuple[type, Any]]) -> dict[str, Any]:
    """Read several scalar inputs at once.

    Args:
        request: a ``pb_utils.InferenceRequest``.
        spec: input name -> ``kind`` (required) or ``(kind, default)``,
            e.g. ``{"STEPS": int, "TEMPERATURE": (float, 1.0)}``.

    Returns:
        input name -> value, in the order of ``spec``.

    Raises:
        InputError: as :func:`scalar_input`, for the first bad input.
    """
    values: dict[str, Any] = {}
    for name, entry in spec.items():
        if isinstance(entry, tuple):
            kind, default = entry
            values[name] = scalar_input(request, name, kind, default)
        else:
            values[name] = scalar_input(request, name, entry)
    return values


def _error_code_and_message(exc: BaseException) -> tuple[str, str]:
    """``("INVALID_ARG" | "INTERNAL", message)`` for an exception."""
    if isinstance(exc, InvalidInputError):
        return "INVALID_ARG", str(exc)
    detail = str(exc)
    name = type(exc).__name__
    return "INTERNAL", f"internal error: {name}: {detail}" if detail else f"internal error: {name}"


def error_response(exc: BaseException) -> Any:
    """An ``InferenceResponse`` that answers a request with ``exc`` as a Triton error.

    :class:`~nvcf_helpers.errors.InvalidInputError` (the caller's mistake)
    becomes ``TritonError.INVALID_ARG``, which Triton's HTTP endpoint answers
    with 400 and ``{"error": message}``. Anything else becomes ``INTERNAL``
    (HTTP 500) naming the exception; its traceback is logged here, on the
    server, and never sent to the caller.
    """
    pb_utils = _pb()
    code_name, message = _error_code_and_message(exc)
    if code_name == "INTERNAL":
        _LOG.error("request failed: %s", message, exc_info=exc)
    code = getattr(pb_utils.TritonError, code_name)
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


_pb_utils: Any = None


def _pb() -> Any:
    """``triton_python_backend_utils``, imported once, on first use (it exists only in the stub)."""
    global _pb_utils  # noqa: PLW0603 - a lazily filled module cache
    if _pb_utils is None:
        import triton_python_backend_utils

        _pb_utils = triton_python_backend_utils
    return _pb_utils


def _as_response(result: Any) -> Any:
    pb_utils = _pb()
    # dict first: the common case, and cheaper than the Mapping ABC check.
    if isinstance(result, dict) or (
        not isinstance(result, pb_utils.InferenceResponse) and isinstance(result, Mapping)
    ):
        tensors = [pb_utils.Tensor(name, array) for name, array in result.items()]
    elif isinstance(result, pb_utils.InferenceResponse):
        return result
    else:
        tensors = list(cast(Sequence[Any], result))
    return pb_utils.InferenceResponse(output_tensors=tensors)


def execute_requests(
    requests: Sequence[Any], handle: Callable[[Any, RequestContext], Any]
) -> list[Any]:
    """Answer each request with ``handle(request, ctx)``; the body of ``execute``.

    For each request: parse its context (a malformed ``NVCF-*`` header is
    answered with 400), bind its request id for logging, call ``handle``,
    and turn what it returns into a response. An exception answers that
    request alone, as :func:`error_response` describes; the other requests
    of the batch are not affected.

    Args:
        requests: what Triton passed to ``execute``.
        handle: returns a mapping of output name -> numpy array, a sequence
            of ``pb_utils.Tensor``, or a ready ``pb_utils.InferenceResponse``.

    Returns:
        One ``InferenceResponse`` per request, in order.
    """
    responses: list[Any] = []
    for request in requests:
        try:
            ctx = context_from_request(request)
        except InvalidInputError as exc:
            responses.append(error_response(exc))
            continue
        with log_request(ctx):
            try:
                responses.append(_as_response(handle(request, ctx)))
            except Exception as exc:
                responses.append(error_response(exc))
    return responses
