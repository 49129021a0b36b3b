"""A streaming language model as a PyTriton container function (decoupled model).

Model ``textgen`` continues a prompt with a word-trigram model trained on
scikit-learn's data set descriptions (``train.py`` writes ``lm.json``; ``lm.py``
samples). It is decoupled: its infer function is a generator that yields one
response per token, which Triton streams as Server-Sent Events on
``POST /v2/models/textgen/generate_stream`` (``/infer`` cannot stream; Triton
answers it 501 for a decoupled model).

Request body (Triton's generate extension: keys that name inputs are inputs,
the other keys are parameters)::

    {"PROMPT": "The digits data set", "MAX_TOKENS": 24, "SEED": 7, "correlation_id": "job-42"}

Each event: ``{"TOKEN": " word", "REQUEST_ID": "...", "model_name": ...}``.

Request context. Triton 2.51 does not forward HTTP headers to the model on
``/generate`` and ``/generate_stream`` (only on ``/infer``), so the
``NVCF-*`` headers NVCF's worker sends never reach this code. What the
function does instead:

- the function's identity (function id, version, name, NCA id, region...)
  comes from the ``NVCF_*`` environment variables NVCF sets in the container
  (``RequestContext.from_env``), logged once at start;
- a request id for log lines comes from the body: ``correlation_id`` when the
  caller sends one, else a fresh UUID; either way it is echoed in every event
  (``REQUEST_ID``) so the caller can find the request's log lines;
- should a Triton release forward headers on these endpoints, an
  ``NVCF-REQID`` found in the parameters wins, with no code change.

Per-request directories (assets, large outputs, progress) do not exist for
streamed requests in NVCF, so this function uses none.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from lm import LanguageModel
from pytriton.model_config import ModelConfig, Tensor

from nvcf_helpers import InputError, RequestContext
from nvcf_helpers.log import log_request
from nvcf_helpers.pytriton import serve, with_request_context

LOG = logging.getLogger("textgen")
HERE = Path(__file__).resolve().parent
MODEL_NAME = "textgen"
DEFAULT_MAX_TOKENS = 32
MAX_TOKENS_LIMIT = 512


def _scalar(request: Any, name: str, default: int) -> int:
    if name not in request:
        return default
    value = np.asarray(request[name]).reshape(-1)
    if value.size != 1 or value.dtype.kind not in "iu":
        raise InputError(f"{name} must be one integer, got {value.tolist()!r}")
    return int(value[0])


def request_id_of(request: Any) -> str:
    """``NVCF-REQID`` if it ever arrives, else the body's ``correlation_id``, else a new UUID."""
    parameters = request.parameters or {}
    forwarded = RequestContext.from_parameters(parameters).request_id
    if forwarded:
        return forwarded
    correlation = parameters.get("correlation_id")
    if isinstance(correlation, str) and correlation.strip():
        return correlation.strip()
    return str(uuid.uuid4())


class TextGenerator:
    """The infer function: one streamed response per generated token."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    def __call__(self, requests: list[Any]) -> Iterator[list[dict[str, np.ndarray]]]:
        """Stream the continuation of the (single, unbatched) request's prompt."""
        for request in requests:
            request_id = request_id_of(request)
            with log_request(request_id):
                prompt_array = np.asarray(request["PROMPT"]).reshape(-1)
                if prompt_array.size != 1:
                    raise InputError("PROMPT must be one string")
                prompt = bytes(prompt_array[0]).decode("utf-8", errors="replace")
                max_tokens = _scalar(request, "MAX_TOKENS", DEFAULT_MAX_TOKENS)
                seed = _scalar(request, "SEED", 0)
                if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
                    raise InputError(
                        f"MAX_TOKENS is {max_tokens}: ask for 1 to {MAX_TOKENS_LIMIT} tokens"
                    )
                LOG.info(
                    "generating %d token(s) for a %d-character prompt", max_tokens, len(prompt)
                )
                echo = np.array([request_id.encode("utf-8")], dtype=np.object_)
                count = 0
                for token in self.model.generate(prompt, max_tokens, seed):
                    count += 1
                    yield [
                        {
                            "TOKEN": np.array([token.encode("utf-8")], dtype=np.object_),
                            "REQUEST_ID": echo,
                        }
                    ]
                LOG.info("streamed %d token(s)", count)


def main(argv: list[str] | None = None) -> int:
    """Load the model and serve it until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve the streaming text generator.")
    parser.add_argument("--model", type=Path, default=HERE / "lm.json", help="from train.py")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(
            f"run.py: error: {args.model} does not exist: run `python train.py` first",
            file=sys.stderr,
        )
        return 1
    generator = TextGenerator(LanguageModel(json.loads(args.model.read_text(encoding="utf-8"))))

    def bind(triton: Any) -> None:
        identity = RequestContext.from_env()
        LOG.info(
            "serving %s as function %s version %s",
            MODEL_NAME,
            identity.function_id or "(not on NVCF)",
            identity.function_version_id or "-",
        )
        triton.bind(
            model_name=MODEL_NAME,
            # The wrapper turns an InputError into a 400 whose streamed error is
            # the message alone, without PyTriton's traceback.
            infer_func=with_request_context(generator),
            inputs=[
                Tensor(name="PROMPT", dtype=bytes, shape=(1,)),
                Tensor(name="MAX_TOKENS", dtype=np.int32, shape=(1,), optional=True),
                Tensor(name="SEED", dtype=np.int64, shape=(1,), optional=True),
            ],
            outputs=[
                Tensor(name="TOKEN", dtype=bytes, shape=(1,)),
                Tensor(name="REQUEST_ID", dtype=bytes, shape=(1,)),
            ],
            config=ModelConfig(decoupled=True, batching=False),
            strict=True,
        )

    # LOG_LEVEL (the image sets INFO): DEBUG adds more detail.
    serve(bind, log_level=os.environ.get("LOG_LEVEL", "INFO").upper())
    return 0


if __name__ == "__main__":
    sys.exit(main())
