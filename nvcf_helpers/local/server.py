"""Putting the local NVCF together: API, worker, supervisor, and their lifetime."""

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

import aiohttp
from aiohttp import web

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.api import build_app
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.docker import docker_command, docker_remove_command
from nvcf_helpers.local.function import LocalFunction
from nvcf_helpers.local.store import InvocationStore
from nvcf_helpers.local.supervisor import Supervisor
from nvcf_helpers.local.worker import Worker
from nvcf_helpers.names import DEFAULT_MAX_RESPONSE_BYTES
from nvcf_helpers.spec import FunctionSpec

__all__ = ["API_LINE_PREFIX", "LocalServer", "ServeOptions", "run_gateway"]

logger = logging.getLogger("nvcf_helpers.local")

#: Start of the line that announces the API's base URL (stable, for scripts to parse).
API_LINE_PREFIX = "NVCF local API: "


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``nvcf-helpers local`` was asked to do."""

    spec: FunctionSpec
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


def _banner(
    options: ServeOptions, base_url: str, function: LocalFunction, command: list[str]
) -> str:
    key = ' --api-key "$NVCF_API_KEY"' if options.api_key else ""
    auth = ' -H "Authorization: Bearer $NVCF_API_KEY"' if options.api_key else ""
    invoke_url = f"{base_url}/v2/nvcf/pexec/functions/{function.function_id}"
    return "\n".join(
        [
            f"{API_LINE_PREFIX}{base_url}",
            f"function {function.spec.name}: id {function.function_id}, "
            f"version {function.version_id}",
            f"container command: {shlex.join(command)}",
            f"invoke: nvcf-helpers invoke {function.function_id} --base-url {base_url}{key} "
            "--data '{}'",
            f"curl:   curl -sS -X POST {invoke_url}{auth} -H 'Content-Type: application/json' "
            "-d '{}'",
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


def _client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
        # Forward only what the caller sent; aiohttp would add its own Accept-Encoding.
        skip_auto_headers=("Accept-Encoding", "User-Agent"),
    )


class LocalServer:
    """The parts of one local NVCF run, built under a fresh temporary root."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.root = Path(tempfile.mkdtemp(prefix="nvcf-local-"))
        os.chmod(self.root, 0o755)  # noqa: S103 - the container may run as another user
        self.function = LocalFunction(options.spec)
        self.store = InvocationStore()
        (self.root / "assets").mkdir(mode=0o700)
        self.assets = AssetStore(self.root / "assets")
        self.session = _client_session()
        self.worker = Worker(
            self.function,
            self.store,
            self.assets,
            self.root,
            self.session,
            max_concurrency=options.max_concurrency,
            max_response_bytes=options.max_response_bytes,
        )
        self.command = list(options.command)
        cleanup: list[str] = []
        if options.image is not None:
            self.command = docker_command(self.function, options.image, self.root)
            cleanup = docker_remove_command(self.function)
        self.supervisor = Supervisor(
            self.function,
            self.command,
            self.session,
            startup_timeout=options.startup_timeout,
            environment=self.function.container_environment(),
            on_exit=self.worker.container_exited,
            cleanup_command=cleanup,
        )
        app = build_app(self.function, self.store, self.assets, self.worker, options.api_key)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)

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
        return f"http://{shown_host}:{port}"

    async def close(self) -> None:
        """Stop the container (after closing connections to it), then the API; remove the root."""
        try:
            self.supervisor.detach()
            await self.worker.close()
            # Idle keep-alive connections would make servers such as Triton wait out their
            # exit timeout (30 s) after SIGTERM: close them before stopping the container.
            await self.session.close()
            await self.supervisor.stop(self.options.stop_grace)
        finally:
            await self.runner.cleanup()
            shutil.rmtree(self.root, ignore_errors=True)


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
    function = server.function
    try:
        if options.image is None:  # docker run reports its own port conflicts
            _check_ports_free(options.spec)
        base_url = await server.listen()
        print(_banner(options, base_url, function, server.command), flush=True)
        if options.info_file is not None:
            _write_info(
                options.info_file,
                {
                    "baseUrl": base_url,
                    "functionId": function.function_id,
                    "versionId": function.version_id,
                    "pid": os.getpid(),
                },
            )
        await server.supervisor.start()
        await stop.wait()
        logger.info("stopping: the container first, then the API")
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
