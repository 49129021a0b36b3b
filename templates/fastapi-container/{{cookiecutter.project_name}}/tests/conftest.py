{%- set long = cookiecutter.long_running == "yes" -%}
"""Serve app.py as the image does, behind a local NVCF, once for the whole test session."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
# The tests are tooling: they need the installed nvcf-helpers (its local NVCF), not
# the runtime copy in nvcf_helpers/ beside app.py, which is what the image gets.
# The project stays importable (app.py, client.py), after the installed packages.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != PROJECT]
sys.path.append(str(PROJECT))
{%- if long %}

#: The largest answer NVCF passes back inline, as the local NVCF here says it: small,
#: so that a long request's answer becomes a large output while request.json's does not.
MAX_RESPONSE_BYTES = 4096
{%- endif %}


def image_command(port: str) -> list[str]:
    """The Dockerfile's CMD, run with this Python, on 127.0.0.1 and ``port``."""
    (line,) = re.findall(r"^CMD (\[.*\])$", (PROJECT / "Dockerfile").read_text(), re.M)
    argv: list[str] = json.loads(line)
    argv[0] = sys.executable
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = port
    return argv


@dataclass
class Served:
    """The running local NVCF, its function, and the output of both."""

    nvcf: Any
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines_with(self, text: str, timeout: float = 10.0) -> list[str]:
        """The output lines containing ``text``, once there is one."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.output().splitlines() if text in line]
            if lines:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"no line with {text!r} in:\n{self.output()[-3000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """app.py under uvicorn (the Dockerfile's command), deployed on a local NVCF."""
    pytest.importorskip("uvicorn", reason="pip install -r requirements.txt")
    local = pytest.importorskip("nvcf_helpers.local", reason="pip install 'nvcf-helpers[local]'")
    log = tmp_path_factory.mktemp("nvcf") / "output.log"
    with local.LocalNvcf(
        PROJECT / "function.json",
        image_command("{port}"),  # the local NVCF gives the container a free port
        cwd=PROJECT,
        output=log,
        env={"LOG_LEVEL": "DEBUG"},  # a log line per request, for the tests to find
{%- if long %}
        max_response_bytes=MAX_RESPONSE_BYTES,
{%- endif %}
    ) as nvcf:
        yield Served(nvcf, log)
