"""Each generated README's rehearsal on the local NVCF, run as a user types it.

The README shows, in the section on the local NVCF, ``nvcf-helpers local ... &``,
``function create``, ``deploy create FUNCTION_ID VERSION_ID --wait``,
``invoke`` and ``kill %1``. These tests take those lines from the baked README
and run them, changing only what a test must: the local NVCF listens on a free
port (``--port 0 --info-file``) that the later commands reach through
``NVCF_BASE_URL``, the ids ``function create`` printed replace the
placeholders, PyTriton's fixed ports (8000-8002, the port ``function.json``
names) become free ones, and ``local`` runs as a child process stopped with
SIGTERM instead of the shell's ``&`` and ``kill %1``.

The ``protocol=grpc`` variants are left out: their rehearsal invokes through
``python client.py``, which the projects' own tests run (test_projects.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from template_support import bake_ok

from nvcf_helpers.process import free_port

pytestmark = pytest.mark.integration

_SECTION = re.compile(
    r"^## (?:Rehearse the deployment|Create, deploy and invoke it) on the local NVCF\n"
    r"(.*?)(?=^## )",
    flags=re.MULTILINE | re.DOTALL,
)
_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
# The README's example request body for the Triton templates, which generate no request.json.
_EXAMPLE_REQUEST = re.compile(r"`(\{\"inputs\": .*?\})`", flags=re.DOTALL)
# What the generated Triton models answer: the input, unchanged, as OUTPUT0.
_TRITON_OUTPUTS = [
    {"name": "OUTPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}
]
_TIMEOUT = 120  # seconds for any one command; the whole file takes about a minute


def rehearsal(readme: str) -> list[list[str]]:
    """The command lines of the README's local-NVCF section, split into words."""
    section = _SECTION.search(readme)
    assert section is not None, "the README has no section on the local NVCF"
    commands = []
    for block in _BLOCK.findall(section.group(1)):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def start_local(
    words: list[str], cwd: Path, env: dict[str, str], scratch: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``nvcf-helpers local`` on a free port; returns the process and its base URL."""
    if words[-1] == "&":
        words = words[:-1]
    info = scratch / "local.json"
    ours = ["--port", "0", "--info-file", str(info)]
    # Before `--`: what follows it is the container's command.
    at = words.index("--") if "--" in words else len(words)
    argv = [*words[:at], *ours, *words[at:]]
    log = (scratch / "local.log").open("wb")
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"{shlex.join(argv)} exited {process.returncode}:\n{output(scratch)}")
        try:
            base_url: str = json.loads(info.read_text())["baseUrl"]
        except (OSError, ValueError, KeyError):
            assert time.monotonic() < deadline, f"no {info} in 30 s:\n{output(scratch)}"
            time.sleep(0.1)
            continue
        return process, base_url


def output(scratch: Path) -> str:
    """The last lines of the local NVCF's output."""
    log = scratch / "local.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def stop(process: subprocess.Popen[bytes]) -> int:
    """Stop the local NVCF by its pid (SIGTERM), as `kill %1` does; returns its status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path: PyTriton's Unix sockets under it must fit 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="pytriton-") as path:
        yield Path(path)


def pytriton_on_free_ports(project: Path, env: dict[str, str], home: Path) -> None:
    """Move PyTriton off 8000-8002: its environment, and the port function.json names."""
    http = free_port()
    env["PYTRITON_TRITON_CONFIG_HTTP_PORT"] = str(http)
    env["PYTRITON_TRITON_CONFIG_GRPC_PORT"] = str(free_port())
    env["PYTRITON_TRITON_CONFIG_METRICS_PORT"] = str(free_port())
    env["PYTRITON_HOME"] = str(home)
    spec_path = project / "function.json"
    spec = json.loads(spec_path.read_text())
    assert spec["inferencePort"] == spec["health"]["port"] == 8000
    spec["inferencePort"] = spec["health"]["port"] = http
    spec_path.write_text(json.dumps(spec, indent=2))


def expected_answer(template: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
    """The invoke command printed what the generated model answers (its tests say so)."""
    if template == "fastapi-container":
        scale = request.get("scale", 1.0)
        assert answer == {"values": [value * scale for value in request["values"]]}
    else:
        assert request["inputs"][0]["data"] == [1, 2, 3]
        assert answer["outputs"] == _TRITON_OUTPUTS, answer


@pytest.mark.parametrize(
    "template", ["triton-model", "triton-container", "pytriton-container", "fastapi-container"]
)
def test_readme_rehearsal_runs(
    cookies: Any, tmp_path: Path, short_tmp: Path, template: str
) -> None:
    """Create, deploy and invoke on the local NVCF as the README says: the model answers."""
    project = bake_ok(cookies, template)
    readme = (project / "README.md").read_text()
    commands = rehearsal(readme)
    kinds = [words[:2] if words[0] == "nvcf-helpers" else words for words in commands]
    assert kinds == [
        ["nvcf-helpers", "local"],
        ["nvcf-helpers", "function"],
        ["nvcf-helpers", "deploy"],
        ["nvcf-helpers", "invoke"],
        *([["kill", "%1"]] if template != "fastapi-container" else []),
    ], commands

    request_file = project / "request.json"
    if not request_file.exists():
        example = _EXAMPLE_REQUEST.search(readme)
        assert example is not None, "the README shows no example request.json"
        request_file.write_text(example.group(1))
    request = json.loads(request_file.read_text())

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NVCF_BASE_URL", "NVCF_API_KEY", "NGC_API_KEY", "NVCF_LOCAL_API_KEY"}
    }
    # `nvcf-helpers` and `python` in the README are this environment's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if template == "pytriton-container":
        pytriton_on_free_ports(project, env, short_tmp)

    local, base_url = start_local(commands[0], project, env, tmp_path)
    env["NVCF_BASE_URL"] = base_url
    ids: dict[str, str] = {}
    try:
        for words in commands[1:]:
            if words == ["kill", "%1"]:
                break
            argv = [ids.get(word, word) for word in words]
            run = subprocess.run(
                argv,
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
            assert run.returncode == 0, (
                f"{shlex.join(argv)}:\n{run.stdout}{run.stderr}\n--- local:\n{output(tmp_path)}"
            )
            if words[1:3] == ["function", "create"]:
                function_id = re.search(r"^function id\s+(\S+)$", run.stdout, flags=re.MULTILINE)
                version_id = re.search(r"^version id\s+(\S+)$", run.stdout, flags=re.MULTILINE)
                assert function_id is not None, run.stdout
                assert version_id is not None, run.stdout
                ids = {"FUNCTION_ID": function_id.group(1), "VERSION_ID": version_id.group(1)}
            elif words[1] == "invoke":
                expected_answer(template, request, json.loads(run.stdout))
    finally:
        status = stop(local)
    assert status in (0, -signal.SIGTERM), output(tmp_path)
