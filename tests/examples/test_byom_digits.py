"""byom/digits, run as its README says: trained, served under the local NVCF, invoked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from example_support import RunningExample, load_module, run_example
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.integration

EXAMPLE = "byom/digits"


@pytest.fixture(scope="module")
def digits(workdir: Path) -> Iterator[RunningExample]:
    """The example in a fresh copy: ``python train.py``, then ``nvcf-helpers local``."""
    with run_example(EXAMPLE, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def split(digits: RunningExample) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images and labels of the copy's ``train.py``."""
    train = load_module(digits.directory / "train.py", "byom_digits_train")
    _, x_test, _, y_test = train.load_split()
    return x_test, y_test


def _infer(url: str, images: np.ndarray, request_id: str) -> httpclient.InferResult:
    client = httpclient.InferenceServerClient(url)
    tensor = httpclient.InferInput("IMAGE", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32))
    try:
        return client.infer("digits", [tensor], headers={"NVCF-REQID": request_id})
    finally:
        client.close()


class TestFollowingTheReadme:
    """The README's commands, run in a fresh copy, give a trained, served model."""

    def test_training_wrote_the_weights_it_serves(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """The server answers with the weights ``python train.py`` wrote (the copy had none).

        Retraining is compared by what a user relies on, the held-out
        predictions, not by the bits of the weights: floating-point training
        differs in the last digits from one CPU to another.
        """
        images, labels = split
        train = load_module(digits.directory / "train.py", "byom_digits_train_served")
        weights = digits.directory / "model_repository" / "digits" / "1" / "digits.npz"
        trained = np.load(weights)
        served = _infer(digits.url, images[:64], "served-weights").as_numpy("PROBABILITIES")
        np.testing.assert_allclose(served, train.predict(trained, images[:64]), atol=1e-5)
        committed = np.load(
            Path(__file__).parents[2] / "examples" / EXAMPLE / weights.relative_to(digits.directory)
        )
        ours = train.predict(trained, images).argmax(axis=1)
        assert float((ours == train.predict(committed, images).argmax(axis=1)).mean()) >= 0.99
        assert float((ours == labels).mean()) >= 0.9

    def test_client_reports_the_accuracy(self, digits: RunningExample) -> None:
        """``python client.py`` through the local NVCF classifies the held-out split well."""
        (client,) = digits.commands
        result = digits.client_command(client)
        found = re.search(r"accuracy (\d\.\d+) on 450 held-out images", result.stdout)
        assert found, result.stdout
        assert float(found.group(1)) >= 0.9


class TestServedModel:
    """The model answers as NVCF's worker sees it: tritonclient with NVCF headers."""

    def test_accuracy_on_held_out_images(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """At least 0.9 of the images train.py never saw are classified right."""
        images, labels = split
        predicted = np.concatenate(
            [
                _infer(digits.url, images[i : i + 64], f"acc-{i}").as_numpy("LABEL").ravel()
                for i in range(0, len(images), 64)
            ]
        )
        assert float((predicted == labels).mean()) >= 0.9

    def test_probabilities_are_a_distribution(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Each row of PROBABILITIES sums to one and peaks at LABEL."""
        result = _infer(digits.url, split[0][:5], "dist")
        probabilities = result.as_numpy("PROBABILITIES")
        assert probabilities.shape == (5, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        assert np.array_equal(probabilities.argmax(axis=1), result.as_numpy("LABEL").ravel())

    def test_request_id_in_an_nvcf_format_log_line(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """The model's log line for a request carries its NVCF-REQID in NVCF's format."""
        request_id = str(uuid.uuid4())
        _infer(digits.url, split[0][:3], request_id)
        pattern = (
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] \[INFERENCE\] "
            rf"\[reqid={request_id}\] classified 3 image\(s\)$"
        )
        assert re.search(pattern, digits.log_text(), re.M)

    def test_bad_pixels_are_a_400_with_a_message(
        self, digits: RunningExample, split: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """Pixels on the 0..255 scale are refused with what to do, not a traceback."""
        with pytest.raises(InferenceServerException) as caught:
            _infer(digits.url, split[0][:2] * 16, "bad-scale")
        assert caught.value.status() == "400"
        assert "pixels outside 0..16" in caught.value.message()
        assert "multiply by 16/255" in caught.value.message()
        assert "Traceback" not in caught.value.message()
