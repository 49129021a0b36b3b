"""pytriton/long_running, run as its README says: nvcf-helpers invoke with a progress bar."""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from example_support import EXAMPLES, RunningExample, load_module, run_example

from nvcf_helpers.client import NvcfApiError, Progress

pytestmark = pytest.mark.integration

EXAMPLE = "pytriton/long_running"


@pytest.fixture(scope="module")
def job(workdir: Path) -> Iterator[RunningExample]:
    """``python prepare.py``, then ``nvcf-helpers local ... -- python run.py``, in a fresh copy."""
    with run_example(EXAMPLE, workdir) as running:
        yield running


class TestFollowingTheReadme:
    """``nvcf-helpers invoke --data @request.json --asset dataset.npz ...`` as the README shows."""

    def test_invoke_shows_progress_and_writes_the_outputs(self, job: RunningExample) -> None:
        """The progress bar reports integer percentages; the zip's files land in --output."""
        (invoke,) = job.commands
        result = job.client_command(invoke)
        reports = re.findall(r"\]\s+(\d+)% in-progress .*?(\{.*\})$", result.stderr, re.M)
        assert reports, result.stderr
        percents = [int(percent) for percent, _ in reports]
        assert percents == sorted(percents)
        assert all(0 <= percent <= 100 for percent in percents)
        assert all(json.loads(partial)["fits"] == 20 for _, partial in reports)
        summary = json.loads(json.loads(result.stdout)["outputs"][0]["data"][0])
        assert summary["fits"] == 20
        output = job.directory / invoke[invoke.index("--output") + 1]
        assert sorted(path.name for path in output.iterdir()) == ["model.npz", "trials.json"]

    def test_client_py_prints_each_report(self, job: RunningExample) -> None:
        """``python client.py`` (NvcfClient) prints the reports and saves the files."""
        arguments = shlex.split("--hidden 32 64 --rates 0.1 0.3 --folds 5 --output from-client")
        result = job.client_command(["python", "client.py"], *arguments)
        assert re.search(r"^progress \d+%: \{", result.stdout, re.M), result.stdout
        assert re.search(r"^best: \{'hidden': (32|64), .* after 20 fits", result.stdout, re.M)
        assert (job.directory / "from-client" / "model.npz").is_file()


class TestJob:
    """The job through NvcfClient: progress with partial responses, then a 302 and a zip."""

    def test_progress_partial_responses_and_large_outputs(self, job: RunningExample) -> None:
        """Reports grow, carry the best so far, and the zip holds a model that works."""
        seen: list[Progress] = []
        body = {
            "inputs": [
                {"name": "HIDDEN", "shape": [2], "datatype": "INT32", "data": [16, 32]},
                {"name": "LEARNING_RATE", "shape": [2], "datatype": "FP32", "data": [0.1, 0.3]},
                {"name": "FOLDS", "shape": [1], "datatype": "INT32", "data": [5]},
            ]
        }
        result = job.nvcf.client().invoke(
            job.nvcf.function_id,
            body,
            assets=[job.directory / "dataset.npz"],
            poll_seconds=1,
            on_progress=seen.append,
        )
        assert seen, "a job of several seconds is polled at least once"
        assert all(isinstance(p.percent, int) for p in seen)
        assert [p.percent for p in seen] == sorted(p.percent or 0 for p in seen)
        assert {p.request_id for p in seen} == {result.request_id}
        partials = [p.partial_response for p in seen if p.partial_response is not None]
        assert partials, "the job reports from its first fit on"
        assert all(partial["fits"] == 20 for partial in partials)
        assert result.status == 302
        assert sorted(result.files) == ["model.npz", "trials.json"]
        trials = json.loads(result.files["trials.json"])
        assert len(trials["trials"]) == 4
        weights = np.load(io.BytesIO(result.files["model.npz"]))
        mlp = load_module(EXAMPLES / EXAMPLE / "mlp.py", "long_running_mlp")
        params = mlp.Params(weights["w1"], weights["b1"], weights["w2"], weights["b2"])
        data = np.load(job.directory / "dataset.npz")
        accuracy = (params.predict(data["images"]) == data["labels"]).mean()
        assert accuracy >= 0.9
        assert weights["w1"].shape[1] == trials["best"]["hidden"]

    def test_missing_asset_is_a_400(self, job: RunningExample) -> None:
        """A job without its data set is told to upload it."""
        with pytest.raises(NvcfApiError) as caught:
            job.nvcf.client().invoke(job.nvcf.function_id, {"inputs": []})
        assert caught.value.status == 400
        assert "needs exactly one input asset" in caught.value.detail

    def test_bad_settings_are_a_400(self, job: RunningExample) -> None:
        """A fold count outside 2..10 is refused with the range."""
        body = {"inputs": [{"name": "FOLDS", "shape": [1], "datatype": "INT32", "data": [1]}]}
        with pytest.raises(NvcfApiError) as caught:
            job.nvcf.client().invoke(
                job.nvcf.function_id, body, assets=[job.directory / "dataset.npz"]
            )
        assert caught.value.status == 400
        assert "send one integer from 2 to 10" in caught.value.detail
