"""The digits example as BYOM (a Triton model repository) against PyTriton: requests per second.

    python benchmarks/examples.py [--seconds 4] [--images 1]

Serves ``examples/byom/digits`` with the ``tritonserver`` of the
nvidia-pytriton wheel (what NVCF runs for a model-only function), then
``examples/pytriton/digits/run.py`` (what a PyTriton container function
runs), one after the other on the same machine, and drives each with
tritonclient HTTP requests carrying NVCF headers, straight to the server (no
gateway in between): 1 sequential client, then 8 concurrent clients (threads,
each with its own connection). Each request classifies ``--images`` images.
Same model, same weights, same batching limits (``max_batch_size`` 64,
dynamic batching with a 100 us queue delay): what differs is the serving path.

Prints requests/s for each, and the ratios PyTriton / BYOM measured in this run.
The figures move with the machine and its load; the ratios are what to read.

Why PyTriton is slower here (about 0.3 of BYOM on a 2-core machine): a BYOM
request goes HTTP -> tritonserver -> dynamic batcher -> the Python backend
stub, which runs the numpy model itself, and back: one process hop over
shared memory. A PyTriton request takes the same path to a stub, but that
stub is PyTriton's proxy model, which hands the batch over ZeroMQ and shared
memory to the ``run.py`` process (asyncio, a thread for the callable, the
adapter and ``@batch`` unpacking it), and the answer comes back the same way:
two process hops and more Python per request. The model itself takes
microseconds, so the serving path is all that is measured; for a model that
computes for milliseconds (on a GPU, say) the fixed cost matters far less.
Both scale by about the same factor from 1 to 8 clients: dynamic batching
merges concurrent requests, and the 2 cores shared by clients and server cap it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

from nvcf_helpers.testing import free_port, wait_for_http
from nvcf_helpers.tritonserver import TritonServer

ROOT = Path(__file__).resolve().parent.parent
BYOM = ROOT / "examples" / "byom" / "digits" / "model_repository"
PYTRITON = ROOT / "examples" / "pytriton" / "digits" / "run.py"
CLIENT_COUNTS = (1, 8)


def _images(count: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images[:count].astype(np.float32)


def _rate(url: str, images: np.ndarray, clients: int, seconds: float) -> float:
    """Requests per second that ``clients`` threads get through in ``seconds``."""
    done = [0] * clients
    stop = time.monotonic() + seconds
    start_line = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        client = httpclient.InferenceServerClient(url)
        tensor = httpclient.InferInput("IMAGE", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images)
        headers = {"NVCF-REQID": str(uuid.uuid4()), "NVCF-FUNCTION-ID": "bench"}
        client.infer("digits", [tensor], headers=headers)  # warm the connection
        start_line.wait()
        while time.monotonic() < stop:
            client.infer("digits", [tensor], headers=headers)
            done[index] += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - began)


def _measure(url: str, images: np.ndarray, seconds: float) -> dict[int, float]:
    _rate(url, images, 8, 1.0)  # warm-up: model instances, batcher, allocator
    return {clients: _rate(url, images, clients, seconds) for clients in CLIENT_COUNTS}


def byom(images: np.ndarray, seconds: float) -> dict[int, float]:
    """Serve the BYOM repository with tritonserver and measure it."""
    with TritonServer(BYOM) as server:
        server.wait_ready()
        return _measure(server.url.removeprefix("http://"), images, seconds)


def pytriton(images: np.ndarray, seconds: float) -> dict[int, float]:
    """Start the PyTriton run.py and measure it."""
    port = free_port()
    prefix = "PYTRITON_TRITON_CONFIG_"
    env = {
        **os.environ,
        f"{prefix}HTTP_PORT": str(port),
        f"{prefix}GRPC_PORT": str(free_port()),
        f"{prefix}METRICS_PORT": str(free_port()),
        f"{prefix}HTTP_ADDRESS": "127.0.0.1",
        f"{prefix}GRPC_ADDRESS": "127.0.0.1",
        f"{prefix}METRICS_ADDRESS": "127.0.0.1",
    }
    with tempfile.TemporaryDirectory() as home:
        env.setdefault("PYTRITON_HOME", home)
        process = subprocess.Popen(
            [sys.executable, str(PYTRITON)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/v2/models/digits/ready", timeout=120)
            return _measure(f"127.0.0.1:{port}", images, seconds)
        finally:
            process.terminate()
            process.wait(60)


def main(argv: list[str] | None = None) -> int:
    """Measure both and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--images", type=int, default=1, help="images per request (1 to 64)")
    args = parser.parse_args(argv)
    images = _images(args.images)
    runs: dict[str, Callable[[np.ndarray, float], dict[int, float]]] = {
        "BYOM (tritonserver + Python backend)": byom,
        "PyTriton (run.py)": pytriton,
    }
    results = {name: run(images, args.seconds) for name, run in runs.items()}
    print(f"digits, {args.images} image(s) per request, {args.seconds:g} s per figure")
    for name, rates in results.items():
        figures = ", ".join(f"{c} client(s): {rate:7.1f} req/s" for c, rate in rates.items())
        print(f"  {name:<38} {figures}")
    byom_rates, pytriton_rates = results.values()
    for clients in CLIENT_COUNTS:
        ratio = pytriton_rates[clients] / byom_rates[clients]
        print(f"  PyTriton / BYOM at {clients} client(s): {ratio:.2f}")
    for name, rates in results.items():
        print(f"  {name}: 8 clients / 1 client: {rates[8] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
