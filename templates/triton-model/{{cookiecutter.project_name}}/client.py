"""Invoke {{ cookiecutter.model_name }} the way NVCF's worker does: KServe v2 JSON plus the NVCF-* headers.

    nvcf-helpers serve model_repository      # in one terminal (a PyTriton project: python run.py)
    python client.py                          # in another
    python client.py --max-response-bytes 64  # small limit: outputs become large outputs

The worker creates a per-request output directory and names it in
NVCF-LARGE-OUTPUT-DIR; this client does the same with a temporary directory
and prints what the model left there (progress, large outputs).
Needs ``tritonclient[http]`` and ``numpy``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

MODEL_NAME = "{{ cookiecutter.model_name }}"
FUNCTION_NAME = "{{ cookiecutter.project_name }}"
MAX_BATCH_SIZE = {{ cookiecutter.max_batch_size | int }}
# (name, Triton data type, numpy type, dims without the batch dimension)
INPUTS: list[tuple[str, str, Any, tuple[int, ...]]] = [
{%- for t in cookiecutter.inputs | tensors %}
    ("{{ t.name }}", "{{ t.data_type }}", {{ t.numpy_type }}, {{ t.dims }}),
{%- endfor %}
]
OUTPUTS = [{% for t in cookiecutter.outputs | tensors %}"{{ t.name }}"{{ ", " if not loop.last }}{% endfor %}]
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024  # what NVCF sends as NVCF-MAX-RESPONSE-SIZE-BYTES


def example_inputs(size: int = 4) -> dict[str, np.ndarray]:
    """One request's inputs: each variable dimension ``size`` long, plus a batch of one."""
    arrays = {}
    for name, _, dtype, dims in INPUTS:
        shape = tuple(size if d == -1 else d for d in dims)
        if MAX_BATCH_SIZE > 0:
            shape = (1, *shape)
        count = int(np.prod(shape))
        if dtype is np.object_:
            values = np.array([str(i).encode() for i in range(count)], dtype=np.object_)
        elif dtype is np.bool_:
            values = np.arange(count) % 2 == 0
        else:
            values = np.arange(count).astype(dtype)
        arrays[name] = values.reshape(shape)
    return arrays


def nvcf_headers(
    output_dir: Path,
    *,
    request_id: str | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    asset_dir: Path | None = None,
) -> dict[str, str]:
    """The headers NVCF's worker sends with every request (local stand-in values)."""
    return {
        "NVCF-REQID": request_id or str(uuid.uuid4()),
        "NVCF-SUB": "local-subject",
        "NVCF-NCAID": "local-nca-id",
        "NVCF-FUNCTION-NAME": FUNCTION_NAME,
        "NVCF-FUNCTION-ID": "00000000-0000-0000-0000-000000000001",
        "NVCF-FUNCTION-VERSION-ID": "00000000-0000-0000-0000-000000000002",
        "NVCF-ASSET-DIR": str(asset_dir or output_dir.parent / "assets"),
        "NVCF-LARGE-OUTPUT-DIR": str(output_dir),
        "NVCF-MAX-RESPONSE-SIZE-BYTES": str(max_response_bytes),
        "NVCF-BACKEND": "local",
        "NVCF-INSTANCETYPE": "local",
        "NVCF-REGION": "local",
        "NVCF-ENV": "local",
    }


def infer(
    url: str, inputs: dict[str, np.ndarray], headers: dict[str, str]
) -> dict[str, np.ndarray]:
    """Send one request (JSON, as NVCF's PREDICT_V2 body format) and return the outputs.

    Raises:
        InferenceServerException: the server answered with an error (``.status()``, ``.message()``).
    """
    client = httpclient.InferenceServerClient(url)
    try:
        request_inputs = []
        for name, array in inputs.items():
            tensor = httpclient.InferInput(name, list(array.shape), _data_type(name))
            tensor.set_data_from_numpy(array, binary_data=False)
            request_inputs.append(tensor)
        requested = [httpclient.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]
        result = client.infer(MODEL_NAME, request_inputs, outputs=requested, headers=headers)
        return {name: result.as_numpy(name) for name in OUTPUTS}
    finally:
        client.close()


def _data_type(name: str) -> str:
    return next(data_type for input_name, data_type, _, _ in INPUTS if input_name == name)


def main(argv: list[str] | None = None) -> int:
    """Invoke the model once and print what came back."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default="127.0.0.1:8000", help="host:port of Triton's HTTP endpoint"
    )
    parser.add_argument("--max-response-bytes", type=int, default=DEFAULT_MAX_RESPONSE_BYTES)
    parser.add_argument("--size", type=int, default=4, help="length of each variable dimension")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nvcf-request-") as scratch:
        output_dir = Path(scratch) / "output"
        output_dir.mkdir()
        headers = nvcf_headers(output_dir, max_response_bytes=args.max_response_bytes)
        inputs = example_inputs(args.size)
        try:
            outputs = infer(args.url, inputs, headers)
        except InferenceServerException as exc:
            print(f"error {exc.status()}: {exc.message()}", file=sys.stderr)
            return 1
        print(f"request {headers['NVCF-REQID']}")
        for name, array in outputs.items():
            print(f"{name} {list(array.shape)}: {array.tolist()}")
        for path in sorted(output_dir.iterdir()):
            if path.name == "progress":
                print(f"progress file: {json.loads(path.read_text())}")
            else:
                print(f"large output {path.name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
