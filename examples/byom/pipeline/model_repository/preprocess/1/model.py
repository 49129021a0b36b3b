"""Triton Python-backend model: 8-bit greyscale images -> the classifier's input.

Input ``PIXELS`` (UINT8, [batch, H, W], H and W multiples of 8, 0..255 grey
levels); output ``IMAGE`` (FP32, [batch, 8, 8]) on the digits data set's 0..16
scale. Each 8x8 output pixel is the mean of an (H/8)x(W/8) block, scaled by
16/255: this is how the data set itself was made from 32x32 bitmaps (the count
of "on" pixels in each 4x4 block), so a 32x32 scan works as well as an 8x8 one.
"""

from __future__ import annotations

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

LOG = logging.getLogger("preprocess")


def to_digits_scale(pixels: np.ndarray) -> np.ndarray:
    """Block-average ``pixels`` (n, H, W) uint8 to (n, 8, 8) float32 on 0..16."""
    count, height, width = pixels.shape
    if height == 0 or width == 0 or height % 8 or width % 8:
        raise InputError(
            f"input PIXELS has images of {height}x{width} pixels: send images whose height "
            "and width are multiples of 8 (8x8, 16x16, 32x32, ...)"
        )
    blocks = pixels.reshape(count, 8, height // 8, 8, width // 8).astype(np.float32)
    return (blocks.mean(axis=(2, 4)) * (16.0 / 255.0)).astype(np.float32)


class TritonPythonModel:
    """Pre-processing as Triton's Python backend calls it."""

    def initialize(self, args: dict[str, str]) -> None:
        """Set up NVCF-format logging."""
        configure_logging()
        LOG.info("preprocess model loaded (instance %s)", args["model_instance_name"])

    def execute(self, requests: list[Any]) -> list[Any]:
        """Answer each request of the batch Triton hands over."""
        return execute_requests(requests, self.prepare)

    def prepare(self, request: Any, ctx: RequestContext) -> dict[str, np.ndarray]:
        """Convert one request's images."""
        images = to_digits_scale(input_array(request, "PIXELS"))
        LOG.info("preprocessed %d image(s)", len(images))
        return {"IMAGE": images}
