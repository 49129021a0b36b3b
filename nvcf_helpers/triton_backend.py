"""The NVCF contract inside a Triton Python-backend ``model.py``; the docs' guide shows one.

Runs in Triton's Python backend stub on stock images: it needs the standard library, numpy,
and ``triton_python_backend_utils`` (imported lazily, when a response is built).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from threading import get_ident
from typing import Any, TypeVar, cast, overload

from nvcf_helpers import names
from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import HeaderError, InputError, InvalidInputError
from nvcf_helpers.log import _set_running_request_id

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
    for tensor in request.inputs():  # _find_input, inlined: this runs for every input
        if tensor.name() == name:
            return tensor.as_numpy()
    raise InputError(f"input {name} is missing: send it with the request")


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
    if isinstance(result, pb_utils.InferenceResponse):
        return result
    if isinstance(result, Mapping):
        tensors = [pb_utils.Tensor(name, array) for name, array in result.items()]
    else:
        tensors = list(cast(Sequence[Any], result))
    return pb_utils.InferenceResponse(output_tensors=tensors)


def execute_requests(
    requests: Sequence[Any], handle: Callable[[Any, RequestContext], Any]
) -> list[Any]:
    """Answer each request with ``handle(request, ctx)``; the body of ``execute``.

    For each request: call ``handle`` and turn what it returns into a
    response. An exception answers that request alone, as
    :func:`error_response` describes; the other requests of the batch are
    not affected.

    A request pays only for what it uses. ``ctx`` is parsed from the
    forwarded headers when the handler first reads one of its fields (a
    malformed ``NVCF-*`` header then raises :class:`HeaderError` there, which
    answers 400). Log lines written while ``handle`` runs carry the request
    id (``[reqid=...]``), looked up when a line is written, as
    :func:`~nvcf_helpers.current_request_id` is. A request that neither reads
    ``ctx`` nor logs is never parsed.

    Args:
        requests: what Triton passed to ``execute``.
        handle: returns a mapping of output name -> numpy array, a sequence
            of ``pb_utils.Tensor``, or a ready ``pb_utils.InferenceResponse``.

    Returns:
        One ``InferenceResponse`` per request, in order.
    """
    global _running  # noqa: PLW0603 - what current_request_id() reads
    pb_utils = _pb_utils if _pb_utils is not None else _pb()
    tensor, response_type = pb_utils.Tensor, pb_utils.InferenceResponse
    outer, thread = _running, get_ident()
    responses: list[Any] = []
    for request in requests:
        ctx = _new_context(_LazyContext)
        _set_slot(ctx, "_request", request)
        _running = (ctx, thread)
        try:
            result = handle(request, ctx)
            if type(result) is dict:  # the common case, built without a Python-level call
                response = response_type(list(map(tensor, result, result.values())))
            else:
                response = _as_response(result)
        except Exception as exc:
            response = error_response(exc)
        finally:
            _running = outer
        responses.append(response)
    return responses


# --- the lazy context, and the request id bound when a log line needs it -----------

_FIELDS = tuple(field.name for field in dataclasses.fields(RequestContext))
_FIELD_SET = frozenset(_FIELDS)
_REQUEST_ID_KEY = names.REQUEST_ID.lower()
_new_context = object.__new__
_set_slot = object.__setattr__


class _LazyContext(RequestContext):
    """A request's context whose fields are parsed when one is first read.

    Until then the fields' slots are empty, so reading one falls through to
    ``__getattr__``, which parses every header at once (a malformed one
    raises :class:`HeaderError` from that read) and fills the slots: later
    reads cost what a plain context's do. Equality, hashing, ``repr`` and
    pickling behave as those of the plain :class:`RequestContext`.
    """

    __slots__ = ("_request",)
    _request: Any

    def __getattr__(self, name: str) -> Any:
        if name not in _FIELD_SET:
            raise AttributeError(f"'RequestContext' object has no attribute {name!r}")
        parsed = context_from_request(self._request)
        for field in _FIELDS:
            _set_slot(self, field, getattr(parsed, field))
        return getattr(parsed, name)

    def plain(self) -> RequestContext:
        """The parsed context as a plain :class:`RequestContext`."""
        return RequestContext(*(getattr(self, field) for field in _FIELDS))

    def __repr__(self) -> str:
        try:
            return repr(self.plain())
        except HeaderError as exc:
            return f"RequestContext(<{exc}>)"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LazyContext):
            other = other.plain()
        if not isinstance(other, RequestContext):
            return NotImplemented
        return self.plain() == other

    def __hash__(self) -> int:
        return hash(self.plain())

    def __reduce__(self) -> tuple[type[RequestContext], tuple[Any, ...]]:
        return RequestContext, tuple(getattr(self, field) for field in _FIELDS)


def _lenient_request_id(request: Any) -> str | None:
    """The ``NVCF-REQID`` of a request whose other headers may be malformed."""
    try:
        decoded = json.loads(request.parameters() or "{}")
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    found = None
    for key, value in decoded.items():  # the last spelling wins, as in RequestContext
        if key.lower() == _REQUEST_ID_KEY and isinstance(value, str) and value.strip():
            found = value
    return found


#: The request whose handler runs, and the thread running it. A plain global, not a
#: ContextVar: setting one per request costs more than all the rest of this loop, and
#: the thread id keeps other threads' log lines from taking the request's id.
_running: tuple[_LazyContext, int] | None = None


def _running_request_id() -> str | None:
    """The id of the request whose handler runs on this thread (for its log lines).

    A malformed header elsewhere does not keep a log line from naming the
    request: only reading the context answers 400.
    """
    running = _running
    if running is None or running[1] != get_ident():
        return None
    try:
        return running[0].request_id
    except HeaderError:
        return _lenient_request_id(running[0]._request)


_set_running_request_id(_running_request_id)
