"""``nvcf-helpers logs``: the container log lines a local NVCF kept, as NVCF's Logs tab lists them.

Each line prints as the container wrote it. ``--request`` gives exactly the
lines written for one request (those with its ``[reqid=...]``), ``--level``
those of a level and above, ``--since`` the recent ones; ``-f`` keeps printing
new lines until Ctrl-C. Only ``nvcf-helpers local`` serves logs this way.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.client.api import NvcfClient
from nvcf_helpers.client.arguments import add_connection_arguments, client_for, whole_number

__all__ = ["FOLLOW_SECONDS", "add_arguments", "run"]

#: How often ``--follow`` asks for new lines.
FOLLOW_SECONDS = 1.0
#: Lines one follow poll may bring.
_FOLLOW_LIMIT = 10_000
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def since(text: str) -> str:
    """An argparse type: ``10m``, ``2h``, ``1d``, ``600`` (seconds) or an ISO 8601 time.

    A duration becomes seconds, the API's form; a time passes as written.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match:
        return f"{float(match.group(1)) * _UNITS[match.group(2)]:g}"
    try:
        datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO 8601 time "
            "(2025-01-31T12:00:00Z)"
        ) from None
    return text.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``nvcf-helpers logs``."""
    parser.add_argument(
        "function_id",
        metavar="FUNCTION_ID",
        nargs="?",
        help="only this function's lines (default: every function's)",
    )
    parser.add_argument("--version-id", metavar="VERSION_ID", help="only this version's lines")
    parser.add_argument(
        "--request",
        metavar="REQID",
        help=f"only the lines written for this request ({names.REQUEST_ID}; those with "
        "[reqid=REQID])",
    )
    parser.add_argument(
        "--level",
        type=str.upper,
        choices=_LEVELS,
        metavar="LEVEL",
        help=f"only lines of this level or above ({', '.join(_LEVELS)}); lines without a "
        "level are left out",
    )
    parser.add_argument(
        "--since",
        type=since,
        metavar="WHEN",
        help="only lines since then: a duration (30s, 10m, 2h, 1d) or an ISO 8601 time",
    )
    parser.add_argument(
        "--tail",
        type=whole_number(1),
        default=1000,
        metavar="N",
        help="print the last N lines that match (default 1000)",
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines as they come, until Ctrl-C",
    )
    add_connection_arguments(parser, function_id=False)


def _print(lines: Iterable[dict[str, Any]]) -> None:
    text = "".join(f"{line.get('text', '')}\n" for line in lines)
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


def _follow(client: NvcfClient, filters: dict[str, Any], cursor: int) -> None:
    while True:
        time.sleep(FOLLOW_SECONDS)
        page = client.logs(**filters, after=cursor, limit=_FOLLOW_LIMIT)
        _print(page["lines"])
        cursor = int(page.get("next", cursor))


def run(args: argparse.Namespace) -> int:
    """Print the lines; with ``--follow``, until Ctrl-C (exit status 0)."""
    client = client_for(args)
    filters: dict[str, Any] = {
        "function_id": args.function_id,
        "version_id": args.version_id,
        "request_id": args.request,
        "level": args.level,
        "since": args.since,
    }
    try:
        page = client.logs(**filters, limit=args.tail)
        _print(page["lines"])
        if args.follow:
            _follow(client, filters, int(page.get("next", 0)))
    except KeyboardInterrupt:
        if not args.follow:
            raise
    except BrokenPipeError:  # `nvcf-helpers logs | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
