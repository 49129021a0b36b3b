"""``nvcf-helpers serve``: serve a Triton model repository here, in the foreground.

Exits 0 on Ctrl-C or SIGTERM, 1 when the server dies on its own; the server
never outlives the command.
"""

from __future__ import annotations

import argparse
import signal
import socket
import time
from types import FrameType

from nvcf_helpers.triton.command import EXIT_TIMEOUT_SECONDS
from nvcf_helpers.triton.server import (
    TritonServer,
    TritonServerError,
    configs_are_complete,
    list_models,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``serve`` options."""
    parser.add_argument("model_repository", metavar="MODEL_REPOSITORY", help="model repository")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="listen address (default 127.0.0.1; 0.0.0.0 for all)"
    )
    parser.add_argument(
        "--disable-auto-complete-config",
        action="store_true",
        help="skip Triton's config auto-complete even where a config looks incomplete "
        "(it is skipped anyway when every config.pbtxt is complete)",
    )
    parser.add_argument(
        "--log-verbose", type=int, default=0, metavar="N", help="tritonserver verbose log level"
    )
    parser.add_argument(
        "--exit-timeout",
        type=int,
        default=EXIT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="on Ctrl-C/SIGTERM, wait this long for in-flight requests and open client "
        f"connections (tritonserver's own default is 30; default {EXIT_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up if the models are not ready in time (default 300)",
    )


class _Stop(Exception):
    """Raised in the main thread by the SIGTERM handler."""


def _check_port_free(host: str, port: int, option: str) -> None:
    """Refuse a port something already listens on, before starting the server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like tritonserver: a port left in TIME_WAIT by a stopped server is usable.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise TritonServerError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another server may be "
                f"using it; stop it or pass {option} with a free port"
            ) from None


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 0) or until the server dies (exit 1)."""
    models = list_models(args.model_repository)
    _check_port_free(args.host, args.http_port, "--http-port")
    _check_port_free(args.host, args.grpc_port, "--grpc-port")
    # An idle keep-alive connection holds tritonserver's exit for the whole
    # exit timeout, so Ctrl-C would take 30 s with a client still connected.
    extra = [f"--log-verbose={args.log_verbose}"] if args.log_verbose else []
    complete = args.disable_auto_complete_config or configs_are_complete(args.model_repository)
    server = TritonServer(
        args.model_repository,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        host=args.host,
        disable_auto_complete_config=complete,
        exit_timeout_seconds=args.exit_timeout,
        extra_args=extra,
        # Straight to our stdout: no thread copying a line per logged request.
        inherit_output=True,
    )
    previous_term = signal.signal(signal.SIGTERM, _raise_stop)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        server.start()
        try:
            server.wait_ready(models, timeout=args.ready_timeout)
        except TritonServerError as exc:
            # Its output already passed through above: report one line.
            raise TritonServerError(f"{exc.summary}; see the server output above") from None
        print(f"ready: {server.url} models: {', '.join(models)}", flush=True)
        while server.returncode is None:
            time.sleep(0.5)
        raise TritonServerError(
            f"tritonserver exited with status {server.returncode}; see its output above"
        )
    except (_Stop, KeyboardInterrupt):
        # A second Ctrl-C or SIGTERM must not interrupt the shutdown itself.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.stop(timeout=args.exit_timeout + 10)
        print("stopped", flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
