"""A long-running job as a PyTriton container function: model selection on an uploaded data set.

Model ``tune``: the caller uploads a labelled data set as an NVCF input asset
(an ``.npz`` holding ``images``, shape (n, 8, 8), pixels 0..16, and
``labels``, shape (n,), digits 0..9; ``prepare.py`` writes one from
scikit-learn's digits). The job cross-validates a small neural network
(``mlp.py``) over a grid of hidden-layer sizes and learning rates, which
takes from seconds to minutes, and:

- reports progress after every fit, with a partial response holding the
  best configuration so far (NVCF passes it to the caller as a 202);
- refits the best configuration on all the data and writes two large
  outputs, ``model.npz`` (the weights) and ``trials.json`` (every fold's
  score), each as ``<name>.partial`` renamed when complete;
- answers with a short JSON summary in ``SUMMARY``.

Inputs (all optional; KServe v2 JSON body on ``/v2/models/tune/infer``):
``HIDDEN`` (INT32, [-1], default 16,32,64,128), ``LEARNING_RATE`` (FP32,
[-1], default 0.03,0.1,0.3), ``FOLDS`` (INT32, [1], default 5), ``EPOCHS``
(INT32, [1], default 40), ``SEED`` (INT64, [1], default 0). The defaults make
60 fits: several seconds on a laptop CPU.

The adapter reads each request's ``NVCF-*`` headers (asset directory, output
directory, request id) in an undecorated outer callable and calls the job
once per request (``per_request=True``), so ``current_context()`` is that
request's context.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import time
from typing import Any

import numpy as np
from mlp import Params, fit, folds
from pytriton.model_config import ModelConfig, Tensor

from nvcf_helpers import (
    InputError,
    ProgressReporter,
    RequestContext,
    large_output,
    open_asset,
)
from nvcf_helpers.pytriton import current_context, serve, with_request_context

LOG = logging.getLogger("tune")
MODEL_NAME = "tune"
DEFAULTS: dict[str, list[float]] = {
    "HIDDEN": [16, 32, 64, 128],
    "LEARNING_RATE": [0.03, 0.1, 0.3],
    "FOLDS": [5],
    "EPOCHS": [40],
    "SEED": [0],
}
MAX_CONFIGURATIONS = 64
REFIT_SHARE = 5  # percent of the progress bar kept for the final refit


def _values(request: Any, name: str) -> list[Any]:
    if name not in request:
        return list(DEFAULTS[name])
    values = np.asarray(request[name]).reshape(-1).tolist()
    if not values:
        raise InputError(f"input {name} is empty: send at least one value or leave it out")
    return values


def _one(request: Any, name: str, low: int, high: int) -> int:
    values = _values(request, name)
    if len(values) != 1 or not low <= int(values[0]) <= high:
        raise InputError(f"input {name} is {values}: send one integer from {low} to {high}")
    return int(values[0])


def read_settings(request: Any) -> dict[str, Any]:
    """The job's settings from the request's inputs, checked."""
    hidden = [int(v) for v in _values(request, "HIDDEN")]
    rates = [float(v) for v in _values(request, "LEARNING_RATE")]
    if any(not 1 <= h <= 1024 for h in hidden):
        raise InputError(f"input HIDDEN is {hidden}: layer sizes must be 1 to 1024")
    if any(not 0.0 < r <= 10.0 for r in rates):
        raise InputError(f"input LEARNING_RATE is {rates}: rates must be above 0 and at most 10")
    if len(hidden) * len(rates) > MAX_CONFIGURATIONS:
        raise InputError(
            f"{len(hidden)} sizes x {len(rates)} rates is more than {MAX_CONFIGURATIONS} "
            "configurations: send a smaller grid"
        )
    return {
        "hidden": hidden,
        "learning_rates": rates,
        "folds": _one(request, "FOLDS", 2, 10),
        "epochs": _one(request, "EPOCHS", 1, 500),
        "seed": _one(request, "SEED", 0, 2**31 - 1),
    }


def load_dataset(ctx: RequestContext) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of the request's (single) input asset."""
    if len(ctx.asset_ids) != 1:
        raise InputError(
            f"the job needs exactly one input asset, got {len(ctx.asset_ids)}: upload the .npz "
            "and invoke with header NVCF-INPUT-ASSET-REFERENCES: <asset id>"
        )
    (asset_id,) = ctx.asset_ids
    with open_asset(ctx, asset_id) as stream:
        try:
            archive = np.load(io.BytesIO(stream.read()), allow_pickle=False)
            images, labels = archive["images"], archive["labels"]
        except (ValueError, OSError, KeyError) as exc:
            raise InputError(
                f"asset {asset_id} is not an .npz with arrays 'images' and 'labels' ({exc}): "
                "save it with numpy.savez(path, images=..., labels=...)"
            ) from None
    if images.ndim != 3 or images.shape[1:] != (8, 8) or labels.shape != (len(images),):
        raise InputError(
            f"asset {asset_id} has images {images.shape} and labels {labels.shape}: expected "
            "images (n, 8, 8) and labels (n,)"
        )
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        raise InputError(f"asset {asset_id} has labels that are not digits 0..9")
    return images.astype(np.float32), labels.astype(np.int64)


def run_job(ctx: RequestContext, settings: dict[str, Any]) -> dict[str, Any]:
    """Cross-validate the grid, refit the best, write the large outputs; returns the summary."""
    images, labels = load_dataset(ctx)
    progress = ProgressReporter(ctx)
    grid = list(itertools.product(settings["hidden"], settings["learning_rates"]))
    parts = folds(len(images), settings["folds"], settings["seed"])
    fits, done = len(grid) * len(parts), 0
    LOG.info("job: %d images, %d configurations x %d folds", len(images), len(grid), len(parts))
    progress.update(0, {"fits": fits, "done": 0})
    started = time.monotonic()
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for hidden, rate in grid:
        scores = []
        for held_out in parts:
            train = np.setdiff1d(np.arange(len(images)), held_out)
            params = fit(
                images[train],
                labels[train],
                hidden=hidden,
                learning_rate=rate,
                epochs=settings["epochs"],
                seed=settings["seed"],
            )
            scores.append(float((params.predict(images[held_out]) == labels[held_out]).mean()))
            done += 1
            progress.update(
                done * (100 - REFIT_SHARE) // fits,
                {"fits": fits, "done": done, "best": best},
            )
        trial = {
            "hidden": hidden,
            "learning_rate": rate,
            "fold_accuracy": [round(s, 4) for s in scores],
            "cv_accuracy": round(float(np.mean(scores)), 4),
        }
        trials.append(trial)
        LOG.info("hidden=%d rate=%g: cv accuracy %.4f", hidden, rate, trial["cv_accuracy"])
        if best is None or trial["cv_accuracy"] > best["cv_accuracy"]:
            best = {k: trial[k] for k in ("hidden", "learning_rate", "cv_accuracy")}
    assert best is not None
    final = fit(
        images,
        labels,
        hidden=best["hidden"],
        learning_rate=best["learning_rate"],
        epochs=settings["epochs"],
        seed=settings["seed"],
    )
    _write_outputs(ctx, final, best, trials, settings)
    seconds = round(time.monotonic() - started, 2)
    progress.update(100, {"fits": fits, "done": fits, "best": best})
    LOG.info("job done in %.2f s: best %s", seconds, best)
    return {
        "best": best,
        "configurations": len(grid),
        "fits": fits,
        "seconds": seconds,
        "outputs": ["model.npz", "trials.json"],
    }


def _write_outputs(
    ctx: RequestContext,
    params: Params,
    best: dict[str, Any],
    trials: list[dict[str, Any]],
    settings: dict[str, Any],
) -> None:
    with large_output(ctx, "model.npz") as stream:
        np.savez(stream, w1=params.w1, b1=params.b1, w2=params.w2, b2=params.b2)
    report = {"settings": settings, "best": best, "trials": trials}
    with large_output(ctx, "trials.json") as stream:
        stream.write(json.dumps(report, indent=2).encode("utf-8"))


@with_request_context(per_request=True)
def infer(requests: list[Any]) -> list[dict[str, np.ndarray]]:
    """Run one request's job (the adapter calls this once per request)."""
    (request,) = requests
    summary = run_job(current_context(), read_settings(request))
    return [{"SUMMARY": np.array([json.dumps(summary).encode("utf-8")], dtype=np.object_)}]


def bind(triton: Any) -> None:
    """Bind the job to the running PyTriton server."""
    triton.bind(
        model_name=MODEL_NAME,
        infer_func=infer,
        inputs=[
            Tensor(name="HIDDEN", dtype=np.int32, shape=(-1,), optional=True),
            Tensor(name="LEARNING_RATE", dtype=np.float32, shape=(-1,), optional=True),
            Tensor(name="FOLDS", dtype=np.int32, shape=(1,), optional=True),
            Tensor(name="EPOCHS", dtype=np.int32, shape=(1,), optional=True),
            Tensor(name="SEED", dtype=np.int64, shape=(1,), optional=True),
        ],
        outputs=[Tensor(name="SUMMARY", dtype=bytes, shape=(1,))],
        config=ModelConfig(batching=False),
        strict=True,
    )


if __name__ == "__main__":
    # LOG_LEVEL (the image sets INFO): DEBUG adds more detail.
    serve(bind, log_level=os.environ.get("LOG_LEVEL", "INFO").upper())
