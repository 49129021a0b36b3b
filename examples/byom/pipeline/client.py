"""Send a batch of digit images to the pipeline as an input asset; report progress and accuracy.

The held-out images of the digits data set (the split ``../digits/train.py``
holds out) are converted to 8-bit greyscale, as a scanner would deliver them
(``--size 32`` also scales them up to 32x32, which the pre-processing model
averages back down), saved as an ``.npy``, uploaded as an NVCF asset and
classified by one invocation. Progress is printed as NVCF reports it; the
per-image results come inline or, when they are larger than NVCF's response
limit, from the large output ``results.json`` in the result's zip.

    python client.py                       # against nvcf-helpers local on 127.0.0.1:8787
    python client.py --base-url https://api.nvcf.nvidia.com --function-id ID   # NGC_API_KEY set
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nvcf_helpers.client import InvocationResult, Progress
from nvcf_helpers.client.arguments import add_connection_arguments, connect


def held_out_split() -> tuple[np.ndarray, np.ndarray]:
    """The held-out images (0..16 scale) and labels: the split of ``../digits/train.py``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return x_test, y_test


def as_scans(images: np.ndarray, size: int) -> np.ndarray:
    """0..16 images as 8-bit greyscale ``size`` x ``size`` scans (size a multiple of 8)."""
    grey = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    factor = size // 8
    return np.kron(grey, np.ones((1, factor, factor), dtype=np.uint8))


def show(progress: Progress) -> None:
    """Print one progress report."""
    print(f"progress {progress.percent}%: {json.dumps(progress.partial_response)}", flush=True)


def results_of(result: InvocationResult) -> dict[str, Any]:
    """The per-image results, inline or from the large output the response names."""
    outputs = {output["name"]: output["data"] for output in result.json()["outputs"]}
    document: dict[str, Any] = json.loads(outputs["RESULTS"][0])
    if "largeOutput" in document:
        name = document["largeOutput"]
        print(f"results came as the large output {name} ({document['bytes']} bytes)")
        document = json.loads(result.files[name])
    return document


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline on the held-out images and print its accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_arguments(parser)
    parser.add_argument("--size", type=int, choices=(8, 16, 32), default=8, help="scan size")
    parser.add_argument("--limit", type=int, help="send only this many images")
    parser.add_argument("--chunk-size", type=int, help="images per step (1 to 64)")
    parser.add_argument("--poll-seconds", type=int, help="NVCF-POLL-SECONDS for each call")
    args = parser.parse_args(argv)

    client, function_id = connect(args, parser)
    images, labels = held_out_split()
    images, labels = images[: args.limit], labels[: args.limit]
    inputs = []
    if args.chunk_size is not None:
        inputs.append(
            {"name": "CHUNK_SIZE", "shape": [1], "datatype": "INT32", "data": [args.chunk_size]}
        )
    with tempfile.TemporaryDirectory() as scratch:
        asset = Path(scratch) / "digits.npy"
        np.save(asset, as_scans(images, args.size))
        result = client.invoke(
            function_id,
            {"inputs": inputs},
            assets=[asset],
            poll_seconds=args.poll_seconds,
            on_progress=show,
        )
    document = results_of(result)
    predicted = np.array([item["label"] for item in document["results"]])
    accuracy = float(np.mean(predicted == labels))
    print(f"accuracy {accuracy:.4f} on {len(labels)} held-out images (request {result.request_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
