"""The local NVCF's API, checked against the contract server through real HTTP."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from local_support import (
    API_KEY,
    MAX_RESPONSE_BYTES,
    Raw,
    Reply,
    eventually,
    header_seen,
    headers_seen,
)

from nvcf_helpers import HEADER_NAMES
from nvcf_helpers.local import LocalNvcf

pytestmark = pytest.mark.integration


def _poll_until(raw: Raw, request_id: str, done: Any, timeout: float = 30.0) -> Reply:
    """GET the status (with a 1 s poll window) until ``done(reply)``; returns that reply."""
    deadline = time.monotonic() + timeout
    while True:
        reply = raw(
            "GET", f"/v2/nvcf/pexec/status/{request_id}", headers={"NVCF-POLL-SECONDS": "1"}
        )
        if done(reply) or time.monotonic() > deadline:
            return reply


def _poll_from(raw: Raw, reply: Reply, done: Any) -> Reply:
    """``reply`` (a POST's) if ``done(reply)``, else the first status poll that is."""
    if done(reply):
        return reply
    return _poll_until(raw, reply.headers["NVCF-REQID"], done)


def _ci(echo: dict[str, Any]) -> dict[str, str]:
    """Received headers by lower-case name, each checked to have arrived once."""
    return {name: header_seen(echo, name) for name in headers_seen(echo)}


class TestFunctions:
    """The function read endpoints describe the one function being served."""

    def test_list_functions_shows_the_active_function(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """GET /v2/nvcf/functions lists it with its ids, name and ACTIVE status."""
        functions = raw("GET", "/v2/nvcf/functions").json()["functions"]
        assert [(f["id"], f["versionId"], f["name"], f["status"]) for f in functions] == [
            (nvcf.function_id, nvcf.version_id, "contract-server", "ACTIVE")
        ]
        assert functions[0]["health"]["uri"] == "/health"

    def test_version_endpoints(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """The versions list, version details and deployment describe the same version."""
        base = f"/v2/nvcf/functions/{nvcf.function_id}/versions"
        assert raw("GET", base).json()["functions"][0]["versionId"] == nvcf.version_id
        assert raw("GET", f"{base}/{nvcf.version_id}").json()["function"]["id"] == nvcf.function_id
        deployment = raw(
            "GET", f"/v2/nvcf/deployments/functions/{nvcf.function_id}/versions/{nvcf.version_id}"
        ).json()["deployment"]
        assert deployment["functionStatus"] == "ACTIVE"
        assert deployment["deploymentSpecifications"][0]["maxRequestConcurrency"] == 4

    def test_unknown_function_is_404(self, raw: Raw) -> None:
        """Another function id is 404 with a problem that names the one served."""
        reply = raw("POST", "/v2/nvcf/pexec/functions/not-a-function", {})
        assert reply.status == 404
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert "function not-a-function not found" in reply.json()["detail"]

    def test_unknown_version_is_404(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """A version id other than the one served is 404."""
        reply = raw("POST", f"/v2/nvcf/pexec/functions/{nvcf.function_id}/versions/v0", {})
        assert reply.status == 404
        assert "version v0" in reply.json()["detail"]


class TestAuthorisation:
    """With --api-key, every API route wants the bearer key."""

    def test_missing_key_is_401(self, raw: Raw) -> None:
        """No Authorization header: 401 saying what to send."""
        reply = raw.invoke({}, auth=False)
        assert reply.status == 401
        assert "Authorization header is missing" in reply.json()["detail"]

    def test_wrong_key_is_401(self, raw: Raw) -> None:
        """A wrong key: 401, and the container never sees the call."""
        reply = raw.invoke({}, {"Authorization": "Bearer nope"})
        assert reply.status == 401
        assert "API key is wrong" in reply.json()["detail"]
        assert raw("GET", "/v2/nvcf/functions", auth=False).status == 401


class TestInvocation:
    """A call that finishes within the poll window is a 200 carrying the container's body."""

    def test_200_with_every_worker_header(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """The container gets every header of contract section 2, set from the function."""
        reply = raw.invoke({"hello": "world"}, {"NVCF-POLL-SECONDS": "30"})
        assert reply.status == 200
        echo = reply.json()
        seen = _ci(echo)
        expected = {h.lower() for h in HEADER_NAMES.values()} - {
            "nvcf-function-asset-ids",  # only when assets are sent
            "nvcf-poll-seconds",  # sent lower-case as nvcf-poll-seconds, checked below
        }
        assert expected <= set(seen)
        assert seen["nvcf-reqid"] == reply.headers["NVCF-REQID"]
        assert seen["nvcf-function-id"] == nvcf.function_id
        assert seen["nvcf-function-version-id"] == nvcf.version_id
        assert seen["nvcf-function-name"] == "contract-server"
        assert seen["nvcf-max-response-size-bytes"] == str(MAX_RESPONSE_BYTES)
        assert 0 < int(seen["nvcf-poll-seconds"]) <= 30
        assert "authorization" not in seen
        assert echo["input"] == {"hello": "world"}
        assert reply.headers["NVCF-STATUS"] == "fulfilled"

    def test_request_directories_exist_during_the_call_and_not_after(self, raw: Raw) -> None:
        """The asset and output directories are made before the call (output 0777), gone after."""
        reply = raw.invoke({})
        seen = _ci(reply.json())
        output_dir = Path(seen["nvcf-large-output-dir"])
        asset_dir = Path(seen["nvcf-asset-dir"])
        assert output_dir.name == asset_dir.name == reply.headers["NVCF-REQID"]
        assert eventually(lambda: not output_dir.exists() and not asset_dir.exists())
        assert output_dir.parent.stat().st_mode & 0o777 == 0o755

    def test_identity_environment(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """The container's environment carries the NVCF_* identity."""
        env = raw.invoke({}).json()["env"]
        assert env["NVCF_FUNCTION_ID"] == nvcf.function_id  # containerEnvironment cannot override
        assert env["CONTRACT_GREETING"] == "hello"  # from containerEnvironment
        assert env["NVCF_FUNCTION_VERSION_ID"] == nvcf.version_id
        assert env["NVCF_FUNCTION_NAME"] == "contract-server"
        identity = {
            "NVCF_BACKEND",
            "NVCF_ENV",
            "NVCF_FUNCTION_ID",
            "NVCF_FUNCTION_NAME",
            "NVCF_FUNCTION_VERSION_ID",
            "NVCF_INSTANCETYPE",
            "NVCF_NCA_ID",
            "NVCF_REGION",
        }
        # Nothing else with the reserved prefix: not the local NVCF's own API key either.
        assert {name for name in env if name.startswith("NVCF_")} == identity

    def test_client_cannot_spoof_worker_headers(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """Client headers named like the worker's are replaced; other headers pass through."""
        spoofed = {
            "NVCF-REQID": "spoofed",
            "nvcf-function-id": "spoofed",
            "Nvcf-Asset-Dir": "/etc",
            "NVCF-LARGE-OUTPUT-DIR": "/",
            "NVCF-MAX-RESPONSE-SIZE-BYTES": "1",
            "NVCF-FUNCTION-ASSET-IDS": "spoofed",
            "X-Trace-Id": "kept",
        }
        reply = raw.invoke({}, spoofed)
        values = headers_seen(reply.json())
        assert values["nvcf-reqid"] == [reply.headers["NVCF-REQID"]]
        assert values["nvcf-function-id"] == [nvcf.function_id]
        assert values["nvcf-asset-dir"] != ["/etc"]
        assert values["nvcf-large-output-dir"] != ["/"]
        assert values["nvcf-max-response-size-bytes"] == [str(MAX_RESPONSE_BYTES)]
        assert "nvcf-function-asset-ids" not in values
        assert values["x-trace-id"] == ["kept"]

    def test_request_ids_are_fresh(self, raw: Raw) -> None:
        """Each invocation gets a new request id."""
        ids = {raw.invoke({}).headers["NVCF-REQID"] for _ in range(3)}
        assert len(ids) == 3

    def test_body_over_5_mb_is_413(self, raw: Raw) -> None:
        """A body over NVCF's 5 MB limit is refused before it reaches the container."""
        body = b'{"x": "' + b"a" * 5_000_000 + b'"}'
        reply = raw.invoke(body, {"Content-Type": "application/json"})
        assert reply.status == 413
        assert "exceeds NVCF's limit of 5000000 bytes" in reply.json()["detail"]

    def test_body_just_under_5_mb_is_accepted(self, raw: Raw) -> None:
        """A body at NVCF's limit, arriving in many TCP segments, reaches the container whole."""
        body = json.dumps({"only_size": True, "filler": ""}).encode()
        body = body[:-2] + b"a" * (5_000_000 - len(body)) + b'"}'
        assert len(body) == 5_000_000
        reply = raw.invoke(body, {"Content-Type": "application/json"})
        assert reply.status == 200
        assert reply.json() == {"bytes": 5_000_000}

    def test_chunked_body_over_5_mb_is_413(self, raw: Raw) -> None:
        """Without a Content-Length, the limit is enforced while reading."""
        chunks = iter([b'{"x": "', b"a" * 5_000_000, b'"}'])
        reply = raw.invoke(
            chunks, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        )
        assert reply.status == 413

    def test_body_that_is_not_json_is_400(self, raw: Raw) -> None:
        """NVCF takes JSON bodies only."""
        reply = raw.invoke(b"not json", {"Content-Type": "application/json"})
        assert reply.status == 400
        assert "not JSON" in reply.json()["detail"]


class TestPolling:
    """A call still running when the poll window closes is a 202, then polled to its result."""

    def test_202_then_200_then_404(self, raw: Raw, gate: Path) -> None:
        """The result is delivered exactly once: to the GET that finds it, then 404."""
        reply = raw.invoke({"wait_for": str(gate)}, {"NVCF-POLL-SECONDS": "1"})
        assert reply.status == 202
        request_id = reply.headers["NVCF-REQID"]
        # NVCF's worker answers an empty 202 when the window ends (facts §2, §4).
        assert reply.headers["NVCF-STATUS"] == "in-progress"
        assert "NVCF-PERCENT-COMPLETE" not in reply.headers
        assert reply.body == b""
        gate.touch()
        final = _poll_until(raw, request_id, lambda r: r.status != 202)
        assert final.status == 200
        assert final.headers["NVCF-REQID"] == request_id
        assert final.json()["input"] == {"wait_for": str(gate)}
        again = raw("GET", f"/v2/nvcf/pexec/status/{request_id}")
        assert again.status == 404
        assert "already delivered" in again.json()["detail"]

    def test_200_result_is_not_delivered_again(self, raw: Raw) -> None:
        """After a 200 to the POST, a status GET for the request is 404."""
        reply = raw.invoke({})
        assert reply.status == 200
        assert raw("GET", f"/v2/nvcf/pexec/status/{reply.headers['NVCF-REQID']}").status == 404

    def test_progress_and_partial_response(self, raw: Raw, gate: Path) -> None:
        """A progress update reaches the caller as NVCF-PERCENT-COMPLETE and a 202 body."""
        request = {"progress": [[10, {"step": 1}], [40, {"step": 4}]], "wait_for": str(gate)}
        reply = raw.invoke(request, {"NVCF-POLL-SECONDS": "1"})
        assert reply.status == 202
        request_id = reply.headers["NVCF-REQID"]
        # Each update answers one poll, the POST included (facts §3, delivery).
        seen = _poll_from(raw, reply, lambda r: r.headers.get("NVCF-PERCENT-COMPLETE") == "40")
        assert seen.status == 202
        assert seen.headers["NVCF-STATUS"] == "in-progress"
        assert seen.json() == {"step": 4}
        gate.touch()
        assert _poll_until(raw, request_id, lambda r: r.status != 202).status == 200

    def test_malformed_progress_is_logged_and_skipped(
        self, raw: Raw, nvcf: LocalNvcf, gate: Path
    ) -> None:
        """A fractional progress is skipped with a warning, as NVCF's worker does."""
        request = {
            "raw_progress": '{"id": "wrong", "progress": 55.5}',
            "progress": [[30, {"ok": True}]],
            "wait_for": str(gate),
        }
        reply = raw.invoke(request, {"NVCF-POLL-SECONDS": "1"})
        request_id = reply.headers["NVCF-REQID"]
        seen = _poll_from(raw, reply, lambda r: r.headers.get("NVCF-PERCENT-COMPLETE") == "30")
        assert seen.json() == {"ok": True}
        gate.touch()
        assert _poll_until(raw, request_id, lambda r: r.status != 202).status == 200
        log = nvcf.log.read_text()  # type: ignore[attr-defined]
        assert f"request {request_id}: progress update skipped" in log
        assert "names request 'wrong'" in log

    def test_unknown_request_is_404(self, raw: Raw) -> None:
        """Polling an id that was never issued is 404."""
        reply = raw("GET", "/v2/nvcf/pexec/status/00000000-0000-0000-0000-000000000000")
        assert reply.status == 404
        assert "unknown" in reply.json()["detail"]

    def test_bad_poll_seconds_is_400(self, raw: Raw) -> None:
        """NVCF-POLL-SECONDS must be whole seconds."""
        reply = raw.invoke({}, {"NVCF-POLL-SECONDS": "soon"})
        assert reply.status == 400
        assert "NVCF-POLL-SECONDS is 'soon'" in reply.json()["detail"]


def _zip_of(raw: Raw, reply: Reply) -> zipfile.ZipFile:
    download = raw("GET", reply.headers["Location"], auth=False)
    assert download.status == 200
    assert download.headers["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(download.body))


class TestLargeResults:
    """Large outputs and over-size bodies come back as a 302 to a zip."""

    def test_large_output_file_gives_302_and_zip(self, raw: Raw) -> None:
        """The zip holds the body as <reqid>.response and the file under its name."""
        reply = raw.invoke({"large": {"name": "result.bin", "bytes": 1000}})
        assert reply.status == 302
        request_id = reply.headers["NVCF-REQID"]
        bundle = _zip_of(raw, reply)
        assert sorted(bundle.namelist()) == sorted([f"{request_id}.response", "result.bin"])
        assert bundle.read("result.bin") == b"L" * 1000
        assert json.loads(bundle.read(f"{request_id}.response"))["input"]["large"]["bytes"] == 1000
        assert "NVCF-LOCAL-WARNING" not in reply.headers

    def test_body_over_max_response_size_gives_302(self, raw: Raw) -> None:
        """A body over NVCF-MAX-RESPONSE-SIZE-BYTES is zipped alone."""
        reply = raw.invoke({"body_bytes": MAX_RESPONSE_BYTES + 1})
        assert reply.status == 302
        bundle = _zip_of(raw, reply)
        assert bundle.namelist() == [f"{reply.headers['NVCF-REQID']}.response"]
        assert bundle.read(bundle.namelist()[0]) == b"x" * (MAX_RESPONSE_BYTES + 1)

    def test_body_at_max_response_size_is_inline(self, raw: Raw) -> None:
        """A body of exactly the limit still comes back inline."""
        reply = raw.invoke({"body_bytes": MAX_RESPONSE_BYTES})
        assert reply.status == 200
        assert len(reply.body) == MAX_RESPONSE_BYTES

    def test_partial_file_is_reported(self, raw: Raw, nvcf: LocalNvcf) -> None:
        """A .partial left behind is shipped as NVCF would, with a warning header and log line."""
        reply = raw.invoke({"leave_partial": "image"})
        assert reply.status == 302
        assert "image.partial" in reply.headers["NVCF-LOCAL-WARNING"]
        assert "image.partial" in _zip_of(raw, reply).namelist()
        assert "contract violation" in nvcf.log.read_text()  # type: ignore[attr-defined]


class TestContainerErrors:
    """A container 4xx/5xx becomes problem details with the status preserved."""

    def test_error_text_becomes_detail(self, raw: Raw) -> None:
        """The container's JSON error field is the problem's detail."""
        reply = raw.invoke({"status": 422, "error": "input 'x' must be positive"})
        assert reply.status == 422
        problem = reply.json()
        assert problem["detail"] == "input 'x' must be positive"
        assert problem["status"] == 422
        assert "inference-service" in problem["type"]
        assert reply.headers["NVCF-STATUS"] == "errored"

    def test_body_without_error_field_is_inference_error(self, raw: Raw) -> None:
        """A body that is not JSON gives NVCF's generic detail."""
        reply = raw.invoke({"status": 503, "text_error": True})
        assert reply.status == 503
        assert reply.json()["detail"] == "Inference error"


class TestAssets:
    """Assets are created, uploaded with the signed headers, and copied to the request."""

    def _create(self, raw: Raw, description: str = "greeting") -> dict[str, Any]:
        created = raw(
            "POST", "/v2/nvcf/assets", {"contentType": "text/plain", "description": description}
        )
        assert created.status == 200
        return created.json()

    def _upload(
        self, raw: Raw, asset: dict[str, Any], content_type: str, description: str
    ) -> Reply:
        headers = {"Content-Type": content_type, "x-amz-meta-nvcf-asset-description": description}
        return raw("PUT", asset["uploadUrl"], b"hello asset", headers, auth=False)

    def test_asset_reaches_the_container(self, raw: Raw) -> None:
        """The container reads <NVCF-ASSET-DIR>/<assetId> and sees NVCF-FUNCTION-ASSET-IDS."""
        asset = self._create(raw)
        assert self._upload(raw, asset, "text/plain", "greeting").status == 200
        reply = raw.invoke({}, {"NVCF-INPUT-ASSET-REFERENCES": asset["assetId"]})
        echo = reply.json()
        assert echo["assets"] == {asset["assetId"]: "hello asset"}
        assert echo["asset_dir_mode"] == "0o777"  # work.go 624-631: made 0777 for assets
        assert _ci(echo)["nvcf-function-asset-ids"] == asset["assetId"]
        # NVCF's gateway and worker forward the caller's header too (facts §1, client headers).
        assert _ci(echo)["nvcf-input-asset-references"] == asset["assetId"]

    def test_no_asset_directory_without_assets(self, raw: Raw) -> None:
        """NVCF-ASSET-DIR names a directory NVCF's worker makes only for a request with assets."""
        reply = raw.invoke({})
        echo = reply.json()
        assert _ci(echo)["nvcf-asset-dir"].endswith("/" + reply.headers["NVCF-REQID"])
        assert echo["asset_dir_mode"] is None
        assert echo["assets"] == {}  # nvcf_helpers.assets.list_assets copes with no directory

    def test_upload_with_other_headers_is_403(self, raw: Raw) -> None:
        """Headers that differ from the signed ones are refused, as S3 does."""
        asset = self._create(raw)
        reply = self._upload(raw, asset, "application/octet-stream", "greeting")
        assert reply.status == 403
        assert "header Content-Type is 'application/octet-stream'" in reply.json()["detail"]
        assert self._upload(raw, asset, "text/plain", "other").status == 403

    def test_unuploaded_or_unknown_asset_is_refused(self, raw: Raw) -> None:
        """An asset without content or unknown is 404, an id that is no UUID 400 (facts §4)."""
        asset = self._create(raw)
        reply = raw.invoke({}, {"NVCF-INPUT-ASSET-REFERENCES": asset["assetId"]})
        assert reply.status == 404
        assert "never uploaded" in reply.json()["detail"]
        unknown = "00000000-0000-4000-8000-000000000000"
        reply = raw.invoke({}, {"NVCF-INPUT-ASSET-REFERENCES": unknown})
        assert reply.status == 404
        assert f"asset '{unknown}' does not exist" in reply.json()["detail"]
        reply = raw.invoke({}, {"NVCF-INPUT-ASSET-REFERENCES": "nope"})
        assert reply.status == 400
        assert "'nope' is not an asset id (a UUID)" in reply.json()["detail"]

    def test_list_and_delete(self, raw: Raw) -> None:
        """Assets are listed until deleted; deleting twice is 404."""
        asset = self._create(raw, "to delete")
        listed = {a["assetId"] for a in raw("GET", "/v2/nvcf/assets").json()["assets"]}
        assert asset["assetId"] in listed
        assert raw("DELETE", f"/v2/nvcf/assets/{asset['assetId']}").status == 204
        listed = {a["assetId"] for a in raw("GET", "/v2/nvcf/assets").json()["assets"]}
        assert asset["assetId"] not in listed
        assert raw("DELETE", f"/v2/nvcf/assets/{asset['assetId']}").status == 404

    def test_bad_create_body_is_400(self, raw: Raw) -> None:
        """Creating an asset needs contentType and description."""
        reply = raw("POST", "/v2/nvcf/assets", {"contentType": "text/plain"})
        assert reply.status == 400
        assert "'contentType' and 'description'" in reply.json()["detail"]


class TestQueues:
    """Requests beyond the container's concurrency wait in the function's queue."""

    def test_queue_length_and_position(self, raw: Raw, nvcf: LocalNvcf, gate: Path) -> None:
        """With 4 slots busy, a 5th request waits in the queue (queueDepth 1) until one frees.

        NVCF's queue endpoint reports ``queueDepth`` (facts §4, queue endpoints);
        a queued request has no 202 yet: NVCF's worker has not picked it up.
        """
        import threading

        busy = [raw.invoke({"wait_for": str(gate)}, {"NVCF-POLL-SECONDS": "0"}) for _ in range(4)]
        queued: list[Reply] = []
        fifth = threading.Thread(
            target=lambda: queued.append(
                raw.invoke({"wait_for": str(gate)}, {"NVCF-POLL-SECONDS": "30"})
            )
        )
        fifth.start()
        queue = f"/v2/nvcf/queues/functions/{nvcf.function_id}"
        assert eventually(lambda: raw("GET", queue).json()["queues"][0]["queueDepth"] == 1)
        request_id = busy[0].headers["NVCF-REQID"]
        position = raw("GET", f"/v2/nvcf/queues/{request_id}/position").json()
        assert position == {"requestId": request_id, "positionInQueue": 0}
        gate.touch()
        for reply in busy:
            final = _poll_until(raw, reply.headers["NVCF-REQID"], lambda r: r.status != 202)
            assert final.status == 200
        fifth.join(60)
        assert [reply.status for reply in queued] == [200]
        assert raw("GET", queue).json()["queues"][0]["queueDepth"] == 0


class TestStreaming:
    """Accept: text/event-stream requests are relayed as the container sends them."""

    def test_events_arrive_before_the_stream_ends(self, nvcf: LocalNvcf, gate: Path) -> None:
        """The first event is readable while the container still holds the rest back."""
        import http.client

        host, port = nvcf.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        body = json.dumps({"events": 3, "wait_for": str(gate)})
        connection.request(
            "POST",
            f"/v2/nvcf/pexec/functions/{nvcf.function_id}",
            body=body,
            headers={
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": "application/json",
                "Accept": "text/event-stream",
            },
        )
        response = connection.getresponse()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.readline() == b'data: {"event": 0}\n'
        gate.touch()  # only now does the container send the other events
        rest = response.read().decode()
        connection.close()
        assert 'data: {"event": 1}' in rest
        assert 'data: {"event": 2}' in rest
