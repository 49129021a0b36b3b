"""--image: the docker run command line (no Docker engine exists here to run it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvcf_helpers import cli, parse_spec
from nvcf_helpers.local.docker import container_name, docker_command, docker_remove_command
from nvcf_helpers.local.function import LocalFunction


def _function(**extra: object) -> LocalFunction:
    spec = parse_spec(
        {
            "name": "echo",
            "inferenceUrl": "/echo",
            "inferencePort": 8000,
            "health": {
                "protocol": "HTTP",
                "uri": "/health",
                "port": 8001,
                "timeout": "PT10S",
                "expectedStatusCode": 200,
            },
            "containerImage": "nvcr.io/org/echo:1",
            **extra,
        }
    )
    return LocalFunction(spec, function_id="0123456789ab-fn", version_id="v1")


class TestDockerCommand:
    """The container runs with NVCF's environment, its request directories and its ports."""

    def test_command_line(self) -> None:
        """Ports on loopback, the root at the same path, environment, then image and args."""
        function = _function(
            containerEnvironment=[{"key": "MODEL", "value": "small"}],
            containerArgs="--workers 2 --log 'a b'",
        )
        argv = docker_command(function, "nvcr.io/org/echo:1", Path("/tmp/nvcf-local-x"))
        assert argv[:5] == ["docker", "run", "--rm", "--name", "nvcf-local-01234567"]
        assert argv[5:9] == [
            "--publish",
            "127.0.0.1:8000:8000",
            "--publish",
            "127.0.0.1:8001:8001",
        ]
        assert argv[9:11] == ["--volume", "/tmp/nvcf-local-x:/tmp/nvcf-local-x"]
        env = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--env"]
        assert env[0] == "MODEL=small"
        assert "NVCF_FUNCTION_ID=0123456789ab-fn" in env
        assert "NVCF_FUNCTION_VERSION_ID=v1" in env
        assert argv[-5:] == ["nvcr.io/org/echo:1", "--workers", "2", "--log", "a b"]

    def test_remove_command_names_the_same_container(self) -> None:
        """The clean-up removes exactly the container the run command named."""
        function = _function()
        assert docker_remove_command(function) == [
            "docker",
            "rm",
            "--force",
            container_name(function),
        ]


class TestImageOption:
    """--image is refused clearly where it cannot work."""

    @pytest.fixture
    def spec(self, tmp_path: Path) -> Path:
        path = tmp_path / "function.json"
        path.write_text('{"name": "f", "inferenceUrl": "/i", "containerImage": "x"}')
        return path

    def test_without_docker(
        self,
        spec: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """No docker program on PATH: say so and show the command form instead."""
        monkeypatch.setenv("PATH", str(tmp_path))
        assert cli.main(["local", "--spec", str(spec), "--image", "x"]) == 1
        err = capsys.readouterr().err
        assert "--image needs a Docker engine" in err
        assert "-- python server.py" in err

    def test_image_and_command(self, spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An image and a command together are ambiguous."""
        assert cli.main(["local", "--spec", str(spec), "--image", "x", "--", "python"]) == 1
        assert "give either --image or a command" in capsys.readouterr().err
