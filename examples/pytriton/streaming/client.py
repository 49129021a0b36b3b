"""Stream a continuation of a prompt from the textgen function, token by token.

    python client.py "The digits data set"          # nvcf-helpers local on 127.0.0.1:8787
    python client.py --base-url https://api.nvcf.nvidia.com --function-id ID "Some prompt"

The request goes out with ``Accept: text/event-stream``; each Server-Sent
Event carries one token, printed as it arrives. NVCF's request id cannot reach
the model on Triton's generate endpoints, so the client sends its own
``correlation_id``, which the function logs under and echoes in every event.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from nvcf_helpers.client.arguments import add_connection_arguments, connect


def events(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of the ``data:`` lines of an SSE stream."""
    for raw in lines:
        line = raw.decode("utf-8").strip()
        if line.startswith("data:"):
            yield json.loads(line[len("data:") :])


def main(argv: list[str] | None = None) -> int:
    """Stream the continuation to stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="The digits data set")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    add_connection_arguments(parser)
    args = parser.parse_args(argv)

    client, function_id = connect(args, parser)
    correlation_id = f"client-{uuid.uuid4()}"
    body = {
        "PROMPT": args.prompt,
        "MAX_TOKENS": args.max_tokens,
        "SEED": args.seed,
        "correlation_id": correlation_id,
    }
    print(args.prompt, end="", flush=True)
    count = 0
    for event in events(client.stream(function_id, body)):
        print(event["TOKEN"], end="", flush=True)
        count += 1
    print(f"\n[{count} tokens streamed; function log lines carry reqid={correlation_id}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
