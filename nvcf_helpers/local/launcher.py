"""Start ``nvcf-helpers local`` from Python, as a subprocess: standard library only.

Also the guard that ``local`` leaves beside its container: a small process
that waits for ``local`` to die and, if it dies without cleaning up (SIGKILL,
a crash), stops the container's whole process group and removes the
temporary root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from nvcf_helpers.client import NvcfClient
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.process import parent_death_signal, stop_process
from nvcf_helpers.spec import FunctionSpec

__all__ = [
    "GUARD_BOOTSTRAP",
    "LocalNvcf",
    "LocalNvcfError",
    "guard",
    "guard_preexec",
    "start_guard",
]

logger = logging.getLogger("nvcf_helpers.local")


_BOOTSTRAP = (
    "import runpy, sys; del sys.path[0]; "
    "runpy.run_module('nvcf_helpers.local', run_name='__main__', alter_sys=True)"
)


#: ``python -c`` code that runs :func:`guard` with the command line's arguments.
GUARD_BOOTSTRAP = (
    "import sys; del sys.path[0]; from nvcf_helpers.local.launcher import guard; "
    "sys.exit(guard(sys.argv[1:]))"
)


class LocalNvcfError(NvcfHelperError):
    """The local NVCF did not start, or its function did not become ACTIVE."""


def guard_preexec() -> Callable[[], None] | None:
    """The ``preexec_fn`` of a guard: SIGTERM held back, and sent when its parent dies.

    Holding SIGTERM back from before ``exec`` means a parent that dies while
    the guard starts cannot kill it before it can clean up. ``None`` off Linux.
    """
    parent_death = parent_death_signal(signal.SIGTERM)
    if parent_death is None:
        return None

    def prepare() -> None:  # pragma: no cover - runs in the child between fork and exec
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        parent_death()

    return prepare


#: What a guard gives the container's group between SIGTERM and SIGKILL.
GUARD_GRACE_SECONDS = 5.0


async def start_guard(
    pid: int, root: Path, cleanup: Sequence[str]
) -> asyncio.subprocess.Process | None:
    """Start the guard that stops container ``pid``'s group if this process is killed.

    ``None`` where no guard can run (no parent-death signal on this system).
    """
    preexec = guard_preexec()
    if preexec is None:
        return None
    argv = [str(os.getpid()), str(pid), f"{GUARD_GRACE_SECONDS:g}", str(root)]
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            GUARD_BOOTSTRAP,
            *argv,
            *cleanup,
            stdin=asyncio.subprocess.DEVNULL,
            # Not the caller's pipes: a reader waiting for their end would wait for it too.
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal is for this process, not it
            preexec_fn=preexec,
        )
    except OSError as exc:
        logger.warning(
            "cannot start the clean-up guard (%s): if this process is killed outright, stop "
            "the container's processes yourself",
            exc,
        )
        return None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def guard(argv: Sequence[str]) -> int:
    """Wait for the parent to die; then stop the container's group and remove the root.

    ``argv``: the parent's pid, the container's process group, the grace in
    seconds between SIGTERM and SIGKILL, the temporary root, then an optional
    clean-up command (``docker rm --force NAME``). The parent ends the guard
    with SIGKILL once it has cleaned up itself; SIGTERM (the parent-death
    signal, see :func:`guard_preexec`) makes it act.
    """
    parent, group, grace, root, *cleanup = argv
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    if os.getppid() == int(parent):
        signal.sigwait({signal.SIGTERM})
    _signal_group(int(group), signal.SIGTERM)
    deadline = time.monotonic() + float(grace)
    while _group_alive(int(group)) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(int(group), signal.SIGKILL)
    if cleanup:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                cleanup,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
    shutil.rmtree(root, ignore_errors=True)
    return 0


class LocalNvcf:
    """A running ``nvcf-helpers local``: starts it, waits for ACTIVE, stops it with its child.

    Example::

        with LocalNvcf("function.json", ["python", "server.py"]) as nvcf:
            result = nvcf.client().invoke(nvcf.function_id, {"text": "hi"})

    Args:
        spec: a ``function.json`` path, a parsed :class:`FunctionSpec`, or its
            dict, registered and deployed at start; ``None`` starts an empty
            local NVCF (register and deploy through its API).
        command: the container's entrypoint and arguments (``{port}`` in them
            becomes each instance's own port).
        image_commands: the command that runs each other ``containerImage``.
        port: the API's port; 0 picks a free one.
        api_key: require this bearer key, as NVCF does.
        max_concurrency: requests the container gets at once (others queue).
        max_response_bytes: largest inline body; bigger results come as a zip (302).
        startup_timeout: seconds the container has to pass its health check.
        output: where the local NVCF's and the container's output go (a path,
            an open file); ``None`` inherits this process's stdout/stderr.
        cwd: working directory of the command.
        env: extra environment variables for the command.
        extra_args: more ``nvcf-helpers local`` options.
        die_with_parent: on Linux, have the local NVCF (and so its container)
            stopped with SIGTERM when the thread that started it ends, so a
            killed test run leaves nothing behind; start it from a thread that
            outlives it (normally the main thread), or pass ``False``.
    """

    def __init__(
        self,
        spec: str | Path | FunctionSpec | Mapping[str, Any] | None,
        command: Sequence[str] = (),
        *,
        image_commands: Mapping[str, Sequence[str]] | None = None,
        port: int = 0,
        api_key: str | None = None,
        max_concurrency: int | None = None,
        max_response_bytes: int | None = None,
        startup_timeout: float = 120.0,
        output: str | Path | IO[Any] | None = None,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        die_with_parent: bool = True,
    ) -> None:
        self._spec = spec
        self.command = list(command)
        self.image_commands = {image: list(argv) for image, argv in (image_commands or {}).items()}
        self.port = port
        self.api_key = api_key
        self.max_concurrency = max_concurrency
        self.max_response_bytes = max_response_bytes
        self.startup_timeout = startup_timeout
        self.output = output
        self.cwd = cwd
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.process: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        #: What the local NVCF wrote once its API listened: baseUrl, ids, pid, root, grpcPort.
        self.info: dict[str, Any] | None = None
        self.function_id = ""
        self.version_id = ""
        #: The local NVCF's temporary root (request directories, results), once it runs.
        self.root: Path | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._output_file: IO[Any] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> LocalNvcf:
        """Start the local NVCF and (unless ``wait`` is false) wait until its function is ACTIVE.

        With ``wait=False`` it returns as soon as the API answers, while the
        function may still be DEPLOYING; :meth:`wait_for_status` waits later.

        Raises:
            LocalNvcfError: it exited, or the function went to ERROR or did not
                become ACTIVE within ``startup_timeout`` (the message says which).
        """
        self._workdir = tempfile.TemporaryDirectory(prefix="nvcf-local-launch-")
        workdir = Path(self._workdir.name)
        info_path = workdir / "info.json"
        # Not `python -m`: that puts the working directory first on sys.path, and a
        # project directory often holds a vendored nvcf_helpers without `local`.
        argv = [sys.executable, "-c", _BOOTSTRAP]
        if self._spec is not None:
            argv += ["--spec", str(self._spec_path(workdir))]
        for image, command in self.image_commands.items():
            argv += ["--image-command", f"{image}={shlex.join(command)}"]
        argv += ["--port", str(self.port), "--info-file", str(info_path)]
        argv += ["--startup-timeout", f"{self.startup_timeout:g}"]
        if self.max_concurrency is not None:
            argv += ["--max-concurrency", str(self.max_concurrency)]
        if self.max_response_bytes is not None:
            argv += ["--max-response-bytes", str(self.max_response_bytes)]
        argv += self.extra_args
        if self.command:
            argv += ["--", *self.command]
        env = {**os.environ, **self.env}
        if self.api_key is not None:
            env["NVCF_LOCAL_API_KEY"] = self.api_key  # not on the command line, where ps shows it
        stream: IO[Any] | None
        if isinstance(self.output, (str, Path)):
            self._output_file = stream = Path(self.output).open("ab")  # noqa: SIM115 - closed in stop()
        else:
            stream = self.output
        self.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT if stream else None,
            preexec_fn=parent_death_signal() if self.die_with_parent else None,  # noqa: PLW1509 - a bare prctl call, resolved before the fork
        )
        try:
            self._wait_for_info(info_path)
            if wait and self._spec is not None:
                # A little longer than the server's own deadline, so its ERROR (which
                # says why) arrives before this side gives up.
                self.wait_for_status("ACTIVE", self.startup_timeout + 10.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _spec_path(self, workdir: Path) -> Path:
        assert self._spec is not None
        if isinstance(self._spec, (str, Path)):
            return Path(self._spec).resolve()
        text = (
            self._spec.render()
            if isinstance(self._spec, FunctionSpec)
            else json.dumps(dict(self._spec))
        )
        path = workdir / "function.json"
        path.write_text(text, encoding="utf-8")
        return path

    def _wait_for_info(self, info_path: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60.0
        while not info_path.exists():
            if self.process.poll() is not None:
                raise LocalNvcfError(
                    f"nvcf-helpers local exited with status {self.process.returncode} before "
                    "serving its API; see its output for the reason"
                )
            if time.monotonic() > deadline:
                raise LocalNvcfError("nvcf-helpers local did not start its API within 60 s")
            time.sleep(0.02)
        info = json.loads(info_path.read_text(encoding="utf-8"))
        self.info = info
        self.base_url = info["baseUrl"]
        self.function_id = info.get("functionId", "")
        self.version_id = info.get("versionId", "")
        self.root = Path(info["root"]) if info.get("root") else None

    def function(self) -> dict[str, Any]:
        """The function as ``GET /v2/nvcf/functions`` lists it (status included)."""
        functions = self.client().list_functions()
        if not functions:
            raise LocalNvcfError("the local NVCF lists no function")
        return functions[0]

    def status(self) -> str:
        """The function's status: INACTIVE, DEPLOYING, ACTIVE or ERROR."""
        return str(self.function()["status"])

    def wait_for_status(self, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the function has status ``wanted``; returns the function's description.

        Raises:
            LocalNvcfError: it reached ERROR instead, the process exited, or time ran out.
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise LocalNvcfError(
                    f"nvcf-helpers local exited with status {self.process.returncode}"
                )
            function = self.function()
            if function["status"] == wanted:
                return function
            if function["status"] == "ERROR":
                reason = function.get("healthInfo", {}).get("error", "see the container output")
                raise LocalNvcfError(f"function {function['name']} went to ERROR: {reason}")
            if time.monotonic() > deadline:
                raise LocalNvcfError(
                    f"function {function['name']} is still {function['status']} after "
                    f"{timeout:g} s, not {wanted}"
                )
            time.sleep(0.05)

    def client(self, *, timeout: float = 30.0) -> NvcfClient:
        """A client for this local NVCF, with its API key."""
        if not self.base_url:
            raise LocalNvcfError("the local NVCF is not running: call start() first")
        return NvcfClient(self.base_url, self.api_key, timeout=timeout)

    @property
    def pid(self) -> int | None:
        """The process id of ``nvcf-helpers local``."""
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop it and return its exit status; nothing of it is left afterwards.

        SIGTERM: it answers every caller (results that land within a short
        grace, else 503), stops its container and exits, within 10 s. After
        ``timeout`` seconds it is killed, and its guard stops the container;
        its temporary root is removed either way.
        """
        returncode = None
        if self.process is not None:
            returncode = stop_process(self.process, timeout)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._output_file is not None:
            self._output_file.close()
            self._output_file = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        return returncode

    def __enter__(self) -> LocalNvcf:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
