"""Invoke {{ cookiecutter.project_name }} through NVCF's API, as a caller does: POST, then poll.

    nvcf-helpers local --spec function.json -- python -m uvicorn app:app --port {port}
    python client.py                      # in another terminal: sends request.json
    python client.py --base-url https://api.nvcf.nvidia.com --function-id ID   # NVCF itself

The result is printed; a large result (NVCF's 302 to a zip) is printed from
the zip, with the large outputs beside it listed. Standard library only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent
#: Where ``nvcf-helpers local`` listens by default.
LOCAL_NVCF = "http://127.0.0.1:8787"
#: NVCF asks callers to poll a pending request at most once a second.
POLL_INTERVAL_SECONDS = 1.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a 302 back: the zip's download link must not get the API key."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _call(
    method: str, url: str, api_key: str | None, body: bytes | None = None
) -> tuple[int, Any, bytes]:
    """One HTTP call: its status, headers and body (an error status is returned, not raised)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=120) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except urllib.error.URLError as error:
        raise SystemExit(
            f"cannot reach {url} ({error.reason}): start the local NVCF (README.md) "
            "or give the API with --base-url"
        ) from None


def only_function(base_url: str, api_key: str | None) -> str:
    """The id of the one function the API lists (what ``nvcf-helpers local --spec`` runs)."""
    status, _, body = _call("GET", f"{base_url}/v2/nvcf/functions", api_key)
    functions = json.loads(body).get("functions", []) if status == 200 else []
    ids = sorted({function["id"] for function in functions})
    if len(ids) != 1:
        raise SystemExit(f"{base_url} lists {len(ids)} functions: name one with --function-id")
    return ids[0]


def invoke(
    base_url: str, function_id: str, body: bytes, api_key: str | None = None
) -> tuple[int, bytes, dict[str, bytes]]:
    """Invoke the function and wait for its result.

    Returns:
        The final status (200, or 302 for a zip), the result body and the
        large outputs by name; an error status comes with NVCF's problem details.
    """
    url = f"{base_url}/v2/nvcf/pexec/functions/{function_id}"
    status, headers, answer = _call("POST", url, api_key, body)
    while status == 202:  # still running: poll with the request id
        percent = headers.get("NVCF-PERCENT-COMPLETE")
        if percent is not None:
            print(f"progress {percent}%", file=sys.stderr)
        time.sleep(POLL_INTERVAL_SECONDS)
        status_url = f"{base_url}/v2/nvcf/pexec/status/{headers['NVCF-REQID']}"
        status, headers, answer = _call("GET", status_url, api_key)
    if status != 302:
        return status, answer, {}
    _, _, download = _call("GET", headers["Location"], None)  # a signed URL: no API key
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(download)) as archive:
        for name in archive.namelist():
            files[name] = archive.read(name)
    response = next((name for name in files if name.endswith(".response")), None)
    return 302, files.pop(response) if response else b"", files


def _detail(body: bytes) -> str:
    """What an error answer says: its problem's ``detail``, else its text."""
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace") or "no details"


def main(argv: list[str] | None = None) -> int:
    """Send a request body (request.json by default) and print the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("NVCF_BASE_URL", LOCAL_NVCF))
    parser.add_argument("--function-id", help="default: the only function the API lists")
    parser.add_argument("--api-key", default=os.environ.get("NGC_API_KEY"), help="env NGC_API_KEY")
    parser.add_argument("--data", type=Path, default=PROJECT / "request.json", help="the body")
    args = parser.parse_args(argv)
    base_url = args.base_url.rstrip("/")
    function_id = args.function_id or only_function(base_url, args.api_key)
    status, body, files = invoke(base_url, function_id, args.data.read_bytes(), args.api_key)
    if status >= 400:
        print(f"error {status}: {_detail(body)}", file=sys.stderr)
        return 1
    print(body.decode("utf-8"))
    for name, data in files.items():
        print(f"large output {name}: {len(data)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
