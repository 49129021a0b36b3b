"""Run the examples the way their READMEs say, on free ports, in a fresh copy.

Each example's README has a ``## Run it locally`` section whose ``console``
block holds the commands a new user types (``$ ...``): an optional train or
prepare step, ``nvcf-helpers local --spec function.json -- COMMAND``, and a
client (``python client.py`` or ``nvcf-helpers invoke``). The fixtures here run
exactly those commands, with only what a test must change: a copy of the
example in a temporary directory (as a fresh clone would have it), free
ports instead of 8000/8787, and ``--base-url`` pointing the client at the
local NVCF.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nvcf_helpers.cli import build_parser
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.spec import load_spec
from nvcf_helpers.testing import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = [
    "byom/digits",
    "byom/pipeline",
    "pytriton/digits",
    "pytriton/streaming",
    "pytriton/long_running",
]
# What a fresh clone does not have: build products and the outputs of train/prepare steps.
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "lm.json", "tune-output", "nvcf-output-*", "*.npy", "nvcf_helpers"
)
_PREPARED = {
    "pytriton/long_running": ["dataset.npz"],
    # The server must serve what `python train.py` writes, not the committed copy.
    "byom/digits": ["model_repository/digits/1/digits.npz"],
}


def load_module(path: Path, name: str) -> ModuleType:
    """Import a module of an example from its file, without touching ``sys.path`` for good."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the example's own sibling imports (lm, mlp, train)
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ left in the checkout's examples
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
        sys.dont_write_bytecode = writes_bytecode
    return module


def readme_commands(example: str) -> list[list[str]]:
    """The commands of the README's ``## Run it locally`` section, split as a shell would."""
    text = (EXAMPLES / example / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Run it locally\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, f"{example}/README.md has no '## Run it locally' section"
    block = re.search(r"```console\n(.*?)```", section.group(1), re.S)
    assert block, f"{example}/README.md: the 'Run it locally' section has no console block"
    return [
        shlex.split(line[2:], comments=True)
        for line in block.group(1).splitlines()
        if line.startswith("$ ")
    ]


def as_argv(command: list[str]) -> list[str]:
    """A README command as this test run can start it (this Python, this nvcf-helpers)."""
    if command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    if command[0] == "nvcf-helpers":
        return [sys.executable, "-m", "nvcf_helpers", *command[1:]]
    raise AssertionError(f"README command {command} starts with neither python nor nvcf-helpers")


def fresh_copy(example: str, destination: Path) -> Path:
    """The example as a fresh clone has it, copied under ``destination``."""
    target = destination / example.replace("/", "-")
    shutil.copytree(EXAMPLES / example, target, ignore=_NOT_IN_A_CLONE)
    for name in _PREPARED.get(example, []):
        (target / name).unlink(missing_ok=True)
    return target


def run_command(
    command: list[str], cwd: Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a README command to completion; fail the test with its output if it fails."""
    result = subprocess.run(
        as_argv(command), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"`{shlex.join(command)}` exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


@dataclass
class RunningExample:
    """An example running under ``nvcf-helpers local``, started from its README."""

    name: str
    directory: Path
    nvcf: LocalNvcf
    port: int
    log: Path
    commands: list[list[str]]

    @property
    def url(self) -> str:
        """The container's own address (what NVCF's worker talks to)."""
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        """Everything the local NVCF and the container printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def client_command(self, command: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
        """Run a README client command against this local NVCF."""
        return run_command([*command, *extra, "--base-url", self.nvcf.base_url], self.directory)


def _local_spec(directory: Path, spec_path: str, port: int) -> dict[str, Any]:
    return load_spec(directory / spec_path).on_port(port).to_json()


def container_env(port: int) -> dict[str, str]:
    """PyTriton's port variables: HTTP on ``port``, the others free, all on 127.0.0.1."""
    prefix = "PYTRITON_TRITON_CONFIG_"
    return {
        f"{prefix}HTTP_PORT": str(port),
        f"{prefix}GRPC_PORT": str(free_port()),
        f"{prefix}METRICS_PORT": str(free_port()),
        f"{prefix}HTTP_ADDRESS": "127.0.0.1",
        f"{prefix}GRPC_ADDRESS": "127.0.0.1",
        f"{prefix}METRICS_ADDRESS": "127.0.0.1",
    }


def _container_argv(command: list[str], port: int) -> tuple[list[str], dict[str, str]]:
    """The container command with free ports: flags for ``serve``, variables for PyTriton."""
    argv = as_argv(command)
    if command[:2] == ["nvcf-helpers", "serve"]:
        return [*argv, "--http-port", str(port), "--grpc-port", str(free_port())], {}
    return argv, container_env(port)


@contextmanager
def run_example(example: str, workdir: Path) -> Iterator[RunningExample]:
    """Follow the README: a fresh copy, the prepare step if any, then ``nvcf-helpers local``."""
    commands = readme_commands(example)
    directory = fresh_copy(example, workdir)
    local_index = next(i for i, c in enumerate(commands) if c[:2] == ["nvcf-helpers", "local"])
    for command in commands[:local_index]:
        run_command(command, directory)
    local_args = build_parser().parse_args(commands[local_index][1:])
    container = list(local_args.container_command)
    if container and container[0] == "--":
        container = container[1:]
    port = free_port()
    argv, env = _container_argv(container, port)
    log = workdir / f"{example.replace('/', '-')}.log"
    nvcf = LocalNvcf(
        _local_spec(directory, local_args.spec, port),
        argv,
        cwd=directory,
        env=env,
        output=log,
        max_response_bytes=local_args.max_response_bytes,
        max_concurrency=local_args.max_concurrency,
        startup_timeout=120.0,
    )
    with nvcf:
        yield RunningExample(example, directory, nvcf, port, log, commands[local_index + 1 :])
