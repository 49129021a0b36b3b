{%- set long = cookiecutter.long_running == "yes" -%}
"""app.py, served as the image serves it and invoked through a local NVCF as callers invoke it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, image_command

pytestmark = pytest.mark.integration

REQUEST = json.loads((PROJECT / "request.json").read_text())


def expected(request: dict[str, Any]) -> dict[str, Any]:
    """What the generated model answers: each value times ``scale``."""
    return {"values": [value * request.get("scale", 1.0) for value in request["values"]]}


def invoke(served: Any, body: Any) -> Any:
    """Invoke the function through the local NVCF; returns its InvocationResult."""
    return served.nvcf.client().invoke(served.nvcf.function_id, body)


class TestInvocation:
    """Requests through NVCF's API, which the local NVCF passes to app.py as NVCF's worker does."""

    def test_request_json_is_answered(self, served: Any) -> None:
        """request.json gets the model's answer, inline."""
        result = invoke(served, REQUEST)
        assert result.status == 200
        assert result.json() == expected(REQUEST)

    def test_log_lines_carry_the_request_id(self, served: Any) -> None:
        """Each line app.py logs for a request is in NVCF's format and names the request."""
        result = invoke(served, REQUEST)
        lines = served.lines_with(f"[reqid={result.request_id}]")
        assert any(" answered 3 values" in line for line in lines)
        assert all(" [INFERENCE] [reqid=" in line for line in lines)

    def test_client_script(self, served: Any) -> None:
        """`python client.py` sends request.json and prints the answer."""
        run = subprocess.run(
            [sys.executable, "client.py", "--base-url", served.nvcf.base_url],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == expected(REQUEST)

    def test_bad_body_is_a_problem_without_traceback(self, served: Any) -> None:
        """A body that does not fit the request model: 422 naming the field, no traceback."""
        from nvcf_helpers.client import NvcfApiError

        with pytest.raises(NvcfApiError) as caught:
            invoke(served, {"values": "many"})
        assert caught.value.status == 422
        assert "body.values: " in str(caught.value)
        assert served.lines_with("rejected: body.values: ")
        assert "Traceback" not in served.output()

    def test_input_error_is_a_400(self, served: Any) -> None:
        """A value preprocess refuses (1e999 is infinite) is a 400 with its message."""
        from nvcf_helpers.client import NvcfApiError

        with pytest.raises(NvcfApiError) as caught:
            invoke(served, b'{"values": [1, 1e999]}')
        assert caught.value.status == 400
        assert "values[1] is inf: send finite numbers" in str(caught.value)
{%- if long %}


class TestLongRunning:
    """Progress and large outputs, where NVCF's worker looks for them."""

    def test_progress_ends_at_100(self, tmp_path: Path) -> None:
        """The route, called with a request's context, leaves a progress file at 100."""
        from nvcf_helpers.testing import fake_request

        import app

        ctx = fake_request(tmp_path)
        app.infer(app.InferenceRequest(**REQUEST), ctx)
        progress = json.loads((tmp_path / "output" / "progress").read_text())
        assert (progress["id"], progress["progress"]) == (ctx.request_id, 100)

    def test_large_answer_is_a_large_output(self, served: Any) -> None:
        """An answer over NVCF-MAX-RESPONSE-SIZE-BYTES comes as the large output result.json."""
        from conftest import MAX_RESPONSE_BYTES

        import app

        request = {"values": list(range(1000)), "scale": 0.5}
        result = invoke(served, request)
        assert result.status == 302  # NVCF's zip: the reference and the large output
        answer = result.files[app.LARGE_OUTPUT]
        assert len(answer) > MAX_RESPONSE_BYTES
        assert json.loads(answer) == expected(request)
        assert result.json() == {"largeOutput": app.LARGE_OUTPUT, "bytes": len(answer)}
        assert not [name for name in result.files if name.endswith(".partial")]
{%- endif %}


class TestProject:
    """The files NVCF deploys."""

    def test_function_json_names_the_apps_routes(self) -> None:
        """function.json's inference URL and health check are routes app.py serves."""
        import app

        spec = json.loads((PROJECT / "function.json").read_text())
        routes = {(route.path, method) for route in app.app.routes for method in route.methods}
        assert (spec["inferenceUrl"], "POST") in routes
        assert (spec["health"]["uri"], "GET") in routes

    def test_nvcf_helpers_check_passes(self) -> None:
        """`nvcf-helpers check` finds nothing wrong in the files NVCF deploys."""
        beside = Path(sys.executable).parent / "nvcf-helpers"
        command = str(beside) if beside.is_file() else shutil.which("nvcf-helpers")
        if command is None:
            pytest.skip("pip install 'nvcf-helpers[check]'")
        result = subprocess.run(
            [command, "check", str(PROJECT)], capture_output=True, text=True, check=False
        )
        assert result.stdout == ""
        assert result.returncode == 0, result.stderr


class TestShutdown:
    """docker stop: SIGTERM, then SIGKILL 10 s later."""

    def test_sigterm_exits_cleanly(self, tmp_path: Path) -> None:
        """The image's command, sent SIGTERM, shuts down cleanly within 10 s.

        uvicorn ends with the signal it caught (it re-raises it after its clean shutdown).
        """
        from nvcf_helpers.testing import free_port, stop_process, wait_for_http

        port = free_port()
        spec = json.loads((PROJECT / "function.json").read_text())
        log = tmp_path / "uvicorn.log"
        with log.open("wb") as stream:
            process = subprocess.Popen(
                image_command(str(port)), cwd=PROJECT, stdout=stream, stderr=subprocess.STDOUT
            )
        try:
            wait_for_http(f"http://127.0.0.1:{port}{spec['health']['uri']}", timeout=60)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=15)
            assert time.monotonic() - started < 10
        finally:
            stop_process(process)
        assert status in (0, -signal.SIGTERM), log.read_text()
        assert "Application shutdown complete." in log.read_text()
        assert "Finished server process" in log.read_text()
