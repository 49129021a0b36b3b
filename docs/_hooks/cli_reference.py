"""MkDocs hook: the CLI reference, rendered from the real parser at build time.

A page asks for the help of a command with a line of its own::

    <!-- cli-help: new -->          (nvcf-helpers new --help)
    <!-- cli-help: -->              (nvcf-helpers --help)

and the hook puts the text of ``--help`` there, as ``nvcf_helpers.cli.build_parser()``
prints it. The help therefore cannot drift from the code; and the build fails
when the parser has a command that no page documents, or a page asks for one
that does not exist.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Iterator
from typing import Any

from mkdocs.exceptions import PluginError

from nvcf_helpers.cli import build_parser

_MARKER = re.compile(r"^<!-- cli-help: *(?P<command>[\w-]*) *-->[ \t]*$", re.MULTILINE)
# Help is wrapped at a fixed width, whatever terminal runs the build.
_COLUMNS = "80"

_documented: set[str] = set()


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


@contextlib.contextmanager
def _columns() -> Iterator[None]:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _COLUMNS
    try:
        yield
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _help(parser: argparse.ArgumentParser, command: str) -> str:
    argv = [command, "--help"] if command else ["--help"]
    out = io.StringIO()
    with _columns(), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parser.parse_args(argv)
    return out.getvalue().rstrip()


def on_pre_build(config: Any, **kwargs: Any) -> None:
    _documented.clear()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not _MARKER.search(markdown):
        return markdown
    parser = build_parser()
    commands = _commands(parser)

    def replace(match: re.Match[str]) -> str:
        command = match["command"]
        if command and command not in commands:
            raise PluginError(
                f"{page.file.src_uri}: 'cli-help: {command}' names no command of "
                f"nvcf-helpers (it has {', '.join(commands)}): fix the page"
            )
        _documented.add(command)
        return f"```text\n{_help(parser, command)}\n```"

    return _MARKER.sub(replace, markdown)


def on_post_build(config: Any, **kwargs: Any) -> None:
    if not _documented:  # a partial rebuild (mkdocs serve --dirty) that skipped the page
        return
    missing = [c for c in _commands(build_parser()) if c not in _documented]
    if missing:
        raise PluginError(
            f"the CLI reference documents no 'nvcf-helpers {' / '.join(missing)}': add a "
            "section with '<!-- cli-help: NAME -->' to docs/cli.md"
        )
