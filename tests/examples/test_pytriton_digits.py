"""pytriton/digits, run as its README says, under the local NVCF."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from example_support import (
    EXAMPLES,
    RunningExample,
    container_env,
    fresh_copy,
    load_module,
    run_example,
)
from tritonclient.utils import InferenceServerException

from nvcf_helpers.testing import free_port, wait_for_http

pytestmark = pytest.mark.integration

EXAMPLE = "pytriton/digits"


@pytest.fixture(scope="module")
def digits(workdir: Path) -> Iterator[RunningExample]:
    """``nvcf-helpers local --spec function.json -- python run.py`` in a fresh copy."""
    with run_example(EXAMPLE, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, np.ndarray]:
    """The held-out images and labels."""
    client = load_module(EXAMPLES / EXAMPLE / "client.py", "pytriton_digits_client")
    images, labels = client.held_out_split()
    return images, labels


def _infer(url: str, images: np.ndarray, request_id: str) -> httpclient.InferResult:
    client = httpclient.InferenceServerClient(url)
    tensor = httpclient.InferInput("IMAGE", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32))
    try:
        return client.infer("digits", [tensor], headers={"NVCF-REQID": request_id})
    finally:
        client.close()


class TestFollowingTheReadme:
    """``python client.py`` through the local NVCF."""

    def test_client_reports_the_accuracy(self, digits: RunningExample) -> None:
        """The client classifies the held-out split with at least 0.9 accuracy."""
        (client,) = digits.commands
        result = digits.client_command(client)
        found = re.search(r"accuracy (\d\.\d+) on 450 held-out images", result.stdout)
        assert found, result.stdout
        assert float(found.group(1)) >= 0.9


class TestServedModel:
    """The PyTriton model as NVCF's worker sees it."""

    def test_same_answers_as_the_numpy_model(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """PyTriton serves exactly the BYOM example's classifier."""
        train = load_module(EXAMPLES / "byom" / "digits" / "train.py", "byom_digits_train")
        weights = np.load(EXAMPLES / EXAMPLE / "digits.npz")
        images = split[0][:64]
        expected = train.predict(weights, images)
        result = _infer(digits.url, images, "same-answers")
        np.testing.assert_allclose(result.as_numpy("PROBABILITIES"), expected, atol=1e-6)

    def test_concurrent_requests_each_get_their_own_answer(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Eight clients at once (batched together by PyTriton) each get their images' labels."""
        images, labels = split
        ids = [f"concurrent-{uuid.uuid4()}" for _ in range(8)]

        def one(index: int) -> np.ndarray:
            chunk = images[index * 8 : index * 8 + 8]
            return _infer(digits.url, chunk, ids[index]).as_numpy("LABEL").ravel()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
        predicted = np.concatenate(answers)
        assert float((predicted == labels[:64]).mean()) >= 0.9
        log = digits.log_text()
        for request_id in ids:
            assert request_id in log  # each request's id reached a log line despite @batch

    def test_bad_pixels_are_a_400_with_a_message(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """The adapter turns the model's InputError into HTTP 400 without a traceback."""
        with pytest.raises(InferenceServerException) as caught:
            _infer(digits.url, split[0][:2] * 16, "bad-scale")
        assert caught.value.status() == "400"
        assert "pixels outside 0..16" in caught.value.message()
        assert "Traceback" not in caught.value.message()
        assert re.search(r"\[reqid=bad-scale\] rejected: input IMAGE", digits.log_text())


# Runs a script as the image does (its directory first on sys.path), with this
# checkout taken off sys.path: the editable install of nvcf-helpers is a plain
# path in a .pth file, so only a vendored copy can then be imported.
_LAUNCHER = """
import os, runpy, sys
checkout = sys.argv[1]
sys.path[:] = [p for p in sys.path if p.rstrip("/") != checkout]
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
"""
_PROBE = "import nvcf_helpers.pytriton\nprint(nvcf_helpers.pytriton.__file__)\n"


def _launch(tmp_path: Path, script: Path) -> list[str]:
    launcher = tmp_path / "launch.py"
    launcher.write_text(_LAUNCHER, encoding="utf-8")
    return [sys.executable, str(launcher), str(Path(__file__).resolve().parents[2]), str(script)]


class TestImageLayout:
    """What the Dockerfile copies is enough: run.py beside its vendored helpers."""

    def test_runs_on_its_vendored_helpers_alone(
        self, tmp_path: Path, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Without the installed package on the path, the copy serves the model."""
        directory = fresh_copy(EXAMPLE, tmp_path)
        elsewhere = tmp_path / "probe.py"
        elsewhere.write_text(_PROBE, encoding="utf-8")
        outside = subprocess.run(_launch(tmp_path, elsewhere), capture_output=True, check=False)
        assert outside.returncode != 0, "the launcher must hide the installed package"
        load_module(EXAMPLES / "vendor.py", "example_vendor").vendor(directory)
        (directory / "probe.py").write_text(_PROBE, encoding="utf-8")
        inside = subprocess.run(
            _launch(tmp_path, directory / "probe.py"), capture_output=True, text=True, check=True
        )
        assert Path(inside.stdout.strip()).parent == directory / "nvcf_helpers"
        port = free_port()
        log = tmp_path / "run.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                _launch(tmp_path, directory / "run.py"),
                cwd=directory,
                env={**os.environ, **container_env(port)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_http(f"http://127.0.0.1:{port}/v2/models/digits/ready", timeout=120)
                result = _infer(f"127.0.0.1:{port}", split[0][:16], "image-layout")
                server.send_signal(signal.SIGTERM)
                assert server.wait(30) == 0
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()
        predicted = result.as_numpy("LABEL").ravel()
        assert float((predicted == split[1][:16]).mean()) >= 0.9
        assert "[reqid=image-layout] classified 16 image(s)" in log.read_text(encoding="utf-8")
