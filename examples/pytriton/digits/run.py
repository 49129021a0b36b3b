"""The digits classifier as a PyTriton container function.

The same model as ``examples/byom/digits`` (the weights in ``digits.npz`` are
the ones ``examples/byom/digits/train.py`` writes), bound with PyTriton:
``@batch`` with dynamic batching, behind the NVCF adapter, which reads each
request's ``NVCF-*`` headers before ``@batch`` drops them, so the log lines of
a batch carry its request ids and a bad image is answered with a 400.

Model ``digits``: input ``IMAGE`` (FP32, [8, 8], pixels on the data set's
0..16 scale); outputs ``PROBABILITIES`` (FP32, [10]) and ``LABEL`` (INT64, [1]).

Run it with ``python run.py``: ports come from PyTriton's
``PYTRITON_TRITON_CONFIG_HTTP_PORT`` / ``_GRPC_PORT`` / ``_METRICS_PORT``
(8000/8001/8002 when unset); SIGTERM shuts it down cleanly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

from nvcf_helpers import InputError
from nvcf_helpers.pytriton import serve, with_request_context

LOG = logging.getLogger("digits")
MODEL_NAME = "digits"
MAX_BATCH_SIZE = 64
PIXEL_MAX = 16.0

_PARAMS = np.load(Path(__file__).with_name("digits.npz"))
WEIGHTS = _PARAMS["weights"]
BIAS = _PARAMS["bias"]


@with_request_context
@batch
def infer(IMAGE: np.ndarray) -> dict[str, np.ndarray]:
    """Probabilities and label for a batch of images (several requests' worth)."""
    if not np.isfinite(IMAGE).all() or IMAGE.min() < 0.0 or IMAGE.max() > PIXEL_MAX:
        raise InputError(
            "input IMAGE has pixels outside 0..16: scale images to the digits data set's "
            "0..16 range (for 0..255 grey levels, multiply by 16/255)"
        )
    logits = IMAGE.reshape(len(IMAGE), 64) @ WEIGHTS + BIAS
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probabilities = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = probabilities.argmax(axis=1).astype(np.int64).reshape(-1, 1)
    LOG.info("classified %d image(s)", len(IMAGE))
    return {"PROBABILITIES": probabilities, "LABEL": labels}


def bind(triton: Any) -> None:
    """Bind the model to the running PyTriton server."""
    triton.bind(
        model_name=MODEL_NAME,
        infer_func=infer,
        inputs=[Tensor(name="IMAGE", dtype=np.float32, shape=(8, 8))],
        outputs=[
            Tensor(name="PROBABILITIES", dtype=np.float32, shape=(10,)),
            Tensor(name="LABEL", dtype=np.int64, shape=(1,)),
        ],
        config=ModelConfig(
            max_batch_size=MAX_BATCH_SIZE,
            batcher=DynamicBatcher(max_queue_delay_microseconds=100),
        ),
        strict=True,
    )


if __name__ == "__main__":
    serve(bind)
