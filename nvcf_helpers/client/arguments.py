"""The command-line options every NVCF client script shares, and connecting with them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from nvcf_helpers import names
from nvcf_helpers.client.api import NvcfClient, NvcfClientError

__all__ = [
    "DEFAULT_LOCAL_URL",
    "add_connection_arguments",
    "add_management_arguments",
    "client_for",
    "connect",
    "only_function",
]

# The variable NVCF sets in a function's own environment; scripts read it too.
_FUNCTION_ID_ENV = names.CONTEXT_ENVIRONMENT["function_id"]
#: Where ``nvcf-helpers local`` listens by default.
DEFAULT_LOCAL_URL = "http://127.0.0.1:8787"


def add_connection_arguments(parser: argparse.ArgumentParser, *, function_id: bool = True) -> None:
    """Add ``--base-url``, ``--api-key`` and (optionally) ``--function-id``, with env defaults."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get("NVCF_BASE_URL", DEFAULT_LOCAL_URL),
        help=f"the API (env NVCF_BASE_URL; default {DEFAULT_LOCAL_URL}, nvcf-helpers local; "
        "NVCF itself is https://api.nvcf.nvidia.com)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("NVCF_API_KEY") or os.environ.get("NGC_API_KEY"),
        help="bearer key (env NVCF_API_KEY or NGC_API_KEY)",
    )
    if function_id:
        parser.add_argument(
            "--function-id",
            default=os.environ.get(_FUNCTION_ID_ENV),
            help=f"the function to invoke (env {_FUNCTION_ID_ENV}; default: the only one listed)",
        )


def add_management_arguments(parser: argparse.ArgumentParser) -> None:
    """``--base-url`` and ``--api-key`` (as ``invoke`` takes them), and ``--json``."""
    add_connection_arguments(parser, function_id=False)
    parser.add_argument(
        "--json", action="store_true", help="print the API's JSON answer only (for scripts)"
    )


def client_for(args: argparse.Namespace) -> NvcfClient:
    """A client for the API that ``--base-url`` and ``--api-key`` name."""
    return NvcfClient(args.base_url, args.api_key)


def only_function(client: NvcfClient) -> dict[str, Any]:
    """The one function the API lists (one or more versions of it); an ACTIVE one first.

    Raises:
        NvcfClientError: the API lists none or several; the message names them.
    """
    versions = client.list_functions()
    by_id: dict[str, list[dict[str, Any]]] = {}
    for version in versions:
        by_id.setdefault(str(version.get("id")), []).append(version)
    if len(by_id) == 1:
        (listed,) = by_id.values()
        active = [v for v in listed if v.get("status") == "ACTIVE"]
        return (active or listed)[0]
    names = ", ".join(f"{v[0].get('name')} ({key})" for key, v in list(by_id.items())[:10])
    raise NvcfClientError(
        f"{client.base_url} lists {len(by_id)} functions ({names or 'none'}): "
        "say which one to invoke (--function-id)"
    )


def connect(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[NvcfClient, str]:
    """A client for ``args.base_url`` and the function to invoke.

    A problem (an API that cannot be reached, no single function to pick) ends
    the script through ``parser.error``: one line, exit status 2, no traceback.
    """
    client = NvcfClient(args.base_url, args.api_key)
    if args.function_id:
        return client, str(args.function_id)
    try:
        return client, str(only_function(client)["id"])
    except NvcfClientError as exc:
        parser.error(str(exc))


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0 seconds")
    return value
