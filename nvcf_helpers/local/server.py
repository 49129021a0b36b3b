"""Putting the local NVCF together: API, worker, supervisor, and their lifetime.

Stopping (SIGTERM, Ctrl-C, :meth:`LocalNvcf.stop`) answers every caller
first: queued requests get a 503 at once, running ones their result if it
lands within :data:`REQUEST_GRACE_SECONDS`, else a 503; then the container
gets SIGTERM and, within what is left of :data:`SHUTDOWN_SECONDS`, SIGKILL.
A guard process outlives a ``local`` that is killed outright, and then stops
the container's process group and removes the temporary root.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import http_exceptions, web

from nvcf_helpers import names
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.api import LocalApi, gateway_problem
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.cloud import LocalCloud
from nvcf_helpers.local.deployment import Deployment, DeploymentSettings, Launch
from nvcf_helpers.local.function import LocalFunction
from nvcf_helpers.local.grpc_proxy import GrpcProxy
from nvcf_helpers.local.logs import DEFAULT_LOG_BUDGET_BYTES
from nvcf_helpers.local.registry import FunctionVersion
from nvcf_helpers.local.store import DEFAULT_RESULT_BUDGET_BYTES, InvocationStore
from nvcf_helpers.local.supervisor import Supervisor
from nvcf_helpers.local.worker import Worker
from nvcf_helpers.names import DEFAULT_MAX_RESPONSE_BYTES
from nvcf_helpers.spec import DeploymentSpec, FunctionSpec

__all__ = [
    "API_LINE_PREFIX",
    "REQUEST_GRACE_SECONDS",
    "SHUTDOWN_SECONDS",
    "LocalServer",
    "ServeOptions",
    "run_gateway",
]

logger = logging.getLogger("nvcf_helpers.local")

#: Start of the line that announces the API's base URL (stable, for scripts to parse).
API_LINE_PREFIX = "NVCF local API: "
#: Start of the line that announces the gRPC endpoint, when there is one.
GRPC_LINE_PREFIX = "NVCF local gRPC: "
#: How long running requests may still finish once a stop was asked for.
REQUEST_GRACE_SECONDS = 3.0
#: A stop ends within this many seconds (``docker stop`` gives 10), container included.
SHUTDOWN_SECONDS = 9.0
# NVCF's gateway (hyper) reads request heads of up to 100 headers in a ~408 KB buffer.
_MAX_REQUEST_HEADERS = 100
_MAX_REQUEST_HEAD_BYTES = 8192 + 4096 * 100


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``nvcf-helpers local`` was asked to do."""

    spec: FunctionSpec | None
    command: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8787
    api_key: str | None = None
    max_concurrency: int = 1
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    startup_timeout: float = 600.0
    stop_grace: float = 10.0
    info_file: Path | None = None
    image: str | None = None
    queue_size: int = names.DEFAULT_QUEUE_SIZE
    result_ttl: float = names.REQUEST_MAPPING_MAX_AGE_SECONDS
    result_budget_bytes: int = DEFAULT_RESULT_BUDGET_BYTES
    #: Bytes of the containers' log lines kept (``--log-budget-bytes``).
    log_budget_bytes: int = DEFAULT_LOG_BUDGET_BYTES
    #: ``(image, command)``: what runs each other ``containerImage`` (``--image-command``).
    image_commands: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Port of the gRPC endpoint (0: a free one); ``None``: only for a ``--spec`` gRPC function.
    grpc_port: int | None = None


def _banner(
    options: ServeOptions, base_url: str, function: FunctionVersion, command: list[str]
) -> str:
    key = ' --api-key "$NVCF_API_KEY"' if options.api_key else ""
    auth = ' -H "Authorization: Bearer $NVCF_API_KEY"' if options.api_key else ""
    invoke_url = f"{base_url}/v2/nvcf/pexec/functions/{function.function_id}"
    return "\n".join(
        [
            f"{API_LINE_PREFIX}{base_url}",
            f"function {function.name}: id {function.function_id}, version {function.version_id}",
            f"container command: {shlex.join(command)}",
            f"invoke: nvcf-helpers invoke {function.function_id} --base-url {base_url}{key} "
            "--data '{}'",
            f"curl:   curl -sS -X POST {invoke_url}{auth} -H 'Content-Type: application/json' "
            "-d '{}'",
        ]
    )


def local_deployment(max_request_concurrency: int) -> DeploymentSpec:
    """The deployment ``--spec`` makes: one instance on this machine."""
    return DeploymentSpec(
        gpu="local",
        instance_type="local",
        backend="local",
        min_instances=1,
        max_instances=1,
        max_request_concurrency=max_request_concurrency,
    )


def _empty_banner(options: ServeOptions, base_url: str) -> str:
    key = ' --api-key "$NVCF_API_KEY"' if options.api_key else ""
    connection = f"--base-url {base_url}{key}"
    return "\n".join(
        [
            f"{API_LINE_PREFIX}{base_url}",
            "no function yet: register and deploy one, e.g.",
            f"  nvcf-helpers function create function.json {connection}",
            f"  nvcf-helpers deploy create FUNCTION_ID VERSION_ID --wait {connection}",
        ]
    )


def _write_info(path: Path, info: dict[str, object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(info), encoding="utf-8")
    os.replace(temporary, path)


def _check_ports_free(spec: FunctionSpec) -> None:
    """Refuse to start when something already answers on the function's ports.

    The health check would pass against that program (often an earlier run
    still alive) while the new container fails to bind.
    """
    for port in sorted({spec.inference_port, spec.health.port}):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise NvcfHelperError(
                    f"port {port} of the function is already in use on 127.0.0.1, so the "
                    "health check would reach that program instead of the new container: "
                    "stop it (an earlier run?) or change inferencePort/health.port"
                )


def _request_error(status: int, exc: BaseException | None) -> tuple[int, str]:
    """The status and detail for a request aiohttp could not parse (or a handler crash)."""
    message = str(getattr(exc, "message", "") or exc or "").strip().splitlines()
    said = message[0] if message else ""
    if isinstance(exc, http_exceptions.LineTooLong) or "Too many headers" in said:
        return 431, (
            f"the request's headers are too large ({said}): NVCF's gateway takes at most "
            f"{_MAX_REQUEST_HEADERS} headers in about {_MAX_REQUEST_HEAD_BYTES // 1024} KiB; send "
            "large data in the body or as an asset"
        )
    if isinstance(exc, http_exceptions.HttpProcessingError) and 400 <= status < 500:
        return status, (
            f"the request is not valid HTTP ({said or type(exc).__name__}): check the request "
            "line and the header names and values (no control characters)"
        )
    return status, (
        f"the local NVCF failed while reading the request ({type(exc).__name__}: {said}); "
        "its log has the details: please report it"
    )


class _ProblemRequestHandler(web.RequestHandler):
    """Answers requests aiohttp cannot parse with problem details, never a traceback."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # the answer is on its way: aiohttp closes it
            return super().handle_error(request, status, exc, message)
        status, detail = _request_error(status, exc)
        if status >= 500:
            logger.error("%s", detail, exc_info=exc)
        else:
            logger.warning("refused a request from %s: %s", request.remote, detail)
        response = web.Response(
            status=status,
            body=gateway_problem(status, detail),
            content_type="application/problem+json",
        )
        response.force_close()
        return response


class _ProblemServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An aiohttp runner whose connections answer unparsable requests as problem details."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ProblemServer  # the same object, with our request handlers
        return server


class LocalServer:
    """The parts of one local NVCF run, built under a fresh temporary root.

    With a ``--spec`` function it is registered and deployed (one instance,
    ``--max-concurrency`` slots) before the API listens; :attr:`function`,
    :attr:`supervisor`, :attr:`worker` and :attr:`store` are then that
    instance's and that deployment's.
    """

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.root = Path(tempfile.mkdtemp(prefix="nvcf-local-"))
        os.chmod(self.root, 0o755)  # noqa: S103 - the container may run as another user
        (self.root / "assets").mkdir(mode=0o700)
        self.assets = AssetStore(self.root / "assets")
        settings = DeploymentSettings(
            root=self.root,
            startup_timeout=options.startup_timeout,
            max_response_bytes=options.max_response_bytes,
            queue_size=options.queue_size,
            result_ttl=options.result_ttl,
            result_budget_bytes=options.result_budget_bytes,
            log_budget_bytes=options.log_budget_bytes,
        )
        default = Launch(tuple(options.command), options.image)
        self.cloud = LocalCloud(
            settings,
            assets=self.assets,
            launches={image: Launch(tuple(command)) for image, command in options.image_commands},
            default_launch=default if options.command or options.image else None,
        )
        self.deployment: Deployment | None = None
        if options.spec is not None:
            self.deployment = self._deploy_spec(options.spec)
        self.api = LocalApi(self.cloud, self.assets, options.api_key)
        self.runner = _Runner(
            self.api.application(),
            access_log=None,
            handle_signals=False,
            # A caller that hangs up stops its handler: its result then waits for a poll.
            handler_cancellation=True,
            shutdown_timeout=1.0,
            max_line_size=_MAX_REQUEST_HEAD_BYTES,
            max_field_size=_MAX_REQUEST_HEAD_BYTES,
            max_headers=_MAX_REQUEST_HEADERS,
        )
        self._api_closed = False
        self.grpc: GrpcProxy | None = None

    def _deploy_spec(self, spec: FunctionSpec) -> Deployment:
        """Register the ``--spec`` function and make its deployment (started by :meth:`start`)."""
        version = self.cloud.register(spec)
        return self.cloud.prepare(version, [local_deployment(self.options.max_concurrency)])

    def _only(self) -> Deployment:
        if self.deployment is None:
            raise RuntimeError("this local NVCF was started without --spec")
        return self.deployment

    @property
    def version(self) -> FunctionVersion:
        """The ``--spec`` function's version."""
        return self._only().version

    @property
    def function(self) -> LocalFunction:
        """The ``--spec`` function's (first) instance."""
        return self._only().instances[0].state

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor of the ``--spec`` function's (first) instance."""
        return self._only().instances[0].supervisor

    @property
    def worker(self) -> Worker:
        """The worker of the ``--spec`` function's (first) instance."""
        return self._only().instances[0].worker

    @property
    def store(self) -> InvocationStore:
        """The ``--spec`` function's queue and results."""
        return self._only().store

    @property
    def command(self) -> list[str]:
        """The ``--spec`` function's container command (first instance)."""
        return self.supervisor.command

    async def listen(self) -> str:
        """Serve the API; returns its base URL.

        Raises:
            NvcfHelperError: the address cannot be bound.
        """
        options = self.options
        await self.runner.setup()
        site = web.TCPSite(self.runner, options.host, options.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise NvcfHelperError(
                f"cannot serve on {options.host}:{options.port} ({exc.strerror}): pick another "
                "port with --port, or --port 0 for any free one"
            ) from None
        host, port = self.runner.addresses[0][:2]
        if host not in ("127.0.0.1", "::1", "localhost"):
            logger.warning(
                "serving on %s: other machines can reach this API%s",
                host,
                "" if options.api_key else "; consider --api-key",
            )
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        await self._listen_grpc()
        return f"http://{shown_host}:{port}"

    async def _listen_grpc(self) -> None:
        """Serve gRPC when asked (``--grpc-port``), or when the ``--spec`` function is gRPC."""
        options = self.options
        port = options.grpc_port
        if port is None and options.spec is not None and options.spec.inference_path == "/grpc":
            port = 0
        if port is None:
            return
        self.grpc = GrpcProxy(self.cloud, options.api_key)
        try:
            await self.grpc.start(options.host, port)
        except (OSError, RuntimeError) as exc:
            raise NvcfHelperError(
                f"cannot serve gRPC on {options.host}:{port} ({exc}): pick another port with "
                "--grpc-port, or --grpc-port 0 for any free one"
            ) from None

    async def start(self) -> None:
        """Start the ``--spec`` function's container, and follow every deployment."""
        if self.deployment is not None:
            await self.deployment.start()

    async def close(self) -> None:
        """Answer every caller, stop the containers, then the API; remove the root."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_SECONDS
        try:
            for deployment in self.cloud:
                deployment.detach()
            await self.api.shutdown(REQUEST_GRACE_SECONDS)
            await self._close_api()  # the answers above go out; connections close
            if self.grpc is not None:
                await self.grpc.stop()
            for deployment in self.cloud:
                await deployment.release()
            grace = min(self.options.stop_grace, max(1.0, deadline - loop.time()))
            await self.cloud.close(grace)
        finally:
            await self._close_api()
            shutil.rmtree(self.root, ignore_errors=True)
            await self.cloud.dismiss_guards()

    async def _close_api(self) -> None:
        if not self._api_closed:
            self._api_closed = True
            await self.runner.cleanup()


async def run_gateway(options: ServeOptions, stop: asyncio.Event | None = None) -> int:
    """Run the local NVCF until ``stop`` is set or SIGINT/SIGTERM arrives.

    Returns:
        0 after a requested stop.

    Raises:
        NvcfHelperError: the port cannot be bound, or the command cannot be started.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = LocalServer(options)
    try:
        if (
            options.spec is not None
            and options.image is None
            and "{port}" not in " ".join(options.command)
        ):  # docker run reports its own port conflicts; {port} picks free ones
            _check_ports_free(options.spec)
        base_url = await server.listen()
        info: dict[str, object] = {
            "baseUrl": base_url,
            "pid": os.getpid(),
            "root": str(server.root),
        }
        if server.grpc is not None:
            info["grpcPort"] = server.grpc.port
        if server.deployment is not None:
            version = server.version
            print(_banner(options, base_url, version, server.command), flush=True)
            info.update(functionId=version.function_id, versionId=version.version_id)
        else:
            print(_empty_banner(options, base_url), flush=True)
        if server.grpc is not None:
            print(f"{GRPC_LINE_PREFIX}127.0.0.1:{server.grpc.port}", flush=True)
        if options.info_file is not None:
            _write_info(options.info_file, info)
        await server.start()
        await stop.wait()
        logger.info("stopping: the containers first, then the API")
    finally:
        await server.close()
        if options.info_file is not None:
            options.info_file.unlink(missing_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def configure_gateway_logging(level: int = logging.INFO) -> None:
    """Send the local NVCF's own log lines to stderr; the container's output keeps stdout."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [nvcf-local] [%(levelname)s] %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
