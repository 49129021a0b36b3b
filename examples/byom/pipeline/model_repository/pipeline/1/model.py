"""Triton Python-backend model: a batch job that composes two models through BLS.

One request classifies every image of the input assets it names (each asset
an ``.npy`` of UINT8 greyscale images, shape (n, H, W) or (H, W)). Per chunk of
``CHUNK_SIZE`` images (64 by default) it calls ``preprocess`` and then
``digits`` with Business Logic Scripting, and reports progress with a partial
response. The per-image results come back inline in ``RESULTS`` when they fit
``NVCF-MAX-RESPONSE-SIZE-BYTES``, and otherwise as the large output
``results.json`` (written as ``results.json.partial``, then renamed), with
``RESULTS`` holding a small reference to it. ``COUNTS`` (images per digit) is
always inline.

The NVCF request context travels with every BLS call as request parameters,
so the log lines of ``preprocess`` and ``digits`` carry this request's id too.
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
import triton_python_backend_utils as pb_utils

from nvcf_helpers import (
    InputError,
    NvcfHelperError,
    ProgressReporter,
    RequestContext,
    configure_logging,
    large_output,
    open_asset,
)
from nvcf_helpers.triton_backend import execute_requests, scalar_input

LOG = logging.getLogger("pipeline")
DEFAULT_CHUNK = 64
MAX_CHUNK = 64  # the max_batch_size of preprocess and digits
RESULTS_FILE = "results.json"
# Room for the KServe JSON around the RESULTS string (names, shapes, COUNTS).
RESPONSE_OVERHEAD_BYTES = 1024


class StepError(NvcfHelperError):
    """A model called through BLS failed for a reason that is not the caller's."""


def _load_images(ctx: RequestContext, asset_id: str) -> np.ndarray:
    with open_asset(ctx, asset_id) as stream:
        try:
            images = np.load(stream, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(
                f"asset {asset_id} is not a .npy array ({exc}): save the images with numpy.save"
            ) from None
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InputError(
            f"asset {asset_id} holds a {images.dtype} array of shape {images.shape}: send "
            "UINT8 greyscale images shaped (n, H, W) or one image shaped (H, W)"
        )
    # Checked here, not left to preprocess: an error that comes back through BLS
    # has lost its INVALID_ARG code, and the caller deserves a 400.
    _, height, width = images.shape
    if height == 0 or width == 0 or height % 8 or width % 8:
        raise InputError(
            f"asset {asset_id} has images of {height}x{width} pixels: send images whose height "
            "and width are multiples of 8 (8x8, 16x16, 32x32, ...)"
        )
    return images


def _call(model: str, ctx: RequestContext, tensor: Any, outputs: list[str]) -> list[np.ndarray]:
    request = pb_utils.InferenceRequest(
        model_name=model,
        inputs=[tensor],
        requested_output_names=outputs,
        parameters=ctx.to_headers(),  # the request context, for the callee's log lines
    )
    response = request.exec()
    if response.has_error():
        error = response.error()
        raise StepError(f"{model}: {error.message()}")
    return [pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs]


class TritonPythonModel:
    """The pipeline as Triton's Python backend calls it."""

    def initialize(self, args: dict[str, str]) -> None:
        """Set up NVCF-format logging."""
        configure_logging()
        LOG.info("pipeline model loaded (instance %s)", args["model_instance_name"])

    def execute(self, requests: list[Any]) -> list[Any]:
        """Run each request's job; every failure becomes a clean Triton error."""
        return execute_requests(requests, self._job)

    def _job(self, request: Any, ctx: RequestContext) -> dict[str, np.ndarray]:
        if not ctx.asset_ids:
            raise InputError(
                "no input asset was sent: upload an .npy of UINT8 images as an NVCF asset and "
                "invoke with header NVCF-INPUT-ASSET-REFERENCES: <asset id>"
            )
        chunk = scalar_input(request, "CHUNK_SIZE", int, DEFAULT_CHUNK)
        if not 1 <= chunk <= MAX_CHUNK:
            raise InputError(
                f"CHUNK_SIZE is {chunk}: send a number of images from 1 to {MAX_CHUNK}"
            )
        assets = [(asset_id, _load_images(ctx, asset_id)) for asset_id in ctx.asset_ids]
        total = sum(len(images) for _, images in assets)
        reporter = ProgressReporter(ctx) if ctx.large_output_dir is not None else None
        LOG.info("classifying %d image(s) from %d asset(s)", total, len(assets))
        results: list[dict[str, Any]] = []
        counts = np.zeros(10, np.int64)
        for asset_id, images in assets:
            for start in range(0, len(images), chunk):
                pixels = pb_utils.Tensor("PIXELS", images[start : start + chunk])
                (prepared,) = _call("preprocess", ctx, pixels, ["IMAGE"])
                probabilities, labels = _call(
                    "digits", ctx, pb_utils.Tensor("IMAGE", prepared), ["PROBABILITIES", "LABEL"]
                )
                for offset, (label, probs) in enumerate(
                    zip(labels.ravel(), probabilities, strict=True)
                ):
                    results.append(
                        {
                            "asset": asset_id,
                            "index": start + offset,
                            "label": int(label),
                            "probability": round(float(probs[label]), 4),
                        }
                    )
                counts += np.bincount(labels.ravel(), minlength=10)
                if reporter is not None:
                    reporter.update(
                        len(results) * 100 // total,
                        {"processed": len(results), "total": total, "counts": counts.tolist()},
                    )
        text = self._results_text(ctx, results)
        LOG.info("done: %d image(s), counts %s", total, counts.tolist())
        return {"RESULTS": np.array([text.encode("utf-8")], dtype=np.object_), "COUNTS": counts}

    def _results_text(self, ctx: RequestContext, results: list[dict[str, Any]]) -> str:
        text = json.dumps({"images": len(results), "results": results}, separators=(",", ":"))
        # Inline, the text travels JSON-escaped inside Triton's response body.
        inline_size = len(json.dumps(text)) + RESPONSE_OVERHEAD_BYTES
        if inline_size <= ctx.max_response_bytes:
            return text
        with large_output(ctx, RESULTS_FILE) as stream:
            stream.write(text.encode("utf-8"))
        LOG.info(
            "results (%d bytes) exceed the %d-byte response limit: written to %s",
            len(text),
            ctx.max_response_bytes,
            RESULTS_FILE,
        )
        return json.dumps({"images": len(results), "largeOutput": RESULTS_FILE, "bytes": len(text)})
