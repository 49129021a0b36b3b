"""The digits example as BYOM (a Triton model repository) against PyTriton, measured in one run.

    python benchmarks/examples.py [--requests 1500] [--images 1]     (or: make bench)

Serves ``examples/byom/digits`` with the ``tritonserver`` of the
nvidia-pytriton wheel (what NVCF runs for a model-only function) and
``examples/pytriton/digits/run.py`` (what a PyTriton container function
runs), both at once, and calls each with tritonclient HTTP requests carrying
NVCF headers, straight to the server (no gateway in between), alternating
A B B A ...: one client, then 8 concurrent clients (threads, each with its own
connections, each alternating). Each request classifies ``--images`` images.
Same model, same weights, same batching limits (``max_batch_size`` 64,
dynamic batching with a 100 us queue delay): what differs is the serving path.

Figures: BYOM's median latency over PyTriton's (PyTriton's requests/s
relative to BYOM's), with 1 and with 8 clients. Bounds: at least 0.2 and 0.15,
floors below which the PyTriton path has regressed; about 0.35 and 0.2-0.25
are expected on a 2-core machine, for these reasons. A BYOM request goes
HTTP -> tritonserver -> dynamic batcher -> the Python backend stub, which
runs the numpy model itself, and back: one process hop over shared memory. A PyTriton request
takes the same path to a stub, but that stub is PyTriton's proxy model, which
hands the batch over ZeroMQ and shared memory to the ``run.py`` process
(asyncio, a thread for the callable, the adapter and ``@batch`` unpacking
it), and the answer comes back the same way: two process hops and more Python
per request. The model itself takes microseconds, so the serving path is all
that is measured; for a model that computes for milliseconds (on a GPU, say)
the fixed cost matters far less.

Server logs go to ``build/bench-logs/examples-*.log``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import numpy as np
import numpy.typing as npt
import tritonclient.http as httpclient
from figures import Figure, interleaved_medians, report
from servers import ROOT, log_path, one_line_failures, pytriton_process

from nvcf_helpers import names
from nvcf_helpers.tritonserver import TritonServer

BYOM = ROOT / "examples" / "byom" / "digits" / "model_repository"
PYTRITON = ROOT / "examples" / "pytriton" / "digits" / "run.py"
CONCURRENT_CLIENTS = 8
#: Figure floors, by number of clients.
BOUNDS = {1: 0.2, CONCURRENT_CLIENTS: 0.15}

Images = npt.NDArray[np.float32]


def _images(count: int) -> Images:
    from sklearn.datasets import load_digits

    images: Images = load_digits().images[:count].astype(np.float32)
    return images


def _caller(url: str, images: Images, stack: ExitStack) -> Callable[[], object]:
    """One connection classifying ``images`` with NVCF headers; closed with ``stack``."""
    client = httpclient.InferenceServerClient(url)
    stack.callback(client.close)
    tensor = httpclient.InferInput("IMAGE", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    headers = {names.REQUEST_ID: str(uuid.uuid4()), names.FUNCTION_ID: "bench"}
    return lambda: client.infer("digits", [tensor], headers=headers)


def concurrent_medians(urls: dict[str, str], images: Images, requests: int) -> dict[str, float]:
    """Median latency of each server while 8 clients each alternate between them."""
    results: list[dict[str, float]] = []
    errors: list[BaseException] = []
    start_line = threading.Barrier(CONCURRENT_CLIENTS)

    def client() -> None:
        try:
            with ExitStack() as stack:
                calls = {name: _caller(url, images, stack) for name, url in urls.items()}
                start_line.wait()
                results.append(interleaved_medians(calls, requests, warmup=20))
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)
            start_line.abort()

    threads = [threading.Thread(target=client) for _ in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {name: statistics.median(r[name] for r in results) for name in urls}


def figures(requests: int, images: Images) -> Iterator[Figure]:
    label = f"{len(images)} image{'s' if len(images) > 1 else ''}"
    log = log_path("examples-byom")
    with (
        log.open("w") as stream,
        TritonServer(BYOM, disable_auto_complete_config=True, stdout=stream) as byom,
        pytriton_process(PYTRITON, "digits", "examples-pytriton") as pytriton_url,
        ExitStack() as stack,
    ):
        byom.wait_ready(timeout=120)
        urls = {"byom": byom.url.removeprefix("http://"), "pytriton": pytriton_url}
        calls = {name: _caller(url, images, stack) for name, url in urls.items()}
        medians = interleaved_medians(calls, requests)
        yield Figure(
            f"digits, PyTriton vs BYOM, 1 client, {label}",
            medians["byom"] / medians["pytriton"],
            BOUNDS[1],
        )
        medians = concurrent_medians(urls, images, requests // CONCURRENT_CLIENTS)
        yield Figure(
            f"digits, PyTriton vs BYOM, {CONCURRENT_CLIENTS} clients, {label}",
            medians["byom"] / medians["pytriton"],
            BOUNDS[CONCURRENT_CLIENTS],
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests to each server")
    parser.add_argument("--images", type=int, default=1, help="images per request (1 to 64)")
    args = parser.parse_args(argv)
    with one_line_failures():
        return report(figures(args.requests, _images(args.images)))


if __name__ == "__main__":
    sys.exit(main())
