"""digits served with PyTriton as an NVIDIA Cloud Function.

Started from the ``pytriton-container`` template (``nvcf-helpers new
pytriton-container model_name=digits max_batch_size=64 ...``), with the
template's three marked parts holding the digits classifier of
``examples/byom/digits`` (same weights, ``digits.npz``, written by that
example's ``train.py``). ``python run.py`` serves it on PyTriton's ports
(``PYTRITON_TRITON_CONFIG_HTTP_PORT``, ``_GRPC_PORT``, ``_METRICS_PORT``; 8000,
8001 and 8002 by default) until SIGTERM (``docker stop``) or Ctrl-C.

``nvcf_helpers.pytriton`` does the NVCF part: Triton forwards the ``NVCF-*``
headers, the undecorated outer callable reads each request's context from
them before ``@batch`` (which drops them) stacks the requests for the model,
log lines are in NVCF's format and carry the request ids, and an
``InputError`` reaches the caller as HTTP 400 with its message.

Model ``digits``: input ``IMAGE`` (FP32, [8, 8], pixels on the data set's
0..16 scale); outputs ``PROBABILITIES`` (FP32, [10]) and ``LABEL`` (INT64, [1]).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton

from nvcf_helpers import InputError
from nvcf_helpers.pytriton import serve, with_request_context

MODEL_NAME = "digits"
MAX_BATCH_SIZE = 64
INPUTS = [
    Tensor(name="IMAGE", dtype=np.float32, shape=(8, 8)),
]
OUTPUTS = [
    Tensor(name="PROBABILITIES", dtype=np.float32, shape=(10,)),
    Tensor(name="LABEL", dtype=np.int64, shape=(1,)),
]
PIXEL_MAX = 16.0

LOG = logging.getLogger(MODEL_NAME)


class Model:
    """The model: pre-processing, the model itself, post-processing."""

    def __init__(self) -> None:
        # === 2. THE MODEL: load it here, once, before the server starts. ======
        params = np.load(Path(__file__).with_name("digits.npz"))
        self.weights = params["weights"]  # (64, 10), acting on raw 0..16 pixels
        self.bias = params["bias"]  # (10,)

    def handle(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call, from inputs to outputs (a batch of requests)."""
        outputs = self.postprocess(self.predict(self.preprocess(inputs)))
        LOG.info("classified %d image(s)", len(outputs["LABEL"]))
        return outputs

    def preprocess(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """=== 1. PRE-PROCESSING: the images, checked to be on the 0..16 scale. ==="""
        images = inputs["IMAGE"]
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


MODEL = Model()


# The outer callable (with_request_context) sees each request's NVCF headers;
# @batch then hands the model the requests' inputs stacked along the batch axis.
@with_request_context
@batch
def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
    """PyTriton's infer callable."""
    return MODEL.handle(inputs)


def bind(triton: Triton) -> None:
    """Bind the model to the server (called by ``serve``)."""
    triton.bind(
        model_name=MODEL_NAME,
        infer_func=infer,
        inputs=INPUTS,
        outputs=OUTPUTS,
        config=ModelConfig(
            max_batch_size=MAX_BATCH_SIZE,
            batcher=DynamicBatcher(max_queue_delay_microseconds=100),
        ),
        strict=True,
    )


if __name__ == "__main__":
    # LOG_LEVEL (the image sets INFO): DEBUG adds more detail.
    serve(bind, log_level=os.environ.get("LOG_LEVEL", "INFO").upper())
