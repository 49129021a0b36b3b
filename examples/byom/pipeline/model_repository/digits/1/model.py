"""digits: the 8x8 handwritten-digits classifier as a Triton Python-backend model.

Started from the ``triton-model`` template (``nvcf-helpers new triton-model
model_name=digits max_batch_size=64 ...``): the template's three marked parts
now hold the classifier. Triton calls ``execute`` with the requests dynamic
batching gathered; ``execute_requests`` reads each request's NVCF context from
the forwarded ``NVCF-*`` headers, makes every log line written while handling
it carry the request id, and answers an ``InputError`` with HTTP 400 and its
message, anything else with a 500 without a traceback.

Input ``IMAGE`` (FP32, [batch, 8, 8], pixels on the data set's 0..16 scale);
outputs ``PROBABILITIES`` (FP32, [batch, 10]) and ``LABEL`` (INT64, [batch, 1]).
The model is a multinomial logistic regression whose weights ``train.py``
writes to ``digits.npz`` beside this file; numpy is all it needs.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

# The nvcf_helpers copy beside this file (made by examples/vendor.py) comes
# first: the model then runs on a stock Triton image with nothing installed.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from nvcf_helpers import InputError, RequestContext, configure_logging
from nvcf_helpers.triton_backend import execute_requests, input_array

LOG = logging.getLogger("digits")
PIXEL_MAX = 16.0


class TritonPythonModel:
    """The model as Triton's Python backend calls it."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the weights, once per model instance."""
        # NVCF's log format, on stdout, which NVCF collects, at the level of the
        # log_level parameter in config.pbtxt (DEBUG: one line per request).
        parameters = json.loads(args["model_config"]).get("parameters", {})
        configure_logging(parameters.get("log_level", {}).get("string_value", "INFO").upper())
        # === 2. THE MODEL: load it. ===
        params = np.load(Path(__file__).with_name("digits.npz"))
        self.weights = params["weights"]  # (64, 10), acting on raw 0..16 pixels
        self.bias = params["bias"]  # (10,)
        LOG.info(
            "digits loaded (instance %s, %s)",
            args["model_instance_name"],
            args["model_instance_kind"],
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Answer each request; a failure answers that request alone."""
        return execute_requests(requests, self.handle)

    def handle(self, request: Any, ctx: RequestContext) -> dict[str, np.ndarray]:
        """One request, from inputs to outputs."""
        outputs = self.postprocess(self.predict(self.preprocess(request)))
        LOG.info("classified %d image(s)", len(outputs["LABEL"]))
        return outputs

    def preprocess(self, request: Any) -> np.ndarray:
        """=== 1. PRE-PROCESSING: the images, checked to be on the 0..16 scale. ==="""
        images = input_array(request, "IMAGE")
        if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > PIXEL_MAX:
            raise InputError(
                "input IMAGE has pixels outside 0..16: scale images to the digits data set's "
                "0..16 range (for 0..255 grey levels, multiply by 16/255)"
            )
        return np.asarray(images.reshape(len(images), 64))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """=== 2. THE MODEL: class probabilities (softmax of a linear map). ==="""
        logits = features @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)

    def postprocess(self, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        """=== 3. POST-PROCESSING: probabilities, and the most likely digit. ==="""
        labels = probabilities.argmax(axis=1).astype(np.int64).reshape(-1, 1)
        return {"PROBABILITIES": probabilities, "LABEL": labels}
