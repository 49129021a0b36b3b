"""The top-level README's quickstarts, run as written (ports aside).

Tests may not use fixed ports, so the commands get free ones appended:
``serve`` its ``--http-port``/``--grpc-port``, ``client.py`` its ``--url``,
``local`` its ``--port`` (and the PyTriton ports through the environment
and the function definition), ``invoke`` its ``--base-url``. Everything else
runs exactly as README.md shows it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nvcf_helpers import RequestContext
from nvcf_helpers.testing import fake_request, free_port, wait_for_http

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _commands() -> list[str]:
    (block,) = [b for b in _blocks("sh") if "nvcf-helpers new" in b]
    lines = (line.split("  #")[0].strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class TestLibraryQuickstart:
    def test_the_python_example_runs(self, tmp_path: Path) -> None:
        """The README's handle() reads an asset, reports progress and writes a large output."""
        (code,) = _blocks("python")
        namespace: dict[str, object] = {}
        exec(compile(code, "README.md", "exec"), namespace)
        ctx = fake_request(tmp_path)
        assert ctx.asset_dir is not None
        assert ctx.large_output_dir is not None
        (ctx.asset_dir / "a1").write_bytes(b"abc")
        headers = {**ctx.to_headers(), "NVCF-FUNCTION-ASSET-IDS": "a1"}
        handle = namespace["handle"]
        assert callable(handle)
        assert handle(headers, b"{}") == b'{"ok": true}'
        assert (ctx.large_output_dir / "result.bin").read_bytes() == b"cba"
        progress = json.loads((ctx.large_output_dir / "progress").read_text())
        assert progress == {"id": ctx.request_id, "progress": 100}
        assert RequestContext.from_headers(headers).asset_ids == ("a1",)


@pytest.mark.integration
class TestCommandQuickstart:
    def test_every_command_runs(self, tmp_path: Path) -> None:  # noqa: PLR0912 - a branch per command kind
        """Each command of the shell quickstart runs and succeeds, in order."""
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
        cwd = tmp_path
        background: subprocess.Popen[bytes] | None = None
        ports: dict[str, int] = {}
        seen: list[str] = []
        try:
            for line in _commands():
                argv = shlex.split(line.rstrip("&").strip())
                seen.append(argv[0] if argv[0] != "nvcf-helpers" else " ".join(argv[:2]))
                if argv[0] == ".":
                    continue  # activating the venv: PATH already leads to it
                if argv[0] == "cd":
                    cwd = (cwd / argv[1]).resolve()
                    continue
                if argv[0] == "kill":
                    assert background is not None
                    background.send_signal(signal.SIGTERM)
                    assert background.wait(timeout=30) == 0
                    background = None
                    if "&& cd .." in line:
                        cwd = cwd.parent
                    continue
                if argv[:2] == ["nvcf-helpers", "serve"]:
                    ports["triton"] = free_port()
                    argv += ["--http-port", str(ports["triton"]), "--grpc-port", str(free_port())]
                elif argv[:2] == ["python", "client.py"]:
                    argv += ["--url", f"127.0.0.1:{ports['triton']}"]
                elif argv[:2] == ["nvcf-helpers", "local"]:
                    ports["api"] = free_port()
                    http = free_port()
                    spec = json.loads((cwd / "function.json").read_text())
                    spec["inferencePort"] = spec["health"]["port"] = http
                    (cwd / "function.json").write_text(json.dumps(spec))
                    env["PYTRITON_TRITON_CONFIG_HTTP_PORT"] = str(http)
                    env["PYTRITON_TRITON_CONFIG_GRPC_PORT"] = str(free_port())
                    env["PYTRITON_TRITON_CONFIG_METRICS_PORT"] = str(free_port())
                    argv[2:2] = ["--port", str(ports["api"])]
                elif argv[:2] == ["nvcf-helpers", "invoke"]:
                    argv += ["--base-url", f"http://127.0.0.1:{ports['api']}"]
                if line.endswith("&"):
                    background = subprocess.Popen(argv, cwd=cwd, env=env)
                    if argv[1] == "serve":
                        wait_for_http(f"http://127.0.0.1:{ports['triton']}/v2/health/ready")
                    else:
                        wait_for_http(
                            f"http://127.0.0.1:{ports['api']}/v2/nvcf/functions", timeout=10
                        )
                        _wait_active(ports["api"])
                    continue
                result = subprocess.run(
                    argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
                )
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                if argv[:2] == ["nvcf-helpers", "invoke"]:
                    outputs = json.loads(result.stdout.splitlines()[0])["outputs"]
                    assert outputs[0]["data"] == [1.0, 2.0, 3.0]
        finally:
            if background is not None:
                background.kill()
                background.wait()
        assert "python" in seen
        assert {"nvcf-helpers new", "nvcf-helpers serve", "nvcf-helpers local"} <= set(seen)
        assert "nvcf-helpers invoke" in seen


def _wait_active(port: int, timeout: float = 120.0) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"http://127.0.0.1:{port}/v2/nvcf/functions"
        with urllib.request.urlopen(url, timeout=5) as response:
            status = json.load(response)["functions"][0]["status"]
        if status == "ACTIVE":
            return
        assert status != "ERROR", "the function went to ERROR"
        time.sleep(0.2)
    raise TimeoutError("the function did not become ACTIVE")
