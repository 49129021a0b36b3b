"""The ``nvcf-helpers`` command line.

Each sub-command lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int`` and imports its heavy
dependencies inside ``run``, so ``nvcf-helpers --help`` stays fast and works
without the optional extras. Exit codes follow click's conventions: 0 success,
1 a reported error, 2 a usage error; a user mistake never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nvcf_helpers.errors import NvcfHelperError

__all__ = ["main"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("nvcf_helpers.scaffold", "generate a function project from a template"),
    "check": ("nvcf_helpers.check", "check a model repository, Dockerfile or function.json"),
    "serve": ("nvcf_helpers.triton.cli", "serve a Triton model repository on this machine"),
    "local": ("nvcf_helpers.local", "run a function behind a local NVCF"),
    "invoke": ("nvcf_helpers.client.invoke", "invoke a function and wait for its result"),
    "function": ("nvcf_helpers.client.function", "register, list, show and remove functions"),
    "deploy": ("nvcf_helpers.client.deploy", "deploy, show, scale and undeploy functions"),
    "logs": ("nvcf_helpers.client.logs", "print the container logs a local NVCF kept"),
}

# Optional extra that provides each third-party module a command may need.
_EXTRA_FOR_MODULE = {
    "aiohttp": "local",
    "prometheus_client": "local",
    "cookiecutter": "templates",
    "google": "triton",
    "tritonclient": "triton",
    "pytriton": "pytriton",
    "numpy": "pytriton",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nvcf-helpers")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="nvcf-helpers",
        description="Build, check, run and invoke NVIDIA Cloud Functions on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    prefix = f"nvcf-helpers {args.command}: error:"
    try:
        status: int = args._module.run(args)
    except NvcfHelperError as exc:
        print(f"{prefix} {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        extra = _EXTRA_FOR_MODULE.get(top)
        if extra is None:
            raise
        print(
            f"{prefix} this command needs the package {top!r}, which is not installed: "
            f"pip install 'nvcf-helpers[{extra}]'",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
