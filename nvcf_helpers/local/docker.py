"""Running the function's container image with Docker, where a Docker engine exists.

``nvcf-helpers local --image IMAGE`` runs ``docker run`` as the supervised
child instead of a command. The local NVCF's temporary root is mounted at the
same path inside the container, so the ``NVCF-ASSET-DIR`` and
``NVCF-LARGE-OUTPUT-DIR`` headers name paths that exist on both sides; the
inference and health ports are published on 127.0.0.1 only.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from nvcf_helpers.local.function import LocalFunction

__all__ = ["container_name", "docker_command", "docker_remove_command"]


def container_name(function: LocalFunction) -> str:
    """The name given to the function's container (unique per run)."""
    return f"nvcf-local-{function.function_id[:8]}"


def docker_command(
    function: LocalFunction,
    image: str,
    root: Path,
    *,
    docker: str = "docker",
    name: str | None = None,
) -> list[str]:
    """The ``docker run`` command line that runs ``image`` as NVCF would.

    Args:
        function: the function (ports, ``containerEnvironment``, ``containerArgs``).
        image: the container image.
        root: the local NVCF's temporary root, mounted at the same path.
        docker: the Docker client program.
        name: the container's name (default :func:`container_name`).
    """
    spec = function.spec
    ports = sorted({spec.inference_port, spec.health.port})
    argv = [docker, "run", "--rm", "--name", name or container_name(function)]
    for port in ports:
        argv += ["--publish", f"127.0.0.1:{port}:{port}"]
    argv += ["--volume", f"{root}:{root}"]
    for key, value in function.container_environment().items():
        argv += ["--env", f"{key}={value}"]
    argv.append(image)
    container_args = spec.raw.get("containerArgs")
    if isinstance(container_args, str) and container_args.strip():
        argv += shlex.split(container_args)
    return argv


def docker_remove_command(
    function: LocalFunction, *, docker: str = "docker", name: str | None = None
) -> list[str]:
    """The command that removes the container if ``docker run`` was killed before it."""
    return [docker, "rm", "--force", name or container_name(function)]
