"""The child process supervisor: runs the container's entrypoint and decides its health.

The function becomes DEPLOYING when the command starts, ACTIVE when its
health check answers the expected status (probed as NVCF does, with the
spec's protocol, port, uri and per-probe timeout), and ERROR when the command
exits, or never gets healthy within the startup timeout. Stopping sends
SIGTERM to the command, then SIGKILL to its whole process group after a grace
period (what ``docker stop`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence

import aiohttp

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.process import parent_death_signal

__all__ = ["Supervisor"]

logger = logging.getLogger("nvcf_helpers.local")

_PROBE_INTERVAL_SECONDS = 0.1


class Supervisor:
    """Runs one command as the function's container and tracks its lifecycle.

    Args:
        function: the function whose status this supervisor drives.
        command: the entrypoint and its arguments.
        session: the HTTP session used for health probes.
        startup_timeout: seconds the command has to become healthy.
        environment: extra variables for the child (the ``NVCF_*`` identity).
        on_exit: called once if the child exits while it was supposed to run.
        cleanup_command: run after the child has stopped (``docker rm`` for an image).
    """

    def __init__(
        self,
        function: LocalFunction,
        command: Sequence[str],
        session: aiohttp.ClientSession,
        *,
        startup_timeout: float,
        environment: Mapping[str, str] | None = None,
        on_exit: Callable[[], None] | None = None,
        cleanup_command: Sequence[str] | None = None,
    ) -> None:
        self.function = function
        self.command = list(command)
        self.session = session
        self.startup_timeout = startup_timeout
        self.environment = dict(environment or {})
        self.on_exit = on_exit
        self.cleanup_command = list(cleanup_command or [])
        self.process: asyncio.subprocess.Process | None = None
        self.returncode: int | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the command and begin probing its health."""
        # The prefix NVCF_ is NVCF's: the caller's own NVCF_* variables (an API key, the
        # local NVCF's key) must not reach the container; the identity is set anew.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("NVCF_")}
        env = {**inherited, **self.environment}
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                start_new_session=True,  # its own process group, so stop() reaches grandchildren
                # SIGTERM if the local NVCF itself is killed outright.
                preexec_fn=parent_death_signal(),
            )
        except OSError as exc:
            raise NvcfHelperError(
                f"cannot start {self.command[0]!r} ({exc.strerror}): check that it is an "
                "executable program"
            ) from None
        self.function.status = FunctionStatus.DEPLOYING
        logger.info("function %s is DEPLOYING (pid %d)", self.function.spec.name, self.process.pid)
        self._tasks = [
            asyncio.create_task(self._watch_exit()),
            asyncio.create_task(self._probe_until_healthy()),
        ]

    async def _watch_exit(self) -> None:
        assert self.process is not None
        self.returncode = await self.process.wait()
        if self._stopping:
            return
        self._kill_group(signal.SIGKILL)  # leftovers of the group would hold its sockets
        self._fail(f"the container process exited with status {self.returncode}")
        if self.on_exit is not None:
            self.on_exit()

    def _fail(self, reason: str) -> None:
        if self.function.status is FunctionStatus.ERROR:
            return
        self.function.status = FunctionStatus.ERROR
        self.function.error = reason
        logger.error("function %s is ERROR: %s", self.function.spec.name, reason)

    async def _probe_until_healthy(self) -> None:
        check = self.function.spec.health
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        while self.function.status is FunctionStatus.DEPLOYING:
            if time.monotonic() > deadline:
                self._fail(
                    f"the health check ({check.protocol} {check.uri} on port {check.port}) "
                    f"did not answer {check.expected_status_code} within "
                    f"{self.startup_timeout:g} s (last: {last}); check the health object of "
                    "the function definition and that the server listens on 127.0.0.1"
                )
                await self.stop()
                return
            last = await self._probe_once()
            if last == "healthy":
                if self.function.status is FunctionStatus.DEPLOYING:
                    self.function.status = FunctionStatus.ACTIVE
                    logger.info("function %s is ACTIVE", self.function.spec.name)
                return
            await asyncio.sleep(_PROBE_INTERVAL_SECONDS)

    async def _probe_once(self) -> str:
        check = self.function.spec.health
        if check.protocol == "gRPC":
            # Without a gRPC stack, an accepted connection is the best local evidence.
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", check.port), check.timeout_seconds
                )
            except (OSError, asyncio.TimeoutError) as exc:
                return f"cannot connect to port {check.port} ({exc})"
            writer.close()
            return "healthy"
        url = f"http://127.0.0.1:{check.port}{check.uri}"
        try:
            async with self.session.get(
                url, timeout=aiohttp.ClientTimeout(total=check.timeout_seconds)
            ) as response:
                await response.read()
                if response.status == check.expected_status_code:
                    return "healthy"
                return f"GET {url} answered {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return f"GET {url} failed ({type(exc).__name__}: {exc})"

    def _kill_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)  # the group this supervisor created

    def detach(self) -> None:
        """Stop probing and watching: the child's exit from now on is expected, not a crash."""
        self._stopping = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    async def stop(self, grace: float = 10.0) -> int | None:
        """Stop the command as ``docker stop`` does: SIGTERM to it, SIGKILL after ``grace`` s.

        Only the command's own process gets SIGTERM, as a container's first
        process does: signalling the whole group made tritonserver and each
        Python stub's helpers race the server's orderly shutdown (tracebacks,
        leaked shared memory). What is left of the group is killed at the end.

        Returns:
            The command's exit status, or ``None`` if it never started.
        """
        self.detach()
        if self.process is None:
            return None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except asyncio.TimeoutError:
                logger.warning("the container did not stop within %g s: killing it", grace)
                self._kill_group(signal.SIGKILL)
                await self.process.wait()
        self._kill_group(signal.SIGKILL)  # grandchildren that outlived their parent
        self.returncode = self.process.returncode
        if self.cleanup_command:
            await self._clean_up()
        return self.returncode

    async def _clean_up(self) -> None:
        try:
            cleaner = await asyncio.create_subprocess_exec(
                *self.cleanup_command,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.wait_for(cleaner.wait(), 30.0)
        except (OSError, asyncio.TimeoutError) as exc:
            logger.warning("%s failed: %s", " ".join(self.cleanup_command), exc)
