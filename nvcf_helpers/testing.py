"""Helpers for testing NVCF functions: free ports, readiness waits, fake requests.

Standard library only, so a generated project's own tests can use them.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from nvcf_helpers.context import RequestContext
from nvcf_helpers.process import free_port, stop_process

__all__ = ["fake_request", "free_port", "stop_process", "wait_for_http"]


def wait_for_http(
    url: str, *, timeout: float = 60.0, expected_status: int = 200, interval: float = 0.1
) -> None:
    """Block until ``GET url`` answers ``expected_status``.

    Raises:
        TimeoutError: it did not within ``timeout`` seconds; the message says
            what the last attempt saw.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - test URL
                if response.status == expected_status:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            if exc.code == expected_status:
                return
            last = f"status {exc.code}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(interval)
    raise TimeoutError(f"GET {url} did not answer {expected_status} within {timeout} s ({last})")


def fake_request(root: Path, **fields: object) -> RequestContext:
    """A context like the one NVCF's worker gives, with its directories under ``root``.

    Creates ``root/assets`` and ``root/output`` (as the worker does before a
    call) and returns a context pointing at them with a fresh request id.
    Keyword arguments override any field.
    """
    asset_dir = root / "assets"
    output_dir = root / "output"
    asset_dir.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "request_id": str(uuid.uuid4()),
        "function_id": str(uuid.uuid4()),
        "function_version_id": str(uuid.uuid4()),
        "function_name": "local-test",
        "nca_id": "local",
        "asset_dir": asset_dir,
        "large_output_dir": output_dir,
    }
    values.update(fields)
    return RequestContext(**values)  # type: ignore[arg-type]
