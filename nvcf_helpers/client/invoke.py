"""``nvcf-helpers invoke``: invoke a function, show its progress, print its result.

The result body goes to stdout; a live progress bar (percent and a summary of
the latest partial response) goes to stderr while NVCF answers 202; the large
outputs of a 302 result are written under ``--output``. Works against
``nvcf-helpers local`` (the default base URL) and NVCF itself
(``--base-url https://api.nvcf.nvidia.com`` and an NGC API key).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import IO

from nvcf_helpers import names
from nvcf_helpers.client.api import InvocationResult, NvcfClient, Progress
from nvcf_helpers.client.arguments import DEFAULT_LOCAL_URL, add_connection_arguments, only_function
from nvcf_helpers.errors import InvalidInputError

__all__ = ["DEFAULT_LOCAL_URL", "ProgressBar", "add_arguments", "run"]

_BAR_WIDTH = 24
# The characters of an HTTP header name (RFC 9110 token).
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``nvcf-helpers invoke``."""
    parser.add_argument(
        "function_id",
        nargs="?",
        default="-",
        metavar="FUNCTION_ID",
        help="the function to invoke; '-' or nothing picks the only one the API lists",
    )
    parser.add_argument(
        "--data",
        "-d",
        default="{}",
        metavar="JSON|@FILE",
        help="the JSON body, inline or @file (@- reads stdin); default {}",
    )
    parser.add_argument(
        "--asset",
        action="append",
        default=[],
        metavar="FILE",
        help="upload FILE as an input asset and reference it (repeatable)",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="where to write the large outputs of a 302 result (default ./nvcf-output-<reqid>)",
    )
    add_connection_arguments(parser, function_id=False)
    parser.add_argument("--version-id", help="invoke this version of the function")
    parser.add_argument(
        "--poll-seconds",
        type=int,
        metavar="N",
        help=f"{names.POLL_SECONDS}: how long each call waits for the result "
        f"(NVCF: default {names.DEFAULT_POLL_SECONDS}, 1 to {names.MAX_POLL_SECONDS}; "
        "0 counts as 1)",
    )
    parser.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra header for the container (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up after this long (default never)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


class ProgressBar:
    """Draws progress on a terminal line (rewritten in place), or one line per change elsewhere."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._last = ""
        self._state: tuple[str, str] = ("", "")
        self._drawn = False
        self._percent = 0
        self._summary = ""

    def update(self, progress: Progress) -> None:
        """Show one 202 answer; one without progress keeps the last progress shown.

        NVCF sends each progress update once: the 202s between updates are empty.
        """
        if progress.percent is not None:
            self._percent = progress.percent
        if progress.partial_response is not None:
            self._summary = json.dumps(progress.partial_response, separators=(",", ":"))
        percent, summary = self._percent, self._summary
        filled = round(_BAR_WIDTH * min(max(percent, 0), 100) / 100)
        state = f"{percent:3d}% {progress.status or 'pending'}"
        text = f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {state} {progress.elapsed:5.1f}s"
        text = f"{text} {summary}".rstrip()
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            line = text[:width]
            self.stream.write("\r" + line.ljust(min(width, len(self._last))))
            self._last = line
            self._drawn = True
        elif (state, summary) != self._state:
            # Not a terminal (a log, CI): one line per change, not one per poll.
            self.stream.write(text + "\n")
            self._state = (state, summary)
        self.stream.flush()

    def finish(self, outcome: Progress | None = None) -> None:
        """End the bar; ``outcome`` (the final state) is drawn if any progress was shown."""
        if outcome is not None and (self._drawn or self._state != ("", "")):
            self.update(outcome)
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _read_data(data: str) -> bytes:
    if data.startswith("@"):
        source = data[1:]
        try:
            raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"--data {data}: cannot read {source} ({exc.strerror})"
            ) from None
    else:
        raw = data.encode("utf-8")
    try:
        json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(
            f"--data is not JSON ({exc}): NVCF takes a JSON body; pass JSON or @file.json"
        ) from None
    return raw


def _headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        name = name.strip()
        if not sep or not name:
            raise InvalidInputError(f"--header {value!r} is not 'NAME: VALUE'")
        if not all(character in _TOKEN for character in name):
            raise InvalidInputError(
                f"--header {value!r}: {name!r} is not a header name (letters, digits and "
                "!#$%&'*+-.^_`|~ only)"
            )
        headers[name] = content.strip()
    return headers


def _pick_function(client: NvcfClient) -> str:
    function = only_function(client)
    print(f"invoking {function.get('name')} ({function.get('id')})", file=sys.stderr)
    return str(function["id"])


def _save(result: InvocationResult, output: str | None) -> None:
    if not result.files:
        return
    directory = Path(output or f"nvcf-output-{result.request_id or 'result'}")
    paths = result.save_files(directory)
    print(f"wrote {len(paths)} large output(s) to {directory}/:", file=sys.stderr)
    for path in paths:
        print(f"  {path.relative_to(directory)} ({path.stat().st_size} bytes)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Invoke the function and print its result."""
    body = _read_data(args.data)
    headers = _headers(args.header)
    for asset in args.asset:
        if not Path(asset).is_file():
            raise InvalidInputError(f"--asset {asset}: no such file")
    if args.poll_seconds is not None and not 0 <= args.poll_seconds <= names.MAX_POLL_SECONDS:
        raise InvalidInputError(
            f"--poll-seconds {args.poll_seconds}: NVCF takes 0 to {names.MAX_POLL_SECONDS} "
            "(0 counts as 1)"
        )
    client = NvcfClient(args.base_url, args.api_key)
    function_id = args.function_id
    if function_id in (None, "", "-"):
        function_id = _pick_function(client)
    bar = None if args.quiet else ProgressBar()
    started = time.monotonic()
    outcome = None
    try:
        result = client.invoke(
            function_id,
            body,
            assets=args.asset,
            version_id=args.version_id,
            poll_seconds=args.poll_seconds,
            on_progress=bar.update if bar is not None else None,
            headers=headers,
            timeout=args.timeout,
        )
        elapsed = time.monotonic() - started
        outcome = Progress(result.request_id or "", "fulfilled", 100, None, elapsed)
    finally:
        if bar is not None:
            bar.finish(outcome)
    sys.stdout.buffer.write(result.body)
    if result.body and not result.body.endswith(b"\n") and sys.stdout.isatty():
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    _save(result, args.output)
    return 0
