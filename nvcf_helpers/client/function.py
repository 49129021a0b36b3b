"""``nvcf-helpers function``: register, list, show and remove function versions, as ``ngc cf``.

It speaks NVCF's management API through :class:`~nvcf_helpers.client.api.NvcfClient`,
so it works against ``nvcf-helpers local`` (the default base URL) and NVCF
itself alike. ``--json`` prints the API's answer and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nvcf_helpers.client.arguments import add_management_arguments, client_for
from nvcf_helpers.client.display import (
    VERSION_COLUMNS,
    print_fields,
    print_json,
    print_table,
    version_fields,
    version_rows,
)
from nvcf_helpers.errors import SpecError

__all__ = ["add_arguments", "read_definition", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the actions of ``nvcf-helpers function``."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        help="register a function from a function.json (or a new version of one)",
        description="register a function from a function.json (or a new version of one)",
    )
    create.add_argument(
        "spec", metavar="SPEC", help="the function definition, a function.json ('-' reads stdin)"
    )
    create.add_argument(
        "--function-id", metavar="ID", help="add the definition as a new version of this function"
    )
    listing = actions.add_parser(
        "list",
        help="list every version of every function",
        description="list every version of every function",
    )
    info = actions.add_parser(
        "info",
        help="show a function's versions, or one version in detail",
        description="show a function's versions, or one version in detail",
    )
    info.add_argument("function_id", metavar="FUNCTION_ID", help="the function")
    info.add_argument("version_id", metavar="VERSION_ID", nargs="?", help="the version to show")
    remove = actions.add_parser(
        "remove",
        help="delete a function version",
        description="delete a function version",
    )
    remove.add_argument("function_id", metavar="FUNCTION_ID", help="the function")
    remove.add_argument("version_id", metavar="VERSION_ID", help="the version to delete")
    for action in (create, listing, info, remove):
        add_management_arguments(action)


def read_definition(source: str) -> dict[str, Any]:
    """The function definition in a file (``-``: stdin), as a JSON object.

    Raises:
        SpecError: the file cannot be read, is not JSON, or is not an object.
    """
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"{name}: cannot read it ({exc.strerror}): give the path of a function.json"
        ) from None
    except UnicodeDecodeError:
        raise SpecError(f"{name}: is not UTF-8 text: give a function.json") from None
    try:
        definition = json.loads(text)
    except ValueError as exc:
        raise SpecError(f"{name}: is not valid JSON ({exc})") from None
    if not isinstance(definition, dict):
        raise SpecError(
            f"{name}: holds a JSON {type(definition).__name__}: a function definition is an "
            'object such as {"name": ..., "inferenceUrl": ..., "containerImage": ...}'
        )
    return definition


def _create(args: argparse.Namespace) -> int:
    definition = read_definition(args.spec)
    client = client_for(args)
    if args.function_id:
        version = client.create_version(args.function_id, definition)
    else:
        version = client.create_function(definition)
    if args.json:
        print_json({"function": version})
        return 0
    print_fields(version_fields(version))
    print(
        f"deploy it: nvcf-helpers deploy create {version.get('id')} {version.get('versionId')} "
        "--wait",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    versions = client_for(args).list_functions()
    if args.json:
        print_json({"functions": versions})
    elif versions:
        print_table(VERSION_COLUMNS, version_rows(versions))
    else:
        print("no functions", file=sys.stderr)
    return 0


def _info(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.version_id:
        version = client.get_version(args.function_id, args.version_id)
        if args.json:
            print_json({"function": version})
        else:
            print_fields(version_fields(version))
        return 0
    versions = client.list_versions(args.function_id)
    if args.json:
        print_json({"functions": versions})
    else:
        print_table(VERSION_COLUMNS, version_rows(versions))
    return 0


def _remove(args: argparse.Namespace) -> int:
    client_for(args).delete_version(args.function_id, args.version_id)
    # NVCF answers 204, no body: --json prints nothing, and the exit status says it worked.
    if not args.json:
        print(f"removed version {args.version_id} of function {args.function_id}")
    return 0


_ACTIONS = {"create": _create, "list": _list, "info": _info, "remove": _remove}


def run(args: argparse.Namespace) -> int:
    """Run one action of ``nvcf-helpers function``."""
    return _ACTIONS[args.action](args)
