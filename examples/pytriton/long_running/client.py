"""Run the model-selection job on the digits data set, watching its progress.

    python prepare.py && python client.py           # nvcf-helpers local on 127.0.0.1:8787
    python client.py --base-url https://api.nvcf.nvidia.com --function-id ID   # NGC_API_KEY set

Uploads ``dataset.npz`` (from ``prepare.py``) as an input asset, invokes the
function, prints every progress report (the best configuration so far), and
writes the large outputs (``model.npz``, ``trials.json``) to ``--output``.
``nvcf-helpers invoke`` does the same from the command line, with a progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nvcf_helpers.client import Progress
from nvcf_helpers.client.arguments import add_connection_arguments, connect

HERE = Path(__file__).resolve().parent


def request_body(
    hidden: list[int] | None, rates: list[float] | None, folds: int | None, epochs: int | None
) -> dict[str, Any]:
    """The KServe v2 body; inputs left out take the function's defaults."""
    inputs = []
    if hidden:
        inputs.append(
            {"name": "HIDDEN", "shape": [len(hidden)], "datatype": "INT32", "data": hidden}
        )
    if rates:
        inputs.append(
            {"name": "LEARNING_RATE", "shape": [len(rates)], "datatype": "FP32", "data": rates}
        )
    for name, value in (("FOLDS", folds), ("EPOCHS", epochs)):
        if value is not None:
            inputs.append({"name": name, "shape": [1], "datatype": "INT32", "data": [value]})
    return {"inputs": inputs}


def show(progress: Progress) -> None:
    """Print one progress report."""
    print(f"progress {progress.percent}%: {json.dumps(progress.partial_response)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Invoke the job and save its outputs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "dataset.npz", help="from prepare.py")
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden-layer sizes to try")
    parser.add_argument("--rates", type=float, nargs="+", help="learning rates to try")
    parser.add_argument("--folds", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--output", type=Path, default=Path("tune-output"))
    parser.add_argument("--poll-seconds", type=int, default=1, help="NVCF-POLL-SECONDS per call")
    add_connection_arguments(parser)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        sys.exit(f"client.py: error: {args.data} does not exist: run `python prepare.py` first")

    client, function_id = connect(args, parser)
    result = client.invoke(
        function_id,
        request_body(args.hidden, args.rates, args.folds, args.epochs),
        assets=[args.data],
        poll_seconds=args.poll_seconds,
        on_progress=show,
    )
    outputs = {output["name"]: output["data"] for output in result.json()["outputs"]}
    summary = json.loads(outputs["SUMMARY"][0])
    print(f"best: {summary['best']} after {summary['fits']} fits in {summary['seconds']} s")
    for path in result.save_files(args.output):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
