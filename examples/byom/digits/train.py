"""Train the digits classifier and save its weights where the model serves them.

The data is the 8x8 handwritten digits set that ships inside scikit-learn
(1,797 images, pixel values 0..16; nothing is downloaded). The model is a
multinomial logistic regression: ``probabilities = softmax(image.reshape(64) @
weights + bias)``, so the served model needs only numpy.

The split is fixed (``random_state=0``, stratified, 25 % held out) and the
solver runs to convergence on a strictly convex objective, so retraining
gives the same held-out predictions; the weights' last digits vary with the
CPU's floating-point rounding (up to about 2e-4).

Usage::

    python train.py                      # writes model_repository/digits/1/digits.npz
    python train.py --output other.npz   # somewhere else
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "model_repository" / "digits" / "1" / "digits.npz"
TEST_SIZE = 0.25
SEED = 0


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed train/held-out split: ``x_train, x_test, y_train, y_test``.

    Images are float32 arrays of shape ``(n, 8, 8)`` on the data set's own
    0..16 scale; labels are int64. The held-out part is what the tests and
    ``client.py`` measure accuracy on: training never sees it.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels
    )
    return x_train, x_test, y_train, y_test


def fit(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Fit the classifier; returns the arrays the served model loads.

    ``weights`` (64, 10) and ``bias`` (10,) act on raw 0..16 pixels: the
    1/16 scaling used while fitting is folded into the weights.
    """
    from sklearn.linear_model import LogisticRegression

    features = images.reshape(len(images), -1) / 16.0
    # A tight tolerance makes the solver reach the unique optimum, not stop
    # somewhere that depends on the machine's floating-point rounding.
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=5000).fit(features, labels)
    return {
        "weights": (model.coef_.T / 16.0).astype(np.float32),
        "bias": model.intercept_.astype(np.float32),
    }


def predict(params: Any, images: np.ndarray) -> np.ndarray:
    """Class probabilities for ``images`` (n, 8, 8): the served model's math."""
    logits = images.reshape(len(images), 64) @ params["weights"] + params["bias"]
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    """Train, report held-out accuracy, and save the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the weights (.npz)"
    )
    args = parser.parse_args(argv)
    x_train, x_test, y_train, y_test = load_split()
    params = fit(x_train, y_train)
    accuracy = float((predict(params, x_test).argmax(axis=1) == y_test).mean())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, **params)
    print(
        f"trained on {len(x_train)} images; held-out accuracy {accuracy:.4f} "
        f"on {len(x_test)} images; weights written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
