{%- set long = cookiecutter.long_running == "yes" -%}
"""The model, served by a real tritonserver and called the way NVCF's worker calls it."""

from __future__ import annotations

{% if long -%}
import json
{% endif -%}
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import client

pytestmark = pytest.mark.integration


def expected_outputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the generated identity answers: each output from the input in its position."""
    arrays = list(inputs.values())
    expected = {}
    for index, name in enumerate(client.OUTPUTS):
        source = arrays[index % len(arrays)]
        _, _, dtype, _ = next(entry for entry in _output_types() if entry[0] == name)
        if dtype is np.object_:
            values = [
                v if isinstance(v, bytes) else str(v).encode() for v in source.ravel().tolist()
            ]
            expected[name] = np.array(values, dtype=np.object_).reshape(source.shape)
        else:
            expected[name] = source.astype(dtype)
    return expected


def as_bytes(array: np.ndarray) -> np.ndarray:
    """BYTES values as bytes (JSON responses give them back as str)."""
    if array.dtype != np.object_:
        return array
    values = [v.encode() if isinstance(v, str) else v for v in array.ravel().tolist()]
    return np.array(values, dtype=np.object_).reshape(array.shape)


def _output_types() -> list[tuple[str, str, Any, tuple[int, ...]]]:
    return [
{%- for t in cookiecutter.outputs | tensors %}
        ("{{ t.name }}", "{{ t.data_type }}", {{ t.numpy_type }}, {{ t.dims }}),
{%- endfor %}
    ]


def wait_for_line(server: Any, text: str, timeout: float = 10.0) -> str:
    """The server output line containing ``text`` (log lines arrive through a pipe)."""
    deadline = time.monotonic() + timeout
    while True:
        for line in server.output_tail(200).splitlines():
            if text in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line with {text!r} in:\n{server.output_tail(40)}")
        time.sleep(0.1)


class TestInference:
    """Requests that carry NVCF's headers."""

    def test_outputs(self, server: Any, tmp_path: Path) -> None:
        """The model answers every declared output with the expected values."""
        inputs = client.example_inputs()
        url = server.url.removeprefix("http://")
        outputs = client.infer(url, inputs, client.nvcf_headers(tmp_path))
        for name, expected in expected_outputs(inputs).items():
            np.testing.assert_array_equal(as_bytes(outputs[name]), expected)

    def test_client_script(self, server: Any) -> None:
        """`python client.py` gets an answer and prints every output."""
        project = Path(client.__file__).resolve().parent
        result = subprocess.run(
            [sys.executable, "client.py", "--url", server.url.removeprefix("http://")],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("request ")
        for name in client.OUTPUTS:
            assert f"\n{name} [" in result.stdout

    def test_log_line_carries_request_id(self, server: Any, tmp_path: Path) -> None:
        """The request is logged in NVCF's format with its request id."""
        request_id = str(uuid.uuid4())
        headers = client.nvcf_headers(tmp_path, request_id=request_id)
        client.infer(server.url.removeprefix("http://"), client.example_inputs(), headers)
        line = wait_for_line(server, f"[reqid={request_id}]")
        assert " [INFERENCE] [reqid=" in line
{%- set floats = (cookiecutter.inputs | tensors) | selectattr("is_float") | list %}
{%- if floats %}

    def test_bad_input_is_a_400_without_traceback(self, server: Any, tmp_path: Path) -> None:
        """A NaN input is the caller's mistake: 400 and a message, no traceback."""
        from tritonclient.utils import InferenceServerException

        inputs = client.example_inputs()
        inputs["{{ floats[0].name }}"] = np.full_like(inputs["{{ floats[0].name }}"], np.nan)
        with pytest.raises(InferenceServerException) as caught:
            client.infer(server.url.removeprefix("http://"), inputs, client.nvcf_headers(tmp_path))
        assert caught.value.status() == "400"
        assert "NaN or infinity" in caught.value.message()
        assert "Traceback" not in caught.value.message()
{%- endif %}
{%- if long %}


class TestLongRunning:
    """Progress and large outputs, written where NVCF's worker looks for them."""

    def test_progress_ends_at_100(self, server: Any, tmp_path: Path) -> None:
        """The progress file names the request and ends at 100."""
        request_id = str(uuid.uuid4())
        headers = client.nvcf_headers(tmp_path, request_id=request_id)
        client.infer(server.url.removeprefix("http://"), client.example_inputs(), headers)
        progress = json.loads((tmp_path / "progress").read_text())
        assert progress["id"] == request_id
        assert progress["progress"] == 100

    def test_large_outputs_are_written_as_files(self, server: Any, tmp_path: Path) -> None:
        """Outputs over NVCF-MAX-RESPONSE-SIZE-BYTES arrive as .npy large outputs."""
        inputs = client.example_inputs(size=64)
        headers = client.nvcf_headers(tmp_path, max_response_bytes=64)
        outputs = client.infer(server.url.removeprefix("http://"), inputs, headers)
        expected_all = expected_outputs(inputs)
        assert any(outputs[name] is None for name in expected_all)  # the response did not fit
        for name, expected in expected_all.items():
            if outputs[name] is None:  # left out of the response, written as a file
                saved = np.load(tmp_path / f"{name}.npy", allow_pickle=expected.dtype == np.object_)
                np.testing.assert_array_equal(as_bytes(saved), expected)
            else:
                assert not (tmp_path / f"{name}.npy").exists()
                np.testing.assert_array_equal(as_bytes(outputs[name]), expected)
        assert not list(tmp_path.glob("*.partial"))
{%- endif %}


class TestProject:
    """The files NVCF deploys."""

    def test_nvcf_helpers_check_passes(self) -> None:
        """`nvcf-helpers check` finds nothing wrong in the files NVCF deploys."""
        beside = Path(sys.executable).parent / "nvcf-helpers"
        command = str(beside) if beside.is_file() else shutil.which("nvcf-helpers")
        if command is None:
            pytest.skip("pip install 'nvcf-helpers[check]'")
        project = Path(client.__file__).resolve().parent
        result = subprocess.run(
            [command, "check", str(project)], capture_output=True, text=True, check=False
        )
        assert result.stdout == ""
        assert result.returncode == 0, result.stderr
