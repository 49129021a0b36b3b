"""The Triton images' own CMD, run directly (there is no Docker engine here).

Each CMD is taken from its Dockerfile as the image would run it; only what
the image's filesystem and network decide is mapped to this machine: the
model repository that COPY puts at /models and the ports (free ones, never
the fixed 8000). Every other flag reaches the wheel's tritonserver as written,
so a flag it does not know fails the test.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path

import pytest

from nvcf_helpers.scaffold import generate
from nvcf_helpers.triton import TritonCommand, TritonServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _cmd(dockerfile: Path) -> list[str]:
    (line,) = re.findall(r"^CMD (\[.*\])$", dockerfile.read_text(encoding="utf-8"), re.M)
    argv: list[str] = json.loads(line)
    return argv


def _image_flags(argv: list[str]) -> list[str]:
    """The CMD's flags less the repository path and the port, which the test supplies."""
    assert argv[0] == "tritonserver"
    assert "--model-repository=/models" in argv
    assert "--http-port=8000" in argv
    return [a for a in argv[1:] if a not in ("--model-repository=/models", "--http-port=8000")]


def _serve_and_stop(repository: Path, flags: list[str]) -> float:
    """Serve with the image's flags, keep one idle connection open, return the exit time."""
    server = TritonServer(repository, extra_args=flags)
    with server:
        server.wait_ready(timeout=120)
        idle = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=5)
        idle.request("GET", "/v2/health/ready")
        assert idle.getresponse().read() == b""
        start = time.monotonic()
        server.stop(timeout=60)
        elapsed = time.monotonic() - start
        idle.close()
    return elapsed


class TestTritonContainerCmd:
    def test_generated_cmd_serves_and_exits_before_docker_kills_it(self, tmp_path: Path) -> None:
        """triton-container's CMD serves its repository and exits within docker stop's 10 s."""
        project = generate("triton-container", tmp_path, no_input=True)
        flags = _image_flags(_cmd(project / "Dockerfile"))
        assert "--exit-timeout-secs=5" in flags
        assert _serve_and_stop(project / "model_repository", flags) < 10

    @pytest.mark.parametrize("example", ["digits", "pipeline"])
    def test_byom_example_cmd_is_the_model(self, example: str) -> None:
        """The BYOM examples' image CMD is the one TritonCommand writes, word for word."""
        dockerfile = ROOT / "examples" / "byom" / example / "Dockerfile"
        assert _cmd(dockerfile) == TritonCommand.for_image().argv()

    def test_generated_cmd_reads_back_as_the_model(self, tmp_path: Path) -> None:
        """check reads the generated CMD back into the same TritonCommand it came from."""
        project = generate("triton-container", tmp_path, no_input=True)
        assert TritonCommand.parse(_cmd(project / "Dockerfile")) == TritonCommand.for_image()
