{%- set grpc = cookiecutter.protocol == "grpc" -%}
"""The image serves the model repository that tests/test_model.py serves, the way NVCF needs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments)."""
    found = []
    for line in (PROJECT / "Dockerfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments))
    return found


class TestImage:
    """What the container runs."""

    def test_serves_the_copied_repository(self) -> None:
        """tritonserver's --model-repository is where model_repository/ is copied."""
        copies = [shlex.split(a) for k, a in instructions() if k == "COPY"]
        destination = next(words[-1] for words in copies if "model_repository" in words)
        command = json.loads(next(a for k, a in instructions() if k == "CMD"))
        assert command[0] == "tritonserver"
        assert f"--model-repository={destination}" in command

    def test_forwards_nvcf_headers(self) -> None:
        """NVCF-* headers reach the model{{ ", and nvcf-* gRPC metadata too" if grpc }}."""
        command = json.loads(next(a for k, a in instructions() if k == "CMD"))
        assert "--http-header-forward-pattern=NVCF-.*" in command
{%- if grpc %}
        assert "--grpc-header-forward-pattern=nvcf-.*" in command
{%- endif %}

    def test_exits_inside_docker_stops_grace(self) -> None:
        """tritonserver stops waiting for NVCF's open connections before SIGKILL (10 s)."""
        command = json.loads(next(a for k, a in instructions() if k == "CMD"))
        (timeout,) = [a.split("=", 1)[1] for a in command if a.startswith("--exit-timeout-secs=")]
        assert int(timeout) < 10
{%- if grpc %}

    def test_grpc_function_on_tritons_grpc_port(self) -> None:
        """function.json makes a gRPC function served, health included, on the image's gRPC port."""
        spec = json.loads((PROJECT / "function.json").read_text())
        assert spec["inferenceUrl"] == "/grpc"
        assert spec["health"]["protocol"] == "gRPC"
        command = json.loads(next(a for k, a in instructions() if k == "CMD"))
        assert f"--grpc-port={spec['inferencePort']}" in command
        assert spec["health"]["port"] == spec["inferencePort"]
        exposed = [a for k, a in instructions() if k == "EXPOSE"]
        assert exposed == [str(spec["inferencePort"])]
{%- else %}

    def test_health_checks_the_model(self) -> None:
        """function.json's health check waits for the model, on the port the server uses."""
        spec = json.loads((PROJECT / "function.json").read_text())
        model = spec["inferenceUrl"].split("/")[3]
        assert (PROJECT / "model_repository" / model / "config.pbtxt").is_file()
        assert spec["health"]["uri"] == f"/v2/models/{model}/ready"
        command = json.loads(next(a for k, a in instructions() if k == "CMD"))
        assert f"--http-port={spec['inferencePort']}" in command
        assert spec["health"]["port"] == spec["inferencePort"]
{%- endif %}
