"""Run the ``tritonserver`` of the nvidia-pytriton wheel, set up for CPU-only machines.

:class:`TritonServer` builds the Python backend directory, puts this
interpreter's libpython and ``bin`` first, forwards ``NVCF-*`` headers, and
stops the server and its stubs by pid. pytriton is located, never imported.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.libpython import apply_libpython_fix, prepend_path_entry
from nvcf_helpers.names import HEADER_FORWARD_PATTERN
from nvcf_helpers.process import free_port, parent_death_signal, stop_process
from nvcf_helpers.triton.command import EXIT_TIMEOUT_SECONDS, TritonCommand

__all__ = [
    "HEADER_FORWARD_PATTERN",
    "TritonInstall",
    "TritonNotInstalledError",
    "TritonServer",
    "TritonServerError",
    "apply_libpython_fix",
    "configs_are_complete",
    "find_triton",
    "list_models",
    "make_backend_directory",
    "server_command",
    "server_environment",
]

_INSTALL_HINT = "install it: pip install 'nvcf-helpers[pytriton]'"
_TAIL_LINES = 200


class TritonNotInstalledError(NvcfHelperError):
    """The nvidia-pytriton wheel, which carries ``tritonserver``, is missing or incomplete."""


class TritonServerError(NvcfHelperError):
    """``tritonserver`` failed to start, exited early, or did not become ready.

    Attributes:
        summary: the one-line description, without the server's output.
        output: the last lines the server printed ("" when not relevant).
    """

    def __init__(self, summary: str, output: str = "") -> None:
        self.summary = summary
        self.output = output
        super().__init__(f"{summary}; its last output:\n{output}" if output else summary)


@dataclass(frozen=True)
class TritonInstall:
    """Where the parts of Triton live inside the nvidia-pytriton wheel.

    Attributes:
        root: the ``pytriton/tritonserver`` directory.
        server: the ``tritonserver`` executable.
        python_backend: the directory with ``libtriton_python.so`` and
            ``triton_python_backend_utils.py``.
        stub: ``triton_python_backend_stub`` built for the running Python.
        libs: the wheel's bundled shared libraries (``nvidia_pytriton.libs``).
    """

    root: Path
    server: Path
    python_backend: Path
    stub: Path
    libs: Path


def find_triton() -> TritonInstall:
    """Locate ``tritonserver`` and the Python backend in the nvidia-pytriton wheel.

    pytriton is found with :func:`importlib.util.find_spec`, without being
    imported (importing it is slow and pulls in numpy and zmq).

    Raises:
        TritonNotInstalledError: the wheel is not installed, or lacks a part
            (for example a stub for this Python version).
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonNotInstalledError(
            "the nvidia-pytriton package, which ships tritonserver, is not installed; "
            + _INSTALL_HINT
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    install = TritonInstall(
        root=root,
        server=root / "bin" / "tritonserver",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=package.parent / "nvidia_pytriton.libs",
    )
    needed = [
        install.server,
        install.python_backend / "libtriton_python.so",
        install.python_backend / "triton_python_backend_utils.py",
    ]
    for path in needed:
        if not path.is_file():
            raise TritonNotInstalledError(
                f"{path} is missing: the nvidia-pytriton install in {package} is incomplete; "
                f"reinstall it: pip install --force-reinstall 'nvcf-helpers[pytriton]'"
            )
    if not install.stub.is_file():
        raise TritonNotInstalledError(
            f"nvidia-pytriton has no Python backend stub for Python {version} ({install.stub}); "
            "run with a Python version it supports (3.8 to 3.13 for nvidia-pytriton 0.7.0)"
        )
    return install


def make_backend_directory(install: TritonInstall, destination: Path) -> Path:
    """Build a ``--backend-directory`` tree of symlinks into the wheel.

    Creates ``destination/python/`` with ``libtriton_python.so``,
    ``triton_python_backend_utils.py`` and ``triton_python_backend_stub``.
    Symlinks, not copies: the binaries find the wheel's shared libraries
    through an RPATH relative to their real location.

    Returns:
        ``destination``, to pass as ``--backend-directory``.
    """
    python_dir = destination / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {
        "libtriton_python.so": install.python_backend / "libtriton_python.so",
        "triton_python_backend_utils.py": install.python_backend / "triton_python_backend_utils.py",
        "triton_python_backend_stub": install.stub,
    }
    for name, target in links.items():
        link = python_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return destination


def server_environment(
    install: TritonInstall, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment ``tritonserver`` needs to run Python-backend models.

    A copy of ``base`` (``os.environ`` by default) with the libpython fix of
    :func:`apply_libpython_fix`, the wheel's bundled libraries on
    ``LD_LIBRARY_PATH``, and the running interpreter's ``bin`` directory first
    on ``PATH`` so that the stub imports the packages of this environment.
    """
    env = dict(os.environ if base is None else base)
    if install.libs.is_dir():
        env["LD_LIBRARY_PATH"] = prepend_path_entry(env.get("LD_LIBRARY_PATH"), str(install.libs))
    apply_libpython_fix(env)
    # The stub derives sys.prefix from the first python3 on PATH; use the
    # unresolved executable's directory so a virtualenv's packages are found.
    env["PATH"] = prepend_path_entry(env.get("PATH"), os.path.dirname(sys.executable))
    return env


def server_command(
    install: TritonInstall,
    model_repository: Path,
    backend_directory: Path,
    *,
    http_port: int,
    grpc_port: int,
    host: str = "127.0.0.1",
    disable_auto_complete_config: bool = False,
    exit_timeout_seconds: int = EXIT_TIMEOUT_SECONDS,
    extra_args: Iterable[str] = (),
) -> list[str]:
    """The ``tritonserver`` command line for serving ``model_repository`` here.

    :class:`TritonCommand`'s NVCF defaults (header forwarding, metrics off,
    the short exit timeout), with HTTP and gRPC on ``host`` and ``NVCF-*``
    forwarded on gRPC too (where clients send lowercase keys). ``extra_args``
    come last, so they can override anything before them.
    """
    return TritonCommand(
        str(model_repository),
        executable=str(install.server),
        http_port=http_port,
        http_address=host,
        grpc_port=grpc_port,
        grpc_address=host,
        backend_directory=str(backend_directory),
        grpc_forward_pattern=HEADER_FORWARD_PATTERN.lower(),
        auto_complete_config=not disable_auto_complete_config,
        exit_timeout_seconds=exit_timeout_seconds,
        extra_args=tuple(extra_args),
    ).argv()


def configs_are_complete(model_repository: str | os.PathLike[str]) -> bool:
    """Whether every model's ``config.pbtxt`` says all Triton's auto-complete would.

    Complete: it names its backend (or platform), its inputs and its outputs,
    and no ``model.py`` of it asks to complete its own config. Triton then
    starts without auto-complete, several times faster.
    """
    for model in Path(model_repository).iterdir():
        if not model.is_dir() or model.name.startswith((".", "__")):
            continue
        try:
            config = (model / "config.pbtxt").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        declared = {
            key: re.search(rf"^\s*{key}\s*[:\[{{]", config, re.MULTILINE) is not None
            for key in ("backend", "platform", "input", "output")
        }
        if not (declared["backend"] or declared["platform"]):
            return False
        if not (declared["input"] and declared["output"]):
            return False
        for source in model.glob("*/model.py"):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if "def auto_complete_config" in source.read_text(encoding="utf-8"):
                    return False
    return True


def list_models(model_repository: str | os.PathLike[str]) -> list[str]:
    """The model names in a repository: its visible sub-directories, sorted.

    Raises:
        TritonServerError: the path is not a directory, or holds no model
            directory.
    """
    path = Path(model_repository)
    if not path.is_dir():
        raise TritonServerError(
            f"model repository {path} does not exist or is not a directory; "
            "pass the directory that holds one sub-directory per model"
        )
    models = sorted(
        entry.name
        for entry in path.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != "__pycache__"
    )
    if not models:
        raise TritonServerError(
            f"model repository {path} has no model directories; each model needs "
            "<repository>/<model_name>/config.pbtxt and a version directory such as 1/"
        )
    return models


def _connect_host(host: str) -> str:
    """An address a client on this machine can connect to for a listen address."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard, not binding one
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


_BACKEND_DIR_PREFIX = "nvcf-triton-backends-"


def _remove_stale_backend_dirs() -> None:
    """Delete backend directories left by processes that were killed (SIGKILL).

    Each directory's name carries the pid of the process that made it; one
    whose process no longer exists can go.
    """
    with contextlib.suppress(OSError):
        for entry in Path(tempfile.gettempdir()).glob(f"{_BACKEND_DIR_PREFIX}*-*"):
            owner = entry.name[len(_BACKEND_DIR_PREFIX) :].split("-", 1)[0]
            if not owner.isdigit():
                continue
            try:
                os.kill(int(owner), 0)
            except ProcessLookupError:
                shutil.rmtree(entry, ignore_errors=True)
            except PermissionError:  # alive, owned by another user
                continue


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux; empty where /proc is missing)."""
    found: list[int] = []
    with contextlib.suppress(OSError, ValueError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _wait_gone(pids: Iterable[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if _running(pid)]
        if pending:
            time.sleep(0.05)


class TritonServer:
    """A ``tritonserver`` child process serving one model repository.

    Use it as a context manager (``start`` on enter, ``stop`` on exit). The
    server's output (stdout and stderr together) is read by a thread, copied
    line by line to ``stdout`` when one is given, and its last lines are kept
    for error messages (:meth:`output_tail`); with ``inherit_output`` the
    server writes both straight to this process's stdout instead (no
    copying thread, which matters when a model logs every request, but no
    tail in error messages either).

    On Linux (with ``die_with_parent``) the server gets SIGTERM when the
    thread that started it ends, so a killed parent does not leave it
    running: start it from a thread that outlives it (normally the main
    thread), or pass ``die_with_parent=False``.

    Args:
        model_repository: the directory holding one sub-directory per model.
        http_port: HTTP port; a free one when None.
        grpc_port: gRPC port; a free one when None.
        host: listen address for HTTP and gRPC.
        disable_auto_complete_config: skip Triton's config auto-complete
            (several times faster to start; every ``config.pbtxt`` must then be
            complete). ``None``: skip it when :func:`configs_are_complete`.
        exit_timeout_seconds: how long the server waits for open connections
            when stopped.
        extra_args: more ``tritonserver`` arguments, appended last.
        stdout: a text stream that receives the server's output, or None.
        die_with_parent: have Linux send the server SIGTERM when the
            starting thread ends.
        inherit_output: let the server write its stdout and stderr to this
            process's stdout directly (``stdout`` must then be None).
    """

    def __init__(
        self,
        model_repository: str | os.PathLike[str],
        *,
        http_port: int | None = None,
        grpc_port: int | None = None,
        host: str = "127.0.0.1",
        disable_auto_complete_config: bool | None = None,
        exit_timeout_seconds: int = EXIT_TIMEOUT_SECONDS,
        extra_args: Sequence[str] = (),
        stdout: IO[str] | None = None,
        die_with_parent: bool = True,
        inherit_output: bool = False,
    ) -> None:
        if inherit_output and stdout is not None:
            raise ValueError("inherit_output=True writes to this process's stdout: stdout=None")
        self.model_repository = Path(model_repository).resolve()
        self.host = host
        self.http_port = http_port if http_port is not None else free_port()
        self.grpc_port = grpc_port if grpc_port is not None else free_port()
        self.disable_auto_complete_config = disable_auto_complete_config
        self.exit_timeout_seconds = exit_timeout_seconds
        self.extra_args = tuple(extra_args)
        self._stdout = stdout
        self._inherit_output = inherit_output
        self._die_with_parent = die_with_parent and sys.platform == "linux"
        self._install: TritonInstall | None = None
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._backend_dir: Path | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._tail_lock = threading.Lock()
        self.command: list[str] = []

    @property
    def url(self) -> str:
        """The HTTP base URL, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{_connect_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """The gRPC address for tritonclient, e.g. ``127.0.0.1:8001``."""
        return f"{_connect_host(self.host)}:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        """The server's process id, or None before :meth:`start`."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The server's exit status, or None while it runs (or before start)."""
        return None if self._process is None else self._process.poll()

    def output_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the server printed."""
        with self._tail_lock:
            kept = list(self._tail)
        return "".join(kept[-lines:])

    def start(self) -> None:
        """Start ``tritonserver`` (without waiting for it to be ready).

        Raises:
            TritonNotInstalledError: the nvidia-pytriton wheel is missing.
            TritonServerError: the repository is unusable, the server is
                already running, or the process could not be started.
        """
        if self._process is not None and self._process.poll() is None:
            raise TritonServerError(f"tritonserver is already running (pid {self._process.pid})")
        list_models(self.model_repository)
        self._install = find_triton()
        _remove_stale_backend_dirs()
        self._backend_dir = Path(tempfile.mkdtemp(prefix=f"{_BACKEND_DIR_PREFIX}{os.getpid()}-"))
        make_backend_directory(self._install, self._backend_dir)
        self.command = server_command(
            self._install,
            self.model_repository,
            self._backend_dir,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            host=self.host,
            disable_auto_complete_config=(
                configs_are_complete(self.model_repository)
                if self.disable_auto_complete_config is None
                else self.disable_auto_complete_config
            ),
            exit_timeout_seconds=self.exit_timeout_seconds,
            extra_args=self.extra_args,
        )
        with self._tail_lock:
            self._tail.clear()
        try:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=None if self._inherit_output else subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                env=server_environment(self._install),
                preexec_fn=parent_death_signal() if self._die_with_parent else None,  # noqa: PLW1509 - only calls prctl
            )
        except OSError as exc:
            self._remove_backend_dir()
            raise TritonServerError(f"could not start {self.command[0]}: {exc}") from exc
        if not self._inherit_output:
            self._reader = threading.Thread(
                target=self._pump_output,
                name=f"tritonserver-{self._process.pid}-output",
                daemon=True,
            )
            self._reader.start()

    def _pump_output(self) -> None:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        for line in process.stdout:
            with self._tail_lock:
                self._tail.append(line)
            if self._stdout is not None:
                with contextlib.suppress(ValueError, OSError):  # the stream was closed
                    self._stdout.write(line)
                    self._stdout.flush()

    def _get(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2.0) as response:  # noqa: S310 - our server
                status: int = response.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def wait_ready(self, models: Iterable[str] | None = None, timeout: float = 60.0) -> None:
        """Block until the server and each model answer ready.

        Args:
            models: the models to wait for; every model directory of the
                repository when None.
            timeout: seconds to wait in all.

        Raises:
            TritonServerError: the server exited first, or was not ready in
                time; the message ends with the last lines it printed.
        """
        if self._process is None:
            raise TritonServerError("tritonserver was not started: call start() first")
        names = list(list_models(self.model_repository) if models is None else models)
        paths = ["/v2/health/ready", *(f"/v2/models/{name}/ready" for name in names)]
        deadline = time.monotonic() + timeout
        while paths:
            if self._process.poll() is not None:
                self._join_reader(timeout=2.0)
                raise TritonServerError(
                    f"tritonserver exited with status {self._process.returncode} before it was "
                    "ready",
                    self.output_tail(),
                )
            if self._get(paths[0]) == 200:
                paths.pop(0)
                continue
            if time.monotonic() > deadline:
                raise TritonServerError(
                    f"tritonserver was not ready within {timeout:g} s ({self.url}{paths[0]} "
                    "did not answer 200)",
                    self.output_tail(),
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Safe to call more than once, and when the server already exited.

        Returns:
            The server's exit status, or None if it was never started.
        """
        process = self._process
        if process is None:
            self._remove_backend_dir()
            return None
        stubs = _children(process.pid)
        stop_process(process, timeout)
        # The Python backend stubs notice their server is gone on their own; wait
        # for them so that nothing of the server is left when stop() returns.
        _wait_gone(stubs, timeout=5.0)
        self._join_reader(timeout=5.0)
        if process.stdout is not None:
            process.stdout.close()
        self._remove_backend_dir()
        return process.returncode

    def _join_reader(self, timeout: float) -> None:
        if self._reader is not None:
            self._reader.join(timeout=timeout)

    def _remove_backend_dir(self) -> None:
        if self._backend_dir is not None:
            shutil.rmtree(self._backend_dir, ignore_errors=True)
            self._backend_dir = None

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
