"""Serve a PyTriton model as an NVCF container function; the docs' PyTriton guide shows how.

PyTriton answers any error with a 500 and its traceback, so the proxy model it ships to
Triton gets a short addition: errors marked here come back as 400 or 500, message only.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from nvcf_helpers.context import RequestContext
from nvcf_helpers.errors import InvalidInputError, NvcfHelperError
from nvcf_helpers.libpython import apply_libpython_fix
from nvcf_helpers.log import configure_logging, log_request
from nvcf_helpers.names import HEADER_FORWARD_PATTERN

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    from pytriton.triton import Triton, TritonConfig

__all__ = [
    "DEFAULT_EXIT_TIMEOUT_SECS",
    "ContextUnavailableError",
    "WorkspacePathError",
    "check_workspace_path",
    "current_context",
    "current_contexts",
    "install_error_mapping",
    "install_sigterm_handler",
    "serve",
    "triton_config",
    "with_request_context",
]

#: Seconds tritonserver waits for open connections and in-flight requests on
#: exit. With NVCF's worker holding a keep-alive connection it waits all of
#: them, after :func:`serve` has unloaded the models (about 2 s); the two must
#: fit in the 10 s between ``docker stop``'s SIGTERM and its SIGKILL.
DEFAULT_EXIT_TIMEOUT_SECS = 3

# Seconds serve() gives its models, on shutdown, to finish their requests
# and unload before it stops tritonserver anyway.
_UNLOAD_TIMEOUT_SECS = 4.0
# Seconds one call to a tritonserver that stopped answering may take then.
_CALL_TIMEOUT_SECS = 1.0

_ENV_PREFIX = "PYTRITON_TRITON_CONFIG_"
_LOG = logging.getLogger(__name__)

_contexts: contextvars.ContextVar[tuple[RequestContext, ...] | None] = contextvars.ContextVar(
    "nvcf_pytriton_contexts", default=None
)


class ContextUnavailableError(NvcfHelperError, LookupError):
    """No single request context is bound where :func:`current_context` was called."""


class WorkspacePathError(NvcfHelperError):
    """PyTriton's Unix sockets for a model would have paths longer than Linux allows."""


# PyTriton puts each model's Unix sockets in <PYTRITON_HOME>/workspace_XXXXXXXX/,
# the longest named <model>_0_<n>-server.sock. A socket path holds at most 107
# bytes; past that the model fails to load with an EOFError that names nothing.
_SOCKET_PATH_MAX = 107
_LONGEST_SOCKET = "/workspace_XXXXXXXX/{model}_0_0-server.sock"


def check_workspace_path(model_name: str, home: str | os.PathLike[str] | None = None) -> None:
    """Refuse, with a clear message, a model whose PyTriton sockets could not be created.

    Args:
        model_name: the name the model is bound under.
        home: PyTriton's home directory; ``PYTRITON_HOME`` (or its default,
            ``~/.cache/pytriton``) when None.

    Raises:
        WorkspacePathError: the socket path would exceed 107 bytes.
    """
    if home is None:
        default = os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "pytriton")
        home = os.environ.get("PYTRITON_HOME", default)
    home_path = os.path.abspath(os.path.expanduser(os.fspath(home)))
    longest = home_path + _LONGEST_SOCKET.format(model=model_name)
    if len(longest.encode()) > _SOCKET_PATH_MAX:
        raise WorkspacePathError(
            f"PyTriton's sockets for model {model_name!r} would be {len(longest.encode())} "
            f"bytes long under {home_path}, over the {_SOCKET_PATH_MAX} a Unix socket path may "
            "hold: set PYTRITON_HOME to a shorter directory (e.g. /tmp/pytriton) or shorten "
            "the model name"
        )


class _CheckedTriton:
    """The ``Triton`` object handed to ``bind``: checks each model's socket paths first."""

    def __init__(self, triton: Triton) -> None:
        self._triton = triton

    def bind(self, model_name: str, *args: Any, **kwargs: Any) -> Any:
        check_workspace_path(model_name)
        return self._triton.bind(model_name, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._triton, name)


# --- configuration -----------------------------------------------------------------


def triton_config(**overrides: Any) -> TritonConfig:
    """A ``pytriton.triton.TritonConfig`` ready for NVCF.

    Sets ``http_header_forward_pattern="NVCF-.*"`` and
    ``exit_timeout_secs=DEFAULT_EXIT_TIMEOUT_SECS`` (unless
    ``PYTRITON_TRITON_CONFIG_EXIT_TIMEOUT_SECS`` is set). Ports are left unset,
    so PyTriton takes them from ``PYTRITON_TRITON_CONFIG_HTTP_PORT``,
    ``_GRPC_PORT`` and ``_METRICS_PORT``, and tritonserver falls back to
    8000, 8001 and 8002. Also applies the libpython fix to ``os.environ``.

    Args:
        **overrides: any ``TritonConfig`` field (``http_port=9000``, ...);
            these win over everything else.
    """
    from pytriton.triton import TritonConfig

    apply_libpython_fix()
    values: dict[str, Any] = {"http_header_forward_pattern": HEADER_FORWARD_PATTERN}
    if f"{_ENV_PREFIX}EXIT_TIMEOUT_SECS" not in os.environ:
        values["exit_timeout_secs"] = DEFAULT_EXIT_TIMEOUT_SECS
    values.update(overrides)
    config: TritonConfig = TritonConfig(**values)
    return config


# --- errors that reach the client without a traceback --------------------------------

# A marked error travels from the infer callable (this process) to PyTriton's
# proxy model (inside tritonserver's Python backend stub) only as text: PyTriton
# formats the exception with its traceback. The mark survives that formatting.
_MARK = re.compile(r'\[nvcf-error (?P<status>400|500) (?P<message>"(?:[^"\\]|\\.)*")\]')


class _MarkedError(Exception):
    """An exception whose text the patched proxy model answers with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"[nvcf-error {status} {json.dumps(message)}]")


def _unmark(text: str) -> tuple[int, str] | None:
    """The status and message of a marked error inside ``text``, if any."""
    found = _MARK.search(text)
    if found is None:
        return None
    message: str = json.loads(found.group("message"))
    return int(found.group("status")), message


_PATCH_TAG = "# nvcf_helpers: client errors answer INVALID_ARG"

# Appended to PyTriton's proxy model.py. It runs inside the Python backend stub
# and relies only on the Python backend API (TritonPythonModel.execute,
# pb_utils), not on PyTriton's internals.
_PROXY_PATCH = f"""

{_PATCH_TAG} (HTTP 400), not a 500 with a traceback.
import json as _nvcf_json
import re as _nvcf_re

_NVCF_MARK = _nvcf_re.compile({_MARK.pattern!r})
_nvcf_original_execute = TritonPythonModel.execute
_nvcf_pb_utils = pb_utils


def _nvcf_error(found):
    if found.group("status") == "400":
        code = _nvcf_pb_utils.TritonError.INVALID_ARG
    else:
        code = _nvcf_pb_utils.TritonError.INTERNAL
    return _nvcf_pb_utils.TritonError(_nvcf_json.loads(found.group("message")), code)


def _nvcf_execute(self, triton_requests):
    try:
        return _nvcf_original_execute(self, triton_requests)
    except _nvcf_pb_utils.TritonModelException as exc:
        found = _NVCF_MARK.search(str(exc))
        if found is None:
            raise
        return [_nvcf_pb_utils.InferenceResponse(error=_nvcf_error(found)) for _ in triton_requests]


class _NvcfPbUtils:
    # pb_utils as this module sees it. A decoupled (streaming) model's error
    # reaches the stream as TritonError(<text with traceback>); a marked text
    # becomes its clean message and code instead.
    def __getattr__(self, name):
        return getattr(_nvcf_pb_utils, name)

    @staticmethod
    def TritonError(*args, **kwargs):
        text = args[0] if args else kwargs.get("error")
        alone = len(args) + len(kwargs) == 1
        found = _NVCF_MARK.search(text) if alone and isinstance(text, str) else None
        if found is None:
            return _nvcf_pb_utils.TritonError(*args, **kwargs)
        return _nvcf_error(found)


TritonPythonModel.execute = _nvcf_execute
pb_utils = _NvcfPbUtils()
"""


def _patched_model_source(source: bytes) -> bytes:
    text = source.decode("utf-8")
    if _PATCH_TAG in text or "class TritonPythonModel" not in text:
        return source
    return (text + _PROXY_PATCH).encode("utf-8")


def _drop_marked_errors(record: logging.LogRecord) -> bool:
    return _MARK.search(record.getMessage()) is None


_patch_lock = threading.Lock()


def install_error_mapping() -> None:
    """Make PyTriton answer this adapter's marked errors with 400/500 and a clean message.

    Patches ``pytriton.models.model.Model`` so the proxy ``model.py`` it ships
    to Triton carries a small addition (see the module docstring). Safe to
    call more than once; :func:`with_request_context` and :func:`serve` call it.
    """
    from pytriton.models import model as model_module

    model_class = model_module.Model
    with _patch_lock:
        if getattr(model_class, "_nvcf_helpers_patched", False):
            return
        original_files = model_class.get_proxy_model_files
        original_generate = model_class.generate_model

        @functools.wraps(original_files)
        def get_proxy_model_files(self: Any) -> dict[str, bytes]:
            files: dict[str, bytes] = original_files(self)
            return {
                key: _patched_model_source(value) if key.endswith("/model.py") else value
                for key, value in files.items()
            }

        @functools.wraps(original_generate)
        def generate_model(self: Any, model_repository: Any) -> None:
            original_generate(self, model_repository)
            path = model_repository / self.model_name / str(self.model_version) / "model.py"
            if path.is_file():
                path.write_bytes(_patched_model_source(path.read_bytes()))

        # PyTriton logs each marked error again, with the adapter's own frames as
        # its traceback; the adapter already logged it (with the original one).
        logging.getLogger("pytriton.proxy.inference").addFilter(_drop_marked_errors)
        model_class.get_proxy_model_files = get_proxy_model_files
        model_class.generate_model = generate_model
        model_class._nvcf_helpers_patched = True


# --- request context for infer callables ---------------------------------------------


def current_contexts() -> tuple[RequestContext, ...]:
    """The contexts of the requests in the running infer call, in request order.

    Raises:
        ContextUnavailableError: called outside a callable wrapped by
            :func:`with_request_context`.
    """
    contexts = _contexts.get()
    if contexts is None:
        raise ContextUnavailableError(
            "no request context is bound here: call current_context() inside an infer "
            "callable wrapped with nvcf_helpers.pytriton.with_request_context"
        )
    return contexts


def current_context() -> RequestContext:
    """The context of the request being handled.

    Raises:
        ContextUnavailableError: called outside a wrapped callable, or the
            call holds several requests (batched); then use
            :func:`current_contexts` or ``with_request_context(per_request=True)``.
    """
    contexts = current_contexts()
    if len(contexts) != 1:
        raise ContextUnavailableError(
            f"this infer call holds {len(contexts)} requests, so there is no single request "
            "context: use current_contexts(), or wrap with "
            "with_request_context(infer, per_request=True) to get one call per request"
        )
    return contexts[0]


def _parameters(request: Any) -> Mapping[str, Any] | None:
    parameters = getattr(request, "parameters", None)
    return parameters if isinstance(parameters, Mapping) else None


@contextmanager
def _bound(requests: Sequence[Any]) -> Iterator[None]:
    """Bind the requests' contexts and request ids; mark errors for the client."""
    try:
        contexts = tuple(RequestContext.from_parameters(_parameters(r)) for r in requests)
    except InvalidInputError as exc:
        raise _MarkedError(400, str(exc)) from None
    ids = ",".join(c.request_id for c in contexts if c.request_id) or None
    token = _contexts.set(contexts)
    try:
        with log_request(ids):
            try:
                yield
            except _MarkedError:
                raise
            except InvalidInputError as exc:
                _LOG.info("rejected: %s", exc)
                raise _MarkedError(400, str(exc)) from None
            except Exception as exc:
                if type(exc).__name__ == "PyTritonUnrecoverableError":
                    raise  # PyTriton stops the server on it; keep its meaning
                _LOG.exception("inference failed")
                raise _MarkedError(500, f"internal error: {type(exc).__name__}: {exc}") from None
    finally:
        _contexts.reset(token)


def _wrapper_for(infer_func: Callable[..., Any], per_request: bool) -> Callable[..., Any]:
    """A wrapt-style wrapper of the same kind (plain, generator, async) as ``infer_func``."""
    target: Any = infer_func
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and callable(target):
        target = target.__call__  # a callable object: PyTriton inspects __call__ too

    if inspect.isasyncgenfunction(target):
        if per_request:
            raise TypeError("per_request=True does not apply to streaming (generator) models")

        async def agen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with _bound(args[0]):
                async for item in wrapped(*args, **kwargs):
                    yield item

        return agen_wrapper

    if inspect.isgeneratorfunction(target):
        if per_request:
            raise TypeError("per_request=True does not apply to streaming (generator) models")

        def gen_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            def generate() -> Iterator[Any]:
                with _bound(args[0]):
                    yield from wrapped(*args, **kwargs)

            return generate()

        return gen_wrapper

    if inspect.iscoroutinefunction(target):

        def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            async def run() -> Any:
                requests, rest = args[0], args[1:]
                if not per_request:
                    with _bound(requests):
                        return await wrapped(requests, *rest, **kwargs)
                results: list[Any] = []
                for request in requests:
                    with _bound([request]):
                        results.extend(await wrapped([request], *rest, **kwargs))
                return results

            return run()

        return async_wrapper

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        requests, rest = args[0], args[1:]
        if not per_request:
            with _bound(requests):
                return wrapped(requests, *rest, **kwargs)
        results: list[Any] = []
        for request in requests:
            with _bound([request]):
                results.extend(wrapped([request], *rest, **kwargs))
        return results

    return wrapper


def with_request_context(
    infer_func: Callable[..., Any] | None = None, *, per_request: bool = False
) -> Any:
    """Give an infer callable the NVCF request context of its requests.

    Use as a decorator (outermost, above ``@batch``) or call it on the
    callable passed to ``triton.bind(infer_func=...)``. While the inner
    callable runs, :func:`current_contexts` / :func:`current_context` return
    the contexts parsed from each request's forwarded ``NVCF-*`` headers, and
    log lines carry the request id (ids joined by commas for a batch).

    Errors: an :class:`~nvcf_helpers.errors.InvalidInputError` (a malformed
    header included) answers the request with HTTP 400 and its message; any
    other exception is logged with its traceback and answered with a 500 whose
    message names it, without the traceback. Plain, generator and ``async``
    callables are supported (a streaming model keeps PyTriton's error answers).

    Args:
        infer_func: the callable; omit it to use ``@with_request_context(per_request=True)``.
        per_request: call the inner callable once per request (with a
            one-request list), so :func:`current_context` always works; this
            gives up batching across requests.

    Returns:
        The wrapped callable (a ``wrapt`` function wrapper, like PyTriton's own
        decorators, so ``@batch`` underneath still finds its model config).
    """
    if infer_func is None:
        return functools.partial(with_request_context, per_request=per_request)
    import wrapt

    install_error_mapping()
    apply_libpython_fix()
    call: Any = infer_func
    call = call.__call__
    is_object = not (inspect.isfunction(infer_func) or inspect.ismethod(infer_func))
    if is_object and (inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)):
        # PyTriton recognises a streaming model by its function's code flags,
        # which a wrapper around a callable object does not show: wrap the
        # bound __call__ instead.
        infer_func = call
    return wrapt.FunctionWrapper(infer_func, _wrapper_for(infer_func, per_request))


# --- process lifecycle -----------------------------------------------------------------


def install_sigterm_handler() -> None:
    """Turn SIGTERM (what ``docker stop`` sends) into ``SystemExit(0)``.

    ``with Triton(...)`` then leaves through its ``__exit__``, which stops
    tritonserver and deletes PyTriton's workspace. Call it from the main thread.
    """

    def handle(signum: int, frame: FrameType | None) -> None:
        _LOG.info("SIGTERM received, shutting down")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handle)


def _unload_models(url: str, access_token: str | None, names: Sequence[str]) -> None:
    """Unload ``names`` from the tritonserver at ``url`` and wait until they are gone.

    Stops waiting after ``_UNLOAD_TIMEOUT_SECS`` (a long request still running),
    and at once when the server does not answer (it is stopping or gone).
    """
    import warnings
    from http.client import HTTPException

    from pytriton.client.auth import create_auth_headers
    from pytriton.client.utils import TritonUrl, create_client_from_url
    from tritonclient.utils import InferenceServerException

    scheme = TritonUrl.from_url(url).scheme
    headers = create_auth_headers(access_token, scheme) if access_token else None
    deadline = time.monotonic() + _UNLOAD_TIMEOUT_SECS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the gRPC client warns that it ignores timeouts
            client = create_client_from_url(url, network_timeout_s=_CALL_TIMEOUT_SECS)
        with closing(client):
            if not client.is_server_live(headers=headers):
                return
            for name in names:
                client.unload_model(name, headers=headers)
            # The server is not ready while a model unloads, and ready again once
            # it is gone (PyTriton's own ModelManager.clean waits the same way).
            while time.monotonic() < deadline:
                if client.is_server_ready(headers=headers):
                    return
                time.sleep(0.05)
        _LOG.info(
            "the models are still unloading after %g s: stopping tritonserver, "
            "which gives them its exit timeout",
            _UNLOAD_TIMEOUT_SECS,
        )
    except (OSError, HTTPException, InferenceServerException) as exc:
        # The server is stopping already (a signal sent to the whole process
        # group reaches tritonserver too) or gone: stopping it is all that is left.
        _LOG.debug("could not unload the models before stopping tritonserver: %r", exc)


@functools.cache
def _models_first_triton() -> type[Triton]:
    """PyTriton's ``Triton``, stopping in the reverse order of its start: models first.

    PyTriton's ``Triton.stop()`` signals tritonserver first, and tritonserver
    spends its whole exit timeout waiting for idle keep-alive connections
    (NVCF's worker keeps one open) before it unloads a model: the Python
    backend stubs were then killed in the middle of their ``finalize``
    ("Exit timeout expired", "Non-graceful termination detected", "Triton
    Inference Server exited with failure"). Unloading the models through
    Triton's model-repository API first lets each stub finalize while
    tritonserver, the stub's tensor store and PyTriton's side all still run.
    Every way out goes through ``stop()``: SIGTERM (``__exit__``), Ctrl-C
    (``serve()``), a model or tritonserver that died.
    """
    from pytriton.triton import Triton

    class ModelsFirstTriton(Triton):  # type: ignore[misc] # pytriton has no type hints
        def __init__(self, **kwargs: Any) -> None:
            self._nvcf_models: list[str] = []
            self._nvcf_lock = threading.Lock()
            super().__init__(**kwargs)

        def bind(self, model_name: str, *args: Any, **kwargs: Any) -> Any:
            result = super().bind(model_name, *args, **kwargs)
            with self._nvcf_lock:
                self._nvcf_models.append(model_name)
            return result

        def stop(self) -> bool:
            with self._nvcf_lock:
                names, self._nvcf_models = self._nvcf_models, []
            url = getattr(self, "_url", None)  # PyTriton's own client URL for this server
            try:
                if names and isinstance(url, str):
                    _unload_models(url, self.get_access_token(), names)
            finally:
                stopped = super().stop()  # whatever happened to the unloading
            return bool(stopped)

    return ModelsFirstTriton


def serve(
    bind: Callable[[Triton], None],
    *,
    config: TritonConfig | None = None,
    log_level: int | str = logging.INFO,
    json_logs: bool = False,
    restricted_endpoints: Sequence[str] | None = None,
) -> None:
    """Start PyTriton, let ``bind`` bind the models, and serve until SIGTERM or Ctrl-C.

    Configures NVCF logging, installs the SIGTERM handler and the error
    mapping, applies the libpython fix, then blocks in ``Triton.serve()``.
    On SIGTERM or Ctrl-C it unloads the models, then stops tritonserver,
    and the process exits with 0.

    Args:
        bind: called with the started ``Triton`` object; calls ``triton.bind(...)``.
        config: a ``TritonConfig``; :func:`triton_config` () by default.
        log_level: level of the root logger.
        json_logs: log one JSON object per line instead of NVCF's text format.
        restricted_endpoints: Triton endpoints that need PyTriton's access
            token; PyTriton's default list when None, nothing restricted when empty.
    """
    from pytriton.triton import TritonSecurityConfig

    configure_logging(log_level, json=json_logs)
    install_sigterm_handler()
    install_error_mapping()
    apply_libpython_fix()
    security = (
        None
        if restricted_endpoints is None
        else TritonSecurityConfig(restricted_endpoints=list(restricted_endpoints))
    )
    from pytriton.triton import TritonLifecyclePolicy

    triton_class = _models_first_triton()
    # tritonserver starts once the models are bound, from the local model store: its ports
    # (and so NVCF's health checks, gRPC's included) open only when the models are loaded.
    policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
    with triton_class(
        config=config or triton_config(), security_config=security, triton_lifecycle_policy=policy
    ) as triton:
        try:
            bind(_CheckedTriton(triton))
        except WorkspacePathError as exc:
            _LOG.error("%s", exc)  # a set-up mistake: the message, not a traceback
            raise SystemExit(1) from None
        triton.serve()
