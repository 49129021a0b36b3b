"""nvcf-helpers local and nvcf-helpers invoke run as a user runs them, as programs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_support import contract_command, contract_spec

from nvcf_helpers.client import NvcfClient
from nvcf_helpers.local.server import API_LINE_PREFIX
from nvcf_helpers.testing import free_port

pytestmark = pytest.mark.integration

NVCF_HELPERS = str(Path(sys.executable).with_name("nvcf-helpers"))


class TestCommandLine:
    """The printed banner is enough to invoke the function, and Ctrl-C/SIGTERM ends it all."""

    def test_local_then_invoke(self, tmp_path: Path) -> None:
        """Start local on port 0, read its URL and ids from stdout, invoke, stop with SIGTERM."""
        port = free_port()
        spec = tmp_path / "function.json"
        spec.write_text(json.dumps(contract_spec(port)))
        argv = [NVCF_HELPERS, "local", "--spec", str(spec), "--port", "0", "--"]
        process = subprocess.Popen(
            [*argv, *contract_command(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            # Log lines (on stderr, merged here) may come first: look for the API line.
            for _ in range(50):
                line = process.stdout.readline()
                if line.startswith(API_LINE_PREFIX) or not line:
                    break
            banner = [line] + [process.stdout.readline() for _ in range(4)]
            assert banner[0].startswith(API_LINE_PREFIX)
            base_url = banner[0].removeprefix(API_LINE_PREFIX).strip()
            assert base_url.startswith("http://127.0.0.1:")
            assert banner[1].startswith("function contract-server: id ")
            invoke_line = banner[3]
            assert invoke_line.startswith("invoke: nvcf-helpers invoke ")
            function_id = invoke_line.split()[3]
            client = NvcfClient(base_url)
            for _ in range(200):
                if client.list_functions()[0]["status"] == "ACTIVE":
                    break
                time.sleep(0.05)
            invoked = subprocess.run(
                [
                    NVCF_HELPERS,
                    "invoke",
                    function_id,
                    "--base-url",
                    base_url,
                    "-d",
                    '{"via": "cli"}',
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert invoked.returncode == 0, invoked.stderr
            assert json.loads(invoked.stdout)["input"] == {"via": "cli"}
        finally:
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "stopping: the containers first" in rest


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grpc-port", "99999"], "--grpc-port 99999 is not a TCP port: give 0 to 65535"),
        (["--grpc-port", "9000", "--port", "9000"], "--grpc-port 9000 is also --port"),
        (["--image-command", "no-equals"], "--image-command 'no-equals' is not IMAGE=COMMAND"),
    ],
)
def test_bad_options_get_one_line(options: list[str], message: str) -> None:
    """A mistake in the options: one line naming it, exit 1, nothing started."""
    done = subprocess.run(
        [NVCF_HELPERS, "local", *options], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("nvcf-helpers local: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
