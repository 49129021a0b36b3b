"""``nvcf-helpers local``: NVCF's side of the contract, on your own machine.

:class:`LocalNvcf` starts it from Python. Only the launcher is imported here;
the server (``server``, ``api``, ``worker``, ``supervisor``, ...) needs
aiohttp and is imported when it starts. The manual is the docs site's guide
"The local NVCF".
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
from pathlib import Path

from nvcf_helpers import names
from nvcf_helpers.client.arguments import positive_seconds, whole_number
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.launcher import LocalNvcf, LocalNvcfError
from nvcf_helpers.local.logs import DEFAULT_LOG_BUDGET_BYTES
from nvcf_helpers.local.store import DEFAULT_RESULT_BUDGET_BYTES
from nvcf_helpers.names import DEFAULT_MAX_RESPONSE_BYTES
from nvcf_helpers.spec import load_spec

__all__ = ["LocalNvcf", "LocalNvcfError", "add_arguments", "run"]

DEFAULT_PORT = 8787


_positive_int = whole_number(1)


def _add_result_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that bound what waits: the queue, and results nobody collected yet."""
    parser.add_argument(
        "--queue-size",
        type=_positive_int,
        default=names.DEFAULT_QUEUE_SIZE,
        metavar="N",
        help="requests that may wait for the container; one more is answered 429, as NVCF "
        f"answers when a function's queue is full (default {names.DEFAULT_QUEUE_SIZE}, NVCF's)",
    )
    parser.add_argument(
        "--result-ttl",
        type=positive_seconds,
        default=float(names.REQUEST_MAPPING_MAX_AGE_SECONDS),
        metavar="SECONDS",
        help="how long a result nobody collected is kept after it landed or was last polled "
        f"(default {names.REQUEST_MAPPING_MAX_AGE_SECONDS}, NVCF's request-id lifetime)",
    )
    parser.add_argument(
        "--result-budget-bytes",
        type=_positive_int,
        default=DEFAULT_RESULT_BUDGET_BYTES,
        metavar="BYTES",
        help="bytes of uncollected results kept (large bodies wait on disk); past it the "
        f"oldest are dropped (default {DEFAULT_RESULT_BUDGET_BYTES})",
    )
    parser.add_argument(
        "--log-budget-bytes",
        type=_positive_int,
        default=DEFAULT_LOG_BUDGET_BYTES,
        metavar="BYTES",
        help="about the bytes of memory the containers' log lines may take (GET /_local/logs, "
        "nvcf-helpers logs); past it, or after NVCF's 48 hours, the oldest go "
        f"(default {DEFAULT_LOG_BUDGET_BYTES})",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``nvcf-helpers local``."""
    parser.usage = (
        "%(prog)s --spec function.json [options] -- COMMAND [ARG...]\n"
        "       %(prog)s --spec function.json [options] --image IMAGE\n"
        "       %(prog)s [options] [--image-command IMAGE=COMMAND ...] [-- COMMAND [ARG...]]"
    )
    parser.add_argument(
        "--spec",
        metavar="FILE",
        help="a function definition (the body of POST /v2/nvcf/functions) to register and "
        "deploy at start; without it the local NVCF starts empty",
    )
    parser.add_argument(
        "--image-command",
        action="append",
        default=[],
        metavar="IMAGE=COMMAND",
        help="run COMMAND (a shell-quoted line) for functions whose containerImage is IMAGE; "
        "{port} in it becomes each instance's own port, so many instances can run "
        "(repeatable)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the local NVCF API (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1; 0.0.0.0 exposes it to your network)",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        metavar="PORT",
        help="serve gRPC functions here, routed by the metadata function-id as NVCF does "
        "(0 picks a free port; default: a free one when the --spec function is gRPC)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("NVCF_LOCAL_API_KEY"),
        help="require 'Authorization: Bearer KEY' as NVCF does (env NVCF_LOCAL_API_KEY)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=_positive_int,
        default=1,
        metavar="N",
        help="requests the container is given at once, NVCF's maxRequestConcurrency "
        "(default 1); the others wait in the function's queue",
    )
    parser.add_argument(
        "--max-response-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        metavar="BYTES",
        help=f"largest body returned inline (default {DEFAULT_MAX_RESPONSE_BYTES}); "
        "bigger ones come back as a 302 to a zip",
    )
    _add_result_arguments(parser)
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="time the container has to pass its health check before ERROR (default 600)",
    )
    parser.add_argument(
        "--image",
        metavar="IMAGE",
        help="run this container image with Docker instead of a command (needs a Docker engine)",
    )
    parser.add_argument(
        "--info-file",
        metavar="FILE",
        help="write {baseUrl, functionId, versionId, pid, root} as JSON here once the API listens",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="verbosity of the local NVCF's own messages on stderr (default INFO)",
    )
    parser.add_argument(
        "container_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARG...]",
        help="the container's entrypoint, run as a child process",
    )


def _image_command(text: str) -> tuple[str, tuple[str, ...]]:
    """``IMAGE=COMMAND`` of ``--image-command``, the command split as a shell would."""
    image, equals, line = text.partition("=")
    try:
        command = tuple(shlex.split(line))
    except ValueError as exc:
        raise NvcfHelperError(f"--image-command {text!r}: {exc}") from None
    if not equals or not image.strip() or not command:
        raise NvcfHelperError(
            f"--image-command {text!r} is not IMAGE=COMMAND: give the image as the function "
            "definition names it, then '=', then the command, e.g. "
            "--image-command 'nvcr.io/me/echo:1=python echo.py --port {port}'"
        )
    return image.strip(), command


def run(args: argparse.Namespace) -> int:
    """Run ``nvcf-helpers local`` until Ctrl-C or SIGTERM."""
    command = list(args.container_command)
    if command and command[0] == "--":
        command = command[1:]
    if args.image and command:
        raise NvcfHelperError(
            "give either --image or a command after '--', not both: the image's own "
            "entrypoint runs under --image"
        )
    image_commands = tuple(_image_command(text) for text in args.image_command)
    if args.image:
        if shutil.which("docker") is None:
            raise NvcfHelperError(
                "--image needs a Docker engine, and the docker program is not on PATH: "
                "run the container's entrypoint as a command instead, e.g. "
                "nvcf-helpers local --spec function.json -- python server.py"
            )
    elif args.spec and not command:
        raise NvcfHelperError(
            "no container command given: put it after '--', e.g. "
            "nvcf-helpers local --spec function.json -- python server.py (or use --image)"
        )
    for program in [command[:1], *(c[:1] for _, c in image_commands)]:
        if program and shutil.which(program[0]) is None:
            raise NvcfHelperError(
                f"command {program[0]!r} was not found or is not executable: give a program "
                "on PATH or a path to one"
            )
    spec = load_spec(args.spec) if args.spec else None
    if not 0 <= args.port <= 65535:
        raise NvcfHelperError(f"--port {args.port} is not a TCP port: give 0 to 65535")
    if args.grpc_port is not None and not 0 <= args.grpc_port <= 65535:
        raise NvcfHelperError(f"--grpc-port {args.grpc_port} is not a TCP port: give 0 to 65535")
    if args.grpc_port and args.grpc_port == args.port:
        raise NvcfHelperError(
            f"--grpc-port {args.grpc_port} is also --port: the gRPC endpoint needs a port of "
            "its own (0 picks a free one)"
        )
    if spec is not None and args.port in (spec.inference_port, spec.health.port):
        raise NvcfHelperError(
            f"--port {args.port} is the function's own port (inferencePort or health.port): "
            f"the local NVCF must listen on another one, e.g. the default {DEFAULT_PORT}"
        )
    import asyncio
    import logging

    from nvcf_helpers.local.server import ServeOptions, configure_gateway_logging, run_gateway

    configure_gateway_logging(getattr(logging, args.log_level))
    options = ServeOptions(
        spec=spec,
        command=tuple(command),
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        max_concurrency=args.max_concurrency,
        max_response_bytes=args.max_response_bytes,
        startup_timeout=args.startup_timeout,
        info_file=Path(args.info_file) if args.info_file else None,
        image=args.image,
        queue_size=args.queue_size,
        result_ttl=args.result_ttl,
        result_budget_bytes=args.result_budget_bytes,
        log_budget_bytes=args.log_budget_bytes,
        image_commands=image_commands,
        grpc_port=args.grpc_port,
    )
    return asyncio.run(run_gateway(options))
