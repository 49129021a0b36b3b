"""Invoke the PyTriton digits function on the held-out images and report its accuracy.

Works against ``nvcf-helpers local`` (the default) and against NVCF itself::

    python client.py                                   # the local NVCF on 127.0.0.1:8787
    python client.py --base-url https://api.nvcf.nvidia.com --function-id ID   # NGC_API_KEY set

The body is the same KServe v2 JSON as for the BYOM version of this model
(``examples/byom/digits``), sent to ``/v2/models/digits/infer``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from nvcf_helpers.client.arguments import add_connection_arguments, connect

MODEL_BATCH = 64


def held_out_split() -> tuple[np.ndarray, np.ndarray]:
    """The held-out images and labels: the split ``examples/byom/digits/train.py`` holds out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(
        digits.images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    return x_test.astype(np.float32), y_test


def infer_body(images: np.ndarray) -> dict[str, Any]:
    """The KServe v2 request body for a batch of 8x8 images."""
    return {
        "inputs": [
            {
                "name": "IMAGE",
                "shape": list(images.shape),
                "datatype": "FP32",
                "data": images.astype(np.float32).ravel().tolist(),
            }
        ],
        "outputs": [{"name": "LABEL"}],
    }


def labels_of(response: dict[str, Any]) -> list[int]:
    """The ``LABEL`` output of a KServe v2 response."""
    for output in response["outputs"]:
        if output["name"] == "LABEL":
            return [int(value) for value in output["data"]]
    raise ValueError(f"the response has no LABEL output: {response}")


def main(argv: list[str] | None = None) -> int:
    """Classify the held-out split through NVCF and print the accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_connection_arguments(parser)
    parser.add_argument("--limit", type=int, default=None, help="classify only this many images")
    args = parser.parse_args(argv)

    client, function_id = connect(args, parser)
    x_test, y_test = held_out_split()
    x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    predicted: list[int] = []
    for start in range(0, len(x_test), MODEL_BATCH):
        result = client.invoke(function_id, infer_body(x_test[start : start + MODEL_BATCH]))
        predicted += labels_of(result.json())
    accuracy = float(np.mean(np.array(predicted) == y_test))
    print(f"accuracy {accuracy:.4f} on {len(y_test)} held-out images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
