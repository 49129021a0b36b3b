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
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from nvcf_helpers.client import NvcfClient


def events(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of the ``data:`` lines of an SSE stream."""
    for raw in lines:
        line = raw.decode("utf-8").strip()
        if line.startswith("data:"):
            yield json.loads(line[len("data:") :])


def pick_function(client: NvcfClient, function_id: str | None) -> str:
    """``function_id``, or the only function the API lists (as ``nvcf-helpers local`` has)."""
    if function_id:
        return function_id
    functions = client.list_functions()
    if len(functions) != 1:
        sys.exit(f"client.py: error: {len(functions)} functions listed: pass --function-id")
    return str(functions[0]["id"])


def main(argv: list[str] | None = None) -> int:
    """Stream the continuation to stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="The digits data set")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--base-url", default=os.environ.get("NVCF_BASE_URL", "http://127.0.0.1:8787")
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("NVCF_API_KEY") or os.environ.get("NGC_API_KEY")
    )
    parser.add_argument("--function-id", default=os.environ.get("NVCF_FUNCTION_ID"))
    args = parser.parse_args(argv)

    client = NvcfClient(args.base_url, args.api_key)
    function_id = pick_function(client, args.function_id)
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
