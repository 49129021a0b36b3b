"""NvcfClient against the local NVCF: polling, 302 zips, assets, errors, streaming."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nvcf_helpers.client import (
    InvocationResult,
    NvcfApiError,
    NvcfClient,
    NvcfClientError,
    NvcfConnectionError,
    Progress,
)
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.testing import free_port


@pytest.mark.integration
class TestClientInvoke:
    """invoke() returns the result whatever shape the API answers in."""

    def test_polling_session_reports_progress(
        self, client: NvcfClient, nvcf: LocalNvcf, gate: Path
    ) -> None:
        """202s are polled to the result, each passed to on_progress with its partial response."""
        events: list[Progress] = []

        def on_progress(progress: Progress) -> None:
            events.append(progress)
            if progress.percent == 25:
                gate.touch()  # the container finishes once the caller has seen its progress

        result = client.invoke(
            nvcf.function_id,
            {"progress": [[25, {"stage": "loading"}]], "wait_for": str(gate)},
            poll_seconds=1,
            on_progress=on_progress,
            timeout=60,
        )
        assert result.status == 200
        assert result.json()["input"]["progress"] == [[25, {"stage": "loading"}]]
        progressed = [e for e in events if e.percent == 25]
        assert progressed
        assert progressed[0].partial_response == {"stage": "loading"}
        assert progressed[0].status == "in-progress"
        assert {e.request_id for e in events} == {result.request_id}

    def test_302_is_followed_and_unzipped(
        self, client: NvcfClient, nvcf: LocalNvcf, tmp_path: Path
    ) -> None:
        """The zip's response becomes the body and its other entries the files."""
        result = client.invoke(nvcf.function_id, {"large": {"name": "out.bin", "bytes": 2048}})
        assert result.status == 302
        assert result.json()["input"]["large"]["name"] == "out.bin"
        assert dict(result.files) == {"out.bin": b"L" * 2048}
        written = result.save_files(tmp_path / "outputs")
        assert [p.read_bytes() for p in written] == [b"L" * 2048]

    def test_assets_are_uploaded_and_referenced(
        self, client: NvcfClient, nvcf: LocalNvcf, tmp_path: Path
    ) -> None:
        """Files given as assets reach the container under their new ids."""
        first, second = tmp_path / "a.txt", tmp_path / "b.json"
        first.write_text("first")
        second.write_text('{"second": true}')
        result = client.invoke(
            nvcf.function_id, {}, assets=[first, second], version_id=nvcf.version_id
        )
        assert len(result.asset_ids) == 2
        assert result.json()["assets"] == dict(
            zip(result.asset_ids, ["first", '{"second": true}'], strict=True)
        )
        listed = {a["assetId"]: a for a in client.list_assets()}
        assert listed[result.asset_ids[1]]["contentType"] == "application/json"
        assert listed[result.asset_ids[0]]["description"] == "a.txt"
        client.delete_asset(result.asset_ids[0])
        assert result.asset_ids[0] not in {a["assetId"] for a in client.list_assets()}

    def test_container_error_raises_with_problem(self, client: NvcfClient, nvcf: LocalNvcf) -> None:
        """A container 4xx raises NvcfApiError carrying the status, detail and problem."""
        with pytest.raises(NvcfApiError, match=r"answered 422 .*: the input is odd") as caught:
            client.invoke(nvcf.function_id, {"status": 422, "error": "the input is odd"})
        assert caught.value.status == 422
        assert caught.value.detail == "the input is odd"
        assert "inference-service" in caught.value.problem["type"]
        assert caught.value.request_id

    def test_wrong_key_raises_with_hint(self, nvcf: LocalNvcf) -> None:
        """A 401 says to check the API key."""
        client = NvcfClient(nvcf.base_url, "wrong-key")
        with pytest.raises(NvcfApiError, match=r"answered 401.*check the API key"):
            client.invoke(nvcf.function_id, {})

    def test_stream_yields_events(self, client: NvcfClient, nvcf: LocalNvcf) -> None:
        """stream() yields the server-sent event lines."""
        lines = list(client.stream(nvcf.function_id, {"events": 2}))
        assert [line for line in lines if line.startswith(b"data:")] == [
            b'data: {"event": 0}\n',
            b'data: {"event": 1}\n',
        ]


class TestClientOffline:
    """Behaviour that needs no server."""

    def test_unreachable_api(self) -> None:
        """A connection failure names the URL and what to check."""
        client = NvcfClient(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(
            NvcfConnectionError, match=r"cannot reach http://127\.0\.0\.1:\d+/v2/nvcf/functions"
        ):
            client.list_functions()

    def test_key_is_redacted_in_repr(self) -> None:
        """The API key never shows in the client's repr."""
        client = NvcfClient(api_key="nvapi-secret")
        assert "secret" not in repr(client)
        assert "https://api.nvcf.nvidia.com" in repr(client)

    def test_save_files_refuses_to_escape(self, tmp_path: Path) -> None:
        """A zip entry that climbs out of the output directory is refused."""
        result = InvocationResult(302, "r", {}, b"", {"../evil": b"x"})
        with pytest.raises(NvcfClientError, match=r"refusing to write '\.\./evil'"):
            result.save_files(tmp_path)

    def test_json_of_a_non_json_body(self) -> None:
        """json() on a binary body says to read .body instead."""
        with pytest.raises(NvcfClientError, match="not JSON"):
            InvocationResult(200, "r", {}, b"\x00").json()

    def test_imports_stay_light(self) -> None:
        """Importing the package, client, invoke and the local launcher never imports aiohttp."""
        code = (
            "import sys, nvcf_helpers, nvcf_helpers.client, nvcf_helpers.client.invoke, "
            "nvcf_helpers.local; print('aiohttp' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
