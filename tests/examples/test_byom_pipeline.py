"""byom/pipeline, run as its README says, and checked as NVCF's worker would see it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from example_support import EXAMPLES, RunningExample, fresh_copy, load_module, run_example
from tritonclient.utils import InferenceServerException

from nvcf_helpers import RequestContext, parse_progress
from nvcf_helpers.testing import fake_request, free_port, wait_for_http
from nvcf_helpers.triton.server import (
    find_triton,
    make_backend_directory,
    server_command,
    server_environment,
)

pytestmark = pytest.mark.integration

EXAMPLE = "byom/pipeline"


@pytest.fixture(scope="module")
def pipeline(workdir: Path) -> Iterator[RunningExample]:
    """The README's ``nvcf-helpers local ... --max-response-bytes 20000`` in a fresh copy."""
    with run_example(EXAMPLE, workdir) as running:
        yield running


@pytest.fixture(scope="module")
def scans() -> tuple[np.ndarray, np.ndarray]:
    """The held-out images as 8-bit scans, and their labels."""
    client = load_module(EXAMPLES / EXAMPLE / "client.py", "pipeline_client")
    images, labels = client.held_out_split()
    return client.as_scans(images, 8), labels


def _job(url: str, ctx: RequestContext, chunk: int | None = None) -> httpclient.InferResult:
    inputs = []
    if chunk is not None:
        tensor = httpclient.InferInput("CHUNK_SIZE", [1], "INT32")
        tensor.set_data_from_numpy(np.array([chunk], dtype=np.int32))
        inputs.append(tensor)
    client = httpclient.InferenceServerClient(url, network_timeout=120.0)
    try:
        return client.infer("pipeline", inputs, headers=ctx.to_headers())
    finally:
        client.close()


def _request(root: Path, images: Any, **fields: Any) -> RequestContext:
    """A request as NVCF's worker prepares it: directories, and the asset downloaded."""
    asset_id = str(uuid.uuid4())
    ctx = fake_request(root, asset_ids=(asset_id,), **fields)
    assert ctx.asset_dir is not None
    with (ctx.asset_dir / asset_id).open("wb") as stream:
        if isinstance(images, bytes):
            stream.write(images)
        else:
            np.save(stream, images)
    return ctx


def _results(result: httpclient.InferResult) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.as_numpy("RESULTS")[0])
    return document


class TestFollowingTheReadme:
    """``python client.py`` through the local NVCF, whose response limit is 20,000 bytes."""

    def test_large_results_come_as_a_zip(self, pipeline: RunningExample) -> None:
        """450 results exceed the limit: the client reads results.json from the 302's zip."""
        (client,) = pipeline.commands
        result = pipeline.client_command(client)
        assert "results came as the large output results.json" in result.stdout
        found = re.search(r"accuracy (\d\.\d+) on 450 held-out images", result.stdout)
        assert found, result.stdout
        assert float(found.group(1)) >= 0.9

    def test_small_results_come_inline_from_32x32_scans(self, pipeline: RunningExample) -> None:
        """100 scans of 32x32 pixels, averaged down by preprocess, answered inline."""
        (client,) = pipeline.commands
        result = pipeline.client_command(client, "--limit", "100", "--size", "32")
        assert "large output" not in result.stdout
        found = re.search(r"accuracy (\d\.\d+) on 100 held-out images", result.stdout)
        assert found, result.stdout
        assert float(found.group(1)) >= 0.9


class TestJob:
    """The pipeline model as NVCF's worker calls it: headers, asset, output directory."""

    def test_progress_ends_at_100_with_partial_responses(
        self, pipeline: RunningExample, scans: tuple[np.ndarray, np.ndarray], tmp_path: Path
    ) -> None:
        """The progress file is one NVCF accepts, at 100 at the end, with the counts."""
        ctx = _request(tmp_path, scans[0])
        result = _job(pipeline.url, ctx, chunk=50)
        assert ctx.large_output_dir is not None
        assert ctx.request_id is not None
        update = parse_progress((ctx.large_output_dir / "progress").read_bytes(), ctx.request_id)
        assert update.progress == 100
        assert update.partial_response is not None
        assert update.partial_response["processed"] == update.partial_response["total"] == 450
        assert update.partial_response["counts"] == result.as_numpy("COUNTS").tolist()

    def test_inline_results_are_accurate(
        self, pipeline: RunningExample, scans: tuple[np.ndarray, np.ndarray], tmp_path: Path
    ) -> None:
        """Under the default limit the results are inline, one per image, and accurate."""
        ctx = _request(tmp_path, scans[0])
        document = _results(_job(pipeline.url, ctx))
        labels = np.array([item["label"] for item in document["results"]])
        assert document["images"] == 450
        assert float((labels == scans[1]).mean()) >= 0.9
        assert ctx.large_output_dir is not None
        assert sorted(p.name for p in ctx.large_output_dir.iterdir()) == ["progress"]

    def test_results_over_the_limit_are_a_large_output(
        self, pipeline: RunningExample, scans: tuple[np.ndarray, np.ndarray], tmp_path: Path
    ) -> None:
        """Over NVCF-MAX-RESPONSE-SIZE-BYTES: results.json written, no .partial left."""
        ctx = _request(tmp_path, scans[0], max_response_bytes=10_000)
        document = _results(_job(pipeline.url, ctx))
        assert document["largeOutput"] == "results.json"
        assert ctx.large_output_dir is not None
        assert sorted(p.name for p in ctx.large_output_dir.iterdir()) == [
            "progress",
            "results.json",
        ]
        written = json.loads((ctx.large_output_dir / "results.json").read_bytes())
        assert document["bytes"] == (ctx.large_output_dir / "results.json").stat().st_size
        labels = np.array([item["label"] for item in written["results"]])
        assert float((labels == scans[1]).mean()) >= 0.9

    def test_request_id_in_every_models_log_lines(
        self, pipeline: RunningExample, scans: tuple[np.ndarray, np.ndarray], tmp_path: Path
    ) -> None:
        """preprocess, digits and pipeline all log under the caller's request id."""
        ctx = _request(tmp_path, scans[0][:10])
        _job(pipeline.url, ctx)
        lines = [
            line for line in pipeline.log_text().splitlines() if f"[reqid={ctx.request_id}]" in line
        ]
        assert any("preprocessed 10 image(s)" in line for line in lines)
        assert any("classified 10 image(s)" in line for line in lines)
        assert any("done: 10 image(s)" in line for line in lines)
        assert all("[INFERENCE]" in line for line in lines)

    def test_missing_asset_is_a_400(self, pipeline: RunningExample, tmp_path: Path) -> None:
        """A request without an asset is told how to send one."""
        ctx = fake_request(tmp_path)
        with pytest.raises(InferenceServerException) as caught:
            _job(pipeline.url, ctx)
        assert caught.value.status() == "400"
        assert "NVCF-INPUT-ASSET-REFERENCES" in caught.value.message()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (b"not an array", "is not a .npy array"),
            (np.zeros((3, 8, 8), dtype=np.float32), "holds a float32 array"),
            (np.zeros((3, 12, 12), dtype=np.uint8), "images of 12x12 pixels"),
        ],
    )
    def test_malformed_asset_is_a_400(
        self, pipeline: RunningExample, tmp_path: Path, content: Any, message: str
    ) -> None:
        """Not an array, the wrong type, the wrong size: 400 with what to send."""
        ctx = _request(tmp_path, content)
        with pytest.raises(InferenceServerException) as caught:
            _job(pipeline.url, ctx)
        assert caught.value.status() == "400"
        assert message in caught.value.message()
        assert "Traceback" not in caught.value.message()

    def test_bad_chunk_size_is_a_400(
        self, pipeline: RunningExample, scans: tuple[np.ndarray, np.ndarray], tmp_path: Path
    ) -> None:
        """CHUNK_SIZE beyond the models' max_batch_size is refused with the range."""
        ctx = _request(tmp_path, scans[0][:4])
        with pytest.raises(InferenceServerException) as caught:
            _job(pipeline.url, ctx, chunk=65)
        assert caught.value.status() == "400"
        assert "from 1 to 64" in caught.value.message()


def _python_with_numpy_only(root: Path) -> Path:
    """A virtual environment with numpy and nothing of this project: a stock Triton image's."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60
    )
    site = Path(sysconfig.get_paths()["purelib"])
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    target = root / "lib" / version / "site-packages"
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            (target / name).symlink_to(site / name)
    return root / "bin"


class TestStockTriton:
    """Vendored, the repository loads where the stub's Python has numpy but no nvcf_helpers."""

    def test_vendored_repository_serves_without_the_package(
        self, tmp_path: Path, scans: tuple[np.ndarray, np.ndarray]
    ) -> None:
        """All three models load and the job runs, importing only their own copies."""
        directory = fresh_copy(EXAMPLE, tmp_path)
        load_module(EXAMPLES / "vendor.py", "example_vendor").vendor(directory)
        bare_bin = _python_with_numpy_only(tmp_path / "bare")
        probe = subprocess.run(
            [str(bare_bin / "python"), "-c", "import nvcf_helpers"],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert probe.returncode != 0, "the bare Python must not see nvcf_helpers"
        install = find_triton()
        backends = make_backend_directory(install, tmp_path / "backends")
        port = free_port()
        command = server_command(
            install,
            directory / "model_repository",
            backends,
            http_port=port,
            grpc_port=free_port(),
            extra_args=["--exit-timeout-secs=5"],
        )
        env = server_environment(install)
        env["PATH"] = os.pathsep.join([str(bare_bin), env["PATH"]])
        log = tmp_path / "triton.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT
            )
            try:
                wait_for_http(f"http://127.0.0.1:{port}/v2/models/pipeline/ready", timeout=90)
                ctx = _request(tmp_path / "request", scans[0][:20])
                document = _results(_job(f"127.0.0.1:{port}", ctx))
            finally:
                server.terminate()
                server.wait(30)
        assert document["images"] == 20
        assert "ModuleNotFoundError" not in log.read_text(encoding="utf-8")
