"""The child process supervisor: runs the container's entrypoint and checks its health.

The function becomes DEPLOYING when the command starts and ACTIVE when its
health check passes (checked as NVCF's worker does, every 500 ms at start-up:
see :mod:`nvcf_helpers.local.health`). After that the check runs every 10 s:
while it fails, the function stays ACTIVE but takes no new work (NVCF's
worker stops pulling from the queue), and the status API and the log say
which check failed, what answered and what to change. The function goes to
ERROR when the command exits (with its exit status and last output lines) or
is not healthy within the start-up timeout. Stopping sends SIGTERM to the
command, then SIGKILL to its whole process group after a grace period (what
``docker stop`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

import aiohttp

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.function import FunctionStatus, HealthVerdict, LocalFunction
from nvcf_helpers.local.health import (
    HealthTiming,
    Probe,
    check_health,
    explain,
    find_uri,
    listening_sockets,
)
from nvcf_helpers.process import parent_death_signal

__all__ = ["HealthTiming", "OutputTail", "Supervisor"]

logger = logging.getLogger("nvcf_helpers.local")

#: Lines of the container's output kept for the message when it exits.
TAIL_LINES = 20
_TAIL_LINE_CHARS = 500
# An unfinished line longer than this goes to the log store in pieces (16 KiB, as Docker).
_PENDING_BYTES = 16 * 1024
#: How long the last output of an exited container may take to arrive.
_DRAIN_SECONDS = 1.0


class OutputTail:
    """Copies the container's output to ours, keeping its last lines.

    The container's stdout and stderr share one pipe, so their lines keep the
    order they were written in (as on a terminal, and in NVCF's merged log
    view); they go to our stdout, while the local NVCF's own lines go to
    stderr. A thread does the copying, not the event loop: a container that
    writes a lot never waits for the gateway, and the gateway never waits
    for a slow terminal.
    """

    def __init__(
        self, lines: int = TAIL_LINES, on_line: Callable[[str], None] | None = None
    ) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._partial: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: Called (in the copying thread) with each complete line, for the log store.
        self.on_line = on_line

    def pipe(self, target_fd: int) -> int:
        """A write end for the child: what it writes there is copied to ``target_fd``."""
        read_end, write_end = os.pipe()
        thread = threading.Thread(
            target=self._copy, args=(read_end, target_fd), name="container-output", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        return write_end

    def _copy(self, source: int, target: int) -> None:
        try:
            while chunk := os.read(source, 65536):
                self._keep(source, chunk)
                with contextlib.suppress(OSError):  # a closed stdout must not stop the child
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(target, view) :]
        except OSError:
            pass
        finally:
            os.close(source)
            self._last_line(source)

    def _keep(self, source: int, chunk: bytes) -> None:
        on_line = self.on_line
        with self._lock:
            *complete, rest = (self._partial.pop(source, b"") + chunk).split(b"\n")
            self._lines.extend(_line(raw) for raw in complete[-(self._lines.maxlen or 1) :])
            if on_line is None:
                if rest:
                    self._partial[source] = rest[-4 * _TAIL_LINE_CHARS :]
                return
            while len(rest) > _PENDING_BYTES:  # an endless line is passed on in pieces
                complete.append(rest[:_PENDING_BYTES])
                rest = rest[_PENDING_BYTES:]
            if rest:
                self._partial[source] = rest
        for raw in complete:
            on_line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _last_line(self, source: int) -> None:
        """At the end of the output, an unfinished last line is a line of the log too."""
        with self._lock:
            rest = self._partial.get(source, b"")
        if rest and self.on_line is not None:
            self.on_line(rest.decode("utf-8", "replace").rstrip("\r"))

    def tail(self) -> tuple[str, ...]:
        """The last lines written, unfinished last lines included."""
        with self._lock:
            lines = [
                *self._lines,
                *(_line(rest[-4 * _TAIL_LINE_CHARS :]) for rest in self._partial.values()),
            ]
        return tuple(line for line in lines if line.strip())[-(self._lines.maxlen or 1) :]

    async def drained(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until everything the child wrote has been copied."""
        deadline = time.monotonic() + timeout
        while any(thread.is_alive() for thread in self._threads) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


def _line(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")[:_TAIL_LINE_CHARS]


def _exit_explained(returncode: int, starting: bool) -> tuple[str, str]:
    """The cause of an exit in words, and what to do about it."""
    restart = (
        "NVCF restarts a container that exits, so this deployment would sit in a restart "
        "loop and end in ERROR"
        if starting
        else "NVCF would restart it (a restart loop if it keeps exiting) and serve nothing "
        "from it meanwhile"
    )
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        cause = f"the container process was killed by signal {name}"
        if -returncode == signal.SIGKILL:
            restart += " (the kernel's out-of-memory killer sends SIGKILL: check its memory use)"
    else:
        cause = f"the container process exited with status {returncode}"
    if returncode == 0:
        return cause, (
            "the entrypoint must keep serving in the foreground, and it returned (did it "
            f"start the server in the background, or end its script?); {restart}"
        )
    return cause, (
        f"{restart}: run the entrypoint by hand and fix what stops it (its last output "
        "lines say why)"
    )


def _quoted(lines: Sequence[str]) -> str:
    if not lines:
        return "\n  (it wrote nothing)"
    return "".join(f"\n  | {line}" for line in lines)


class Supervisor:
    """Runs one command as the function's container and tracks its lifecycle and health.

    Args:
        function: the function whose status this supervisor drives.
        command: the entrypoint and its arguments.
        session: the HTTP session used for health checks.
        startup_timeout: seconds the command has to become healthy.
        environment: extra variables for the child (the ``NVCF_*`` identity).
        on_exit: called once if the child exits while it was supposed to run.
        cleanup_command: run after the child has stopped (``docker rm`` for an image).
        timing: how often the health is checked (NVCF's values by default).
        on_output_line: called with each complete line of the container's
            output (in the thread that copies it), besides the copy to stdout.
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
        timing: HealthTiming | None = None,
        on_output_line: Callable[[str], None] | None = None,
    ) -> None:
        self.function = function
        self.command = list(command)
        self.session = session
        self.startup_timeout = startup_timeout
        self.environment = dict(environment or {})
        self.on_exit = on_exit
        self.cleanup_command = list(cleanup_command or [])
        self.timing = timing or HealthTiming()
        self.process: asyncio.subprocess.Process | None = None
        self.returncode: int | None = None
        self.output = OutputTail(on_line=on_output_line)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the command and begin checking its health."""
        # The prefix NVCF_ is NVCF's: the caller's own NVCF_* variables (an API key, the
        # local NVCF's key) must not reach the container; the identity is set anew.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("NVCF_")}
        # Its output now goes through a pipe, not the terminal: without this, a Python
        # entrypoint's prints would arrive in 8 KB blocks (and out of order with stderr).
        env = {"PYTHONUNBUFFERED": "1", **inherited, **self.environment}
        output = self.output.pipe(1)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                stdout=output,
                stderr=output,
                start_new_session=True,  # its own process group, so stop() reaches grandchildren
                # SIGTERM if the local NVCF itself is killed outright.
                preexec_fn=parent_death_signal(),
            )
        except OSError as exc:
            raise NvcfHelperError(
                f"cannot start {self.command[0]!r} ({exc.strerror}): check that it is an "
                "executable program"
            ) from None
        finally:
            os.close(output)  # the child holds its own copies: EOF comes when it is gone
        self.function.set_status(FunctionStatus.DEPLOYING)
        logger.info("function %s is DEPLOYING (pid %d)", self.function.spec.name, self.process.pid)
        self._tasks = [
            asyncio.create_task(self._watch_exit()),
            asyncio.create_task(self._check_health()),
        ]

    # -- exit ---------------------------------------------------------------------------------

    async def _watch_exit(self) -> None:
        assert self.process is not None
        self.returncode = await self.process.wait()
        if self._stopping:
            return
        self._kill_group(signal.SIGKILL)  # leftovers of the group would hold its sockets
        await self.output.drained(_DRAIN_SECONDS)
        starting = self.function.status is FunctionStatus.DEPLOYING
        cause, fix = _exit_explained(self.returncode, starting)
        tail = self.output.tail()
        if self.function.fail(cause, fix, exit_status=self.returncode, last_output=tail):
            logger.error(
                "function %s is ERROR: %s; %s. The last lines of its output:%s",
                self.function.spec.name,
                cause,
                fix,
                _quoted(tail),
            )
        if self.on_exit is not None:
            self.on_exit()

    def _fail(self, reason: str, fix: str) -> None:
        if self.function.fail(reason, fix):
            logger.error("function %s is ERROR: %s; fix: %s", self.function.spec.name, reason, fix)

    # -- health -------------------------------------------------------------------------------

    async def _check_health(self) -> None:
        if await self._until_healthy():
            await self._keep_checking()

    async def _until_healthy(self) -> bool:
        """Check every ``startup_interval`` until healthy (ACTIVE) or out of time (ERROR)."""
        check = self.function.spec.health
        started = time.monotonic()
        deadline = started + self.startup_timeout
        hinted: set[str] = set()
        while self.function.status is FunctionStatus.DEPLOYING:
            probe = await check_health(check, self.session, self.timing)
            if self.function.status is not FunctionStatus.DEPLOYING:
                return False
            if probe.healthy:
                self.function.report_health(HealthVerdict(True, probe.request, probe.answer))
                self.function.set_status(FunctionStatus.ACTIVE)
                logger.info("function %s is ACTIVE", self.function.spec.name)
                return True
            if time.monotonic() >= deadline:
                cause, fix = await self._explain(probe, starting=True)
                self._fail(
                    f"the health check ({probe.request}) did not answer "
                    f"{check.expected_status_code} within {self.startup_timeout:g} s: {cause}",
                    fix,
                )
                await self.stop()
                return False
            due = time.monotonic() - started >= self.timing.hint_after
            if due and probe.kind not in hinted and await self._hint(probe):
                hinted.add(probe.kind)
            await asyncio.sleep(min(self.timing.startup_interval, deadline - time.monotonic()))
        return False

    async def _hint(self, probe: Probe) -> bool:
        """Point out a start-up mistake early, while the check keeps trying; ``True`` if told."""
        if probe.kind == "refused" and not await self._listening():
            return False  # nothing listens yet: most often a server still loading
        cause, fix = await self._explain(probe, starting=True)
        logger.warning(
            "function %s is not healthy yet: %s; fix: %s (it stays DEPLOYING until the "
            "check passes, or ERROR after %g s)",
            self.function.spec.name,
            cause,
            fix,
            self.startup_timeout,
        )
        return True

    async def _keep_checking(self) -> None:
        """Check every ``interval`` while ACTIVE, as NVCF's worker does once it pulls work."""
        next_at = time.monotonic()
        while True:
            next_at = max(next_at + self.timing.interval, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())
            if self.function.status is not FunctionStatus.ACTIVE:
                return
            probe = await check_health(self.function.spec.health, self.session, self.timing)
            if self.function.status is not FunctionStatus.ACTIVE:
                return
            await self._record(probe)

    async def _record(self, probe: Probe) -> None:
        function = self.function
        previous = function.health
        if probe.healthy:
            verdict = HealthVerdict(True, probe.request, probe.answer)
        elif previous is not None and not previous.healthy and previous.answer == probe.answer:
            verdict = HealthVerdict(
                False, probe.request, probe.answer, previous.cause, previous.fix
            )
        else:
            cause, fix = await self._explain(probe, starting=False)
            verdict = HealthVerdict(False, probe.request, probe.answer, cause, fix)
        changed = function.report_health(verdict)
        name = function.spec.name
        if probe.healthy and changed:
            logger.info(
                "function %s is healthy again (%s answered %s): taking requests",
                name,
                probe.request,
                probe.answer,
            )
        elif not probe.healthy and (changed or previous is None or previous.answer != probe.answer):
            logger.warning(
                "function %s is unhealthy: %s; fix: %s. It stays ACTIVE but takes no new "
                "requests (they wait in the queue) until its health check passes again "
                "(checked every %g s)",
                name,
                verdict.cause,
                verdict.fix,
                self.timing.interval,
            )

    async def _listening(self) -> list[tuple[str, int]]:
        """Where the container's processes listen (read from /proc, off the event loop)."""
        if self.process is None:
            return []
        return await asyncio.to_thread(listening_sockets, self.process.pid)

    async def _explain(self, probe: Probe, *, starting: bool) -> tuple[str, str]:
        """Gather what tells the mistakes apart (who listens where, which path answers)."""
        spec = self.function.spec
        listening = await self._listening() if probe.kind == "refused" else []
        suggested = await find_uri(spec, self.session) if probe.kind == "not_found" else None
        return explain(
            probe, spec.health, listening=listening, suggested_uri=suggested, starting=starting
        )

    # -- stopping -----------------------------------------------------------------------------

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
