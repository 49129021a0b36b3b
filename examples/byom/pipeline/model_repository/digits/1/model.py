"""Triton Python-backend model: the 8x8 digits classifier, numpy only.

Input ``IMAGE`` (FP32, [batch, 8, 8], pixels on the data set's 0..16 scale);
outputs ``PROBABILITIES`` (FP32, [batch, 10]) and ``LABEL`` (INT64, [batch, 1]).
The weights are ``digits.npz`` beside this file, written by ``train.py``.

Dynamic batching hands ``execute`` several requests at once; each is answered
on its own, with its own NVCF request context (its log lines carry its
request id) and its own error: a bad request gets a 400 and the others of
the batch are still served.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from nvcf_helpers import InputError, RequestContext, configure_logging
from nvcf_helpers.triton_backend import execute_requests, input_array

LOG = logging.getLogger("digits")
PIXEL_MAX = 16.0


class TritonPythonModel:
    """The digits classifier as Triton's Python backend calls it."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the weights once, when Triton loads the model."""
        configure_logging()
        params = np.load(Path(__file__).with_name("digits.npz"))
        self.weights = params["weights"]
        self.bias = params["bias"]
        LOG.info(
            "digits model loaded (%s instance %s)",
            args["model_instance_kind"],
            args["model_instance_name"],
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Answer each request of the batch Triton hands over."""
        return execute_requests(requests, self.classify)

    def classify(self, request: Any, ctx: RequestContext) -> dict[str, np.ndarray]:
        """Probabilities and label for each image of one request."""
        images = input_array(request, "IMAGE")
        if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > PIXEL_MAX:
            raise InputError(
                "input IMAGE has pixels outside 0..16: scale images to the digits data set's "
                "0..16 range (for 0..255 grey levels, multiply by 16/255)"
            )
        logits = images.reshape(len(images), 64) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probabilities = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        labels = probabilities.argmax(axis=1).astype(np.int64).reshape(-1, 1)
        LOG.info("classified %d image(s)", len(images))
        return {"PROBABILITIES": probabilities, "LABEL": labels}
