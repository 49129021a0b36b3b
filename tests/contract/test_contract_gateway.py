"""Contract, facts §4 "Gateway / invocation API": routes, poll windows, answers, auth, assets.

Each test names the bullet of ``NVCF_SOURCE_FACTS.md`` it checks. The same
tests run against the local NVCF and, pointed there, a real NVCF (see
``conftest.py``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from contract_support import LOCAL_QUEUE_SIZE, Reply, Target

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
NO_COMPAT = ("nvcf-feature-disable-worker-compatibility", "true")
STRANGER = "00000000-0000-4000-8000-000000000000"


def assert_gateway_problem(reply: Reply, status: int, detail: str | None = None) -> None:
    """§4 "Error body formats": RFC 9457 ``{title, status, detail}`` with ``type`` omitted."""
    assert reply.status == status, reply.body[:300]
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    problem = reply.json()
    assert "type" not in problem
    assert problem["status"] == status
    if detail is not None:
        assert detail in problem["detail"]


def in_background(function: Callable[[], Reply]) -> tuple[threading.Thread, list[Reply]]:
    results: list[Reply] = []
    thread = threading.Thread(target=lambda: results.append(function()), daemon=True)
    thread.start()
    return thread, results


# -- routes ----------------------------------------------------------------------------------------


def test_unknown_route_is_a_404_problem(target: Target) -> None:
    """§4 "Routes": anything else gives a 404 problem."""
    assert_gateway_problem(target.call("GET", "/v2/nvcf/nothing/here"), 404)


def test_version_route_reaches_that_version(target: Target) -> None:
    """§4 "Routes": POST /v2/nvcf/pexec/functions/{fid}/versions/{vid}."""
    path = f"{target.pexec}/versions/{target.version_id}"
    reply = target.invoke({}, path=path)
    assert reply.status == 200
    assert reply.seen("NVCF-FUNCTION-VERSION-ID") == [target.version_id]


def test_unknown_version_is_404(target: Target) -> None:
    """§4 "Version selection": no version to invoke gives 404."""
    assert target.invoke({}, path=f"{target.pexec}/versions/{STRANGER}").status == 404


def test_unknown_function_is_404(target: Target) -> None:
    """§4 "Auth": a function that is not found gives 404."""
    assert target.invoke({}, path=f"/v2/nvcf/pexec/functions/{STRANGER}").status == 404


@pytest.mark.local_differs("the local NVCF has no legacy /v2/nvcf/exec route (404)")
def test_legacy_exec_route(target: Target) -> None:
    """§4 "Routes" and "Legacy exec mapping": exec answers 200 JSON with status fulfilled."""
    request: dict[str, Any] = {"requestHeader": {}, "requestBody": {}}
    reply = target.invoke(request, path=f"/v2/nvcf/exec/functions/{target.function_id}")
    assert reply.status == 200
    answer = reply.json()
    assert answer["status"] == "fulfilled"
    assert answer["percentComplete"] == 100


def test_direct_version_header_picks_the_version(target: Target) -> None:
    """§4 "Routes": ``function-id`` with ``function-version-id`` routes to that version."""
    reply = target.direct("GET", "/v", None, [("function-version-id", target.version_id)])
    assert reply.status == 200
    assert reply.seen("NVCF-FUNCTION-VERSION-ID") == [target.version_id]


@pytest.mark.local_only("a real NVCF needs a DNS name per function for this")
def test_direct_host_name_routes(target: Target) -> None:
    """§4 "Routes": a host name starting with ``<vid>.<fid>.`` routes any path directly."""
    host = ("Host", f"{target.version_id}.{target.function_id}.localhost")
    reply = target.call("GET", "/by-host?x=1", None, [host])
    assert reply.json()["path"] == "/by-host?x=1"


# -- NVCF-POLL-SECONDS -----------------------------------------------------------------------------


def test_poll_default_is_60(target: Target) -> None:
    """§4 "NVCF-POLL-SECONDS": default 60 s (the container sees 59 or 60 left)."""
    assert target.invoke({}).seen("nvcf-poll-seconds") in (["59"], ["60"])


def test_poll_default_for_event_streams_is_1200(target: Target) -> None:
    """§4 "NVCF-POLL-SECONDS": absent, and Accept exactly text/event-stream: 1200 s."""
    reply = target.invoke({}, [("Accept", "text/event-stream")])
    assert reply.seen("nvcf-poll-seconds") in (["1199"], ["1200"])


def test_poll_below_1_counts_as_1(target: Target) -> None:
    """§4 "NVCF-POLL-SECONDS": values below 1 are raised to 1 (a 0.5 s answer is a 200)."""
    reply = target.invoke({"sleep": 0.5}, [("NVCF-POLL-SECONDS", "0")])
    assert reply.status == 200
    assert reply.seen("nvcf-poll-seconds") in (["0"], ["1"])


def test_poll_3600_is_accepted(target: Target) -> None:
    """§4 "NVCF-POLL-SECONDS": 3600 is in range (the docs' 300 is not enforced)."""
    reply = target.invoke({}, [("NVCF-POLL-SECONDS", "3600")])
    assert reply.seen("nvcf-poll-seconds") in (["3599"], ["3600"])


@pytest.mark.parametrize("value", ["3601", "soon", "1.5"])
def test_poll_out_of_range_or_not_a_number_is_400(target: Target, value: str) -> None:
    """§4 "NVCF-POLL-SECONDS": above 3600 or not a number: 400 "failed to parse poll duration"."""
    reply = target.invoke({}, [("NVCF-POLL-SECONDS", value)])
    assert_gateway_problem(reply, 400, "failed to parse poll duration")


# -- waiting, 202 and status polls -----------------------------------------------------------------


@pytest.mark.local_differs(
    "outside compatibility mode the local NVCF answers an empty 202 at the window's end"
)
def test_no_head_within_poll_plus_2_is_504(target: Target) -> None:
    """§4 "Waiting for the worker": no response head within poll + 2 s: 504, empty, errored.

    Outside compatibility mode the worker sends no 202, so the gateway's limit
    applies (§2 "Container timeout"); the 504 carries NVCF-REQID (§3 "Gateway headers").
    """
    reply = target.invoke({"sleep": 3.5}, [("NVCF-POLL-SECONDS", "1"), NO_COMPAT])
    time.sleep(max(0.0, 3.6 - reply.elapsed))  # the container is free for the next test
    assert 2.5 < reply.elapsed < 3.4
    assert (reply.status, reply.body) == (504, b"")
    assert reply.headers["NVCF-STATUS"] == "errored"
    assert reply.headers["NVCF-REQID"]
    assert "nvcf-reqid" in reply.headers["Access-Control-Expose-Headers"].lower()


def test_queued_request_never_picked_up_is_504_and_purged(target: Target, token: str) -> None:
    """§4 "Waiting for the worker": 504 after poll + 2 s, and the queued message is purged.

    Needs the echo function at maxRequestConcurrency 1 on a single instance.
    """
    holder, held = in_background(
        lambda: target.until_done(target.invoke({"sleep": 3.6}, [("NVCF-POLL-SECONDS", "1")]))
    )
    time.sleep(0.3)
    reply = target.invoke({"count": token}, [("NVCF-POLL-SECONDS", "1")])
    assert (reply.status, reply.body) == (504, b"")
    assert reply.headers["NVCF-STATUS"] == "errored"
    holder.join(30)
    assert held[0].status == 200
    assert target.invoke({"report": token}).json()["count"] == 0
    assert target.status(reply.request_id).status == 404


def test_result_is_fetched_once(target: Target) -> None:
    """§4 "202 and status polls": a 202 records the id; a non-202 result purges it: then 404."""
    reply = target.invoke({"sleep": 1.3}, [("NVCF-POLL-SECONDS", "1")])
    assert reply.status == 202
    final = target.until_done(reply)
    assert final.status == 200
    assert final.json()["path"] == target.inference_url
    again = target.status(reply.request_id)
    assert_gateway_problem(again, 404)


def test_finished_on_first_call_is_never_recorded(target: Target) -> None:
    """§4 "202 and status polls": a request finished on its first call: polling it gives 404."""
    reply = target.invoke({})
    assert reply.status == 200
    assert_gateway_problem(target.status(reply.request_id), 404)


def test_unknown_request_id_is_404(target: Target) -> None:
    """§4 "202 and status polls": a GET status for an unknown ID gives a 404 problem."""
    assert_gateway_problem(target.status(str(uuid.uuid4())), 404)


@pytest.mark.local_differs("the local NVCF's 404 for an unknown request id has a detail")
def test_unknown_request_id_has_no_detail(target: Target) -> None:
    """§4 "202 and status polls": the 404 for an unknown or expired ID has no detail."""
    problem = target.status(str(uuid.uuid4())).json()
    assert problem.get("detail", "") == ""


def test_client_disconnect_cancels_the_request(target: Target, token: str) -> None:
    """§4 "Client disconnect": the gateway broadcasts cancel, the worker cancels the request."""
    with pytest.raises(TimeoutError):
        target.invoke({"sleep": 6, "watch": token}, [("NVCF-POLL-SECONDS", "30")], timeout=1)
    # The container notices the closed connection on its own schedule (it checks
    # while it sleeps): ask until it has, well before the 6 s sleep would end.
    started = time.monotonic()
    report = target.invoke({"report": token}, [("NVCF-POLL-SECONDS", "30")]).json()
    while not report["cancelled"] and time.monotonic() - started < 4:
        time.sleep(0.2)
        report = target.invoke({"report": token}, [("NVCF-POLL-SECONDS", "30")]).json()
    assert report["cancelled"], "the container's request was not cancelled"
    assert time.monotonic() - started < 4


@pytest.mark.local_only("NVCF's queue holds 100000 requests; the local one is --queue-size 2")
def test_full_queue_is_429(target: Target) -> None:
    """§4 "Status-code meanings" and "Queue": 429 when the request queue is full."""
    window = [("NVCF-POLL-SECONDS", "1")]
    threads = []
    for _ in range(1 + LOCAL_QUEUE_SIZE):
        threads.append(
            in_background(lambda: target.until_done(target.invoke({"sleep": 1.2}, window)))
        )
        time.sleep(0.15)
    refused = target.invoke({}, window)
    assert refused.status == 429
    assert refused.headers["Content-Type"].startswith(PROBLEM)
    for thread, results in threads:
        thread.join(30)
        assert results[0].status == 200


def test_queue_endpoint_shape(target: Target) -> None:
    """§4 "Queue endpoints": {functionId, queues: [{functionVersionId, ..., queueDepth}]}."""
    reply = target.call("GET", f"/v2/nvcf/queues/functions/{target.function_id}")
    assert reply.status == 200
    answer = reply.json()
    assert answer["functionId"] == target.function_id
    (queue,) = [q for q in answer["queues"] if q["functionVersionId"] == target.version_id]
    assert set(queue) >= {"functionVersionId", "functionName", "functionStatus", "queueDepth"}
    assert queue["functionStatus"] == "ACTIVE"
    assert queue["queueDepth"] == 0


# -- request body ----------------------------------------------------------------------------------


@pytest.mark.local_differs("the local NVCF refuses a pexec body that is not JSON (400)")
def test_request_body_is_any_bytes(target: Target) -> None:
    """§4 "Request body": 32 KiB inline, the rest streamed: 1 MiB, not JSON, arrives whole."""
    body = os.urandom(1 << 20)
    reply = target.call("POST", target.pexec, body, [("Content-Type", "application/octet-stream")])
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["body_length"] == 1 << 20


def test_large_json_body_arrives_whole(target: Target) -> None:
    """§4 "Request body": 32 KiB inline, the rest streamed: a 1 MiB JSON body arrives whole."""
    body = json.dumps({"pad": "x" * ((1 << 20) - 11)}).encode()
    assert target.invoke(raw=body).json()["body_length"] == 1 << 20


@pytest.mark.local_differs(
    "the local NVCF answers 413 to bodies over 5000000 bytes (the docs' limit)"
)
def test_request_body_has_no_5_mb_cap(target: Target) -> None:
    """§4 "Request body" and "Source vs docs": no cap: 6 MB of JSON reach the container."""
    body = json.dumps({"pad": "x" * (6_000_000 - 11)}).encode()
    reply = target.call("POST", target.pexec, body, [("Content-Type", "application/json")])
    assert reply.status == 200, reply.body[:300]
    assert reply.json()["body_length"] == 6_000_000


# -- auth ------------------------------------------------------------------------------------------


def test_missing_authorization_is_401(target: Target) -> None:
    """§4 "Auth": a missing Authorization header gives 401."""
    assert target.invoke({}, auth=False).status == 401


@pytest.mark.local_differs("the local NVCF's 401 is a problem-details JSON body")
def test_missing_authorization_is_plain_text(target: Target) -> None:
    """§4 "Auth": missing Authorization: plain text "Header of type `authorization` was missing"."""
    reply = target.invoke({}, auth=False)
    assert reply.body.decode() == "Header of type `authorization` was missing"


def test_invalid_token_is_401(target: Target) -> None:
    """§4 "Auth": an invalid token gives 401."""
    reply = target.invoke({}, [("Authorization", "Bearer not-the-key")], auth=False)
    assert reply.status == 401


# -- input assets ----------------------------------------------------------------------------------


def test_asset_references_are_trimmed_and_empties_skipped(target: Target, tmp_path: Path) -> None:
    """§4 "NVCF-INPUT-ASSET-REFERENCES": comma-separated, trimmed, empty entries skipped."""
    from nvcf_helpers.client import NvcfClient

    client = NvcfClient(target.base_url, target.api_key)
    path = tmp_path / "one.txt"
    path.write_text("one")
    asset_id = client.upload_asset(path, content_type="text/plain").asset_id
    try:
        reply = target.invoke({}, [("NVCF-INPUT-ASSET-REFERENCES", f" {asset_id} , ,")])
        assert reply.status == 200, reply.body[:300]
        assert reply.seen("NVCF-FUNCTION-ASSET-IDS") == [asset_id]
    finally:
        client.delete_asset(asset_id)


def test_asset_reference_that_is_no_uuid_is_400(target: Target) -> None:
    """§4 "NVCF-INPUT-ASSET-REFERENCES": an invalid UUID gives a 400."""
    assert target.invoke({}, [("NVCF-INPUT-ASSET-REFERENCES", "not-a-uuid")]).status == 400


def test_unknown_asset_is_404_problem(target: Target) -> None:
    """§4 "NVCF-INPUT-ASSET-REFERENCES": an unknown asset gives a 404 problem."""
    reply = target.invoke({}, [("NVCF-INPUT-ASSET-REFERENCES", STRANGER)])
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith(PROBLEM)
