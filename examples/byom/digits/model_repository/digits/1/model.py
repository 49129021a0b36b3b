"""Triton Python-backend model: the 8x8 digits classifier, numpy only.

Input ``IMAGE`` (FP32, [batch, 8, 8], pixels on the data set's 0..16 scale);
outputs ``PROBABILITIES`` (FP32, [batch, 10]) and ``LABEL`` (INT64, [batch, 1]).
The weights are ``digits.npz`` beside this file, written by ``train.py``.

Dynamic batching hands ``execute`` several requests at once: their images
are classified in one matrix product, and each request still gets its own
response, its own NVCF request context and its own log lines.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from nvcf_helpers import InputError, InvalidInputError, RequestContext, configure_logging
from nvcf_helpers.log import log_request

LOG = logging.getLogger("digits")
PIXEL_MAX = 16.0


def _images(request: Any) -> np.ndarray:
    tensor = pb_utils.get_input_tensor_by_name(request, "IMAGE")
    if tensor is None:
        raise InputError("input IMAGE is missing: send a FP32 batch of 8x8 images")
    images = tensor.as_numpy()
    if not np.isfinite(images).all() or images.min() < 0.0 or images.max() > PIXEL_MAX:
        raise InputError(
            "input IMAGE has pixels outside 0..16: scale images to the digits data set's "
            "0..16 range (for 0..255 grey levels, multiply by 16/255)"
        )
    return images


class TritonPythonModel:
    """The digits classifier as Triton's Python backend calls it."""

    def initialize(self, args: dict[str, str]) -> None:
        """Load the weights once, when Triton loads the model."""
        configure_logging()
        params = np.load(Path(__file__).with_name("digits.npz"))
        self.weights = params["weights"]
        self.bias = params["bias"]
        LOG.info(
            "digits model loaded on %s (instance %s)",
            args["model_instance_kind"],
            args["model_instance_name"],
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        """Classify every request's images in one product; answer each request."""
        contexts: list[RequestContext | None] = []
        batches: list[np.ndarray] = []
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            ctx = None
            images = np.empty((0, 8, 8), np.float32)
            try:
                ctx = RequestContext.from_parameters(request.parameters())
                images = _images(request)
            except InvalidInputError as exc:
                errors[index] = str(exc)
            contexts.append(ctx)
            batches.append(images)
        probabilities = self._predict(np.concatenate(batches))
        responses = []
        start = 0
        for index, images in enumerate(batches):
            stop = start + len(images)
            if index in errors:
                with log_request(contexts[index]):
                    LOG.warning("rejected: %s", errors[index])
                error = pb_utils.TritonError(errors[index], pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
            else:
                probs = probabilities[start:stop]
                labels = probs.argmax(axis=1).astype(np.int64).reshape(-1, 1)
                with log_request(contexts[index]):
                    LOG.info("classified %d image(s)", len(images))
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor("PROBABILITIES", probs),
                            pb_utils.Tensor("LABEL", labels),
                        ]
                    )
                )
            start = stop
        return responses

    def _predict(self, images: np.ndarray) -> np.ndarray:
        logits = images.reshape(len(images), 64) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
