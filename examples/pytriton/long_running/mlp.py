"""A one-hidden-layer perceptron in numpy, and k-fold cross-validation for it.

Inputs are 8x8 digit images on the 0..16 scale, flattened and divided by 16;
ReLU hidden layer, softmax output, mini-batch SGD on the cross-entropy. Every
random choice (initial weights, shuffles, folds) comes from the seed given, so
a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES = 10
BATCH = 32


@dataclass(frozen=True)
class Params:
    """Weights of a trained network."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted labels for images shaped (n, 8, 8)."""
        hidden = np.maximum(_features(images) @ self.w1 + self.b1, 0.0)
        return np.asarray((hidden @ self.w2 + self.b2).argmax(axis=1))


def _features(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 16.0


def fit(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    hidden: int,
    learning_rate: float,
    epochs: int,
    seed: int,
) -> Params:
    """Train on ``images`` (n, 8, 8) and ``labels`` (n,) with mini-batch SGD."""
    rng = np.random.default_rng(seed)
    x = _features(images)
    inputs = x.shape[1]
    w1 = rng.normal(0.0, np.sqrt(2.0 / inputs), (inputs, hidden)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, CLASSES)).astype(np.float32)
    b2 = np.zeros(CLASSES, np.float32)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            batch = order[start : start + BATCH]
            xb, yb = x[batch], labels[batch]
            h = np.maximum(xb @ w1 + b1, 0.0)
            logits = h @ w2 + b2
            logits -= logits.max(axis=1, keepdims=True)
            grad = np.exp(logits)
            grad /= grad.sum(axis=1, keepdims=True)
            grad[np.arange(len(batch)), yb] -= 1.0
            grad /= len(batch)
            grad_h = grad @ w2.T
            grad_h[h <= 0.0] = 0.0
            w2 -= learning_rate * (h.T @ grad)
            b2 -= learning_rate * grad.sum(axis=0)
            w1 -= learning_rate * (xb.T @ grad_h)
            b1 -= learning_rate * grad_h.sum(axis=0)
    return Params(w1, b1, w2, b2)


def folds(count: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint index sets covering ``range(count)``, shuffled by ``seed``."""
    return list(np.array_split(np.random.default_rng(seed).permutation(count), k))
