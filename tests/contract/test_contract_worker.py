"""Contract, facts §1 "Worker → container request": what the container receives.

Each test names the bullet of ``NVCF_SOURCE_FACTS.md`` it checks. The echo
container reports the request as it arrived; the same tests run against the
local NVCF and, pointed there, a real NVCF (see ``conftest.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from contract_support import Reply, Target

pytestmark = pytest.mark.integration

#: The 15 header names NVCF's worker owns (§1 "Client headers", dropped).
WORKER_OWNED = (
    "NVCF-REQID",
    "NVCF-SUB",
    "NVCF-NCAID",
    "NVCF-FUNCTION-NAME",
    "NVCF-FUNCTION-ID",
    "NVCF-FUNCTION-VERSION-ID",
    "NVCF-ASSET-DIR",
    "NVCF-LARGE-OUTPUT-DIR",
    "NVCF-MAX-RESPONSE-SIZE-BYTES",
    "NVCF-NSPECTID",
    "NVCF-BACKEND",
    "NVCF-INSTANCETYPE",
    "NVCF-REGION",
    "NVCF-ENV",
    "NVCF-FUNCTION-ASSET-IDS",
)


def test_pexec_reaches_the_inference_url(target: Target) -> None:
    """§1 "Path" (and "URL"): pexec goes to the version's inferenceUrl, with the client's method."""
    echo = target.invoke({}).json()
    assert echo["method"] == "POST"
    assert echo["path"] == target.inference_url


def test_identity_headers_in_their_exact_spellings(target: Target) -> None:
    """§1 "Headers the worker sets": NVCF-REQID, NVCF-FUNCTION-* spelled exactly, with values."""
    reply = target.invoke({})
    assert reply.status == 200
    assert reply.seen_exactly("NVCF-REQID") == [reply.request_id]
    assert reply.seen_exactly("NVCF-FUNCTION-ID") == [target.function_id]
    assert reply.seen_exactly("NVCF-FUNCTION-VERSION-ID") == [target.version_id]
    assert reply.seen_exactly("NVCF-FUNCTION-NAME") == [target.function_name]


def test_caller_and_platform_headers_in_their_exact_spellings(target: Target) -> None:
    """§1 "Headers the worker sets": SUB, NCAID, NSPECTID, BACKEND, INSTANCETYPE, REGION, ENV.

    Each arrives once under the worker's spelling (its map keys are not canonicalised).
    """
    reply = target.invoke({})
    for name in (
        "NVCF-SUB",
        "NVCF-NCAID",
        "NVCF-NSPECTID",
        "NVCF-BACKEND",
        "NVCF-INSTANCETYPE",
        "NVCF-REGION",
        "NVCF-ENV",
    ):
        assert len(reply.seen_exactly(name)) == 1, name


def test_asset_dir_is_set_without_assets(target: Target) -> None:
    """§1 "Headers the worker sets": NVCF-ASSET-DIR = /var/inf/inputAssets/<reqid>, always set."""
    reply = target.invoke({})
    (asset_dir,) = reply.seen_exactly("NVCF-ASSET-DIR")
    assert Path(asset_dir).name == reply.request_id
    if not target.local:
        assert asset_dir == f"/var/inf/inputAssets/{reply.request_id}"


def test_asset_dir_is_made_only_for_assets(target: Target) -> None:
    """§1: NVCF-ASSET-DIR is set, but the directory is made only for a request with assets.

    Source: work.go 619-631 (downloadAssets returns before its Mkdir when there are none).
    """
    assert target.invoke({}).json()["asset_dir_mode"] is None


def test_large_output_dir_is_per_request(target: Target) -> None:
    """§1 "Headers the worker sets": NVCF-LARGE-OUTPUT-DIR = /var/inf/response/<reqid>."""
    reply = target.invoke({})
    (output_dir,) = reply.seen_exactly("NVCF-LARGE-OUTPUT-DIR")
    assert Path(output_dir).name == reply.request_id
    if not target.local:
        assert output_dir == f"/var/inf/response/{reply.request_id}"


def test_max_response_size_is_5_mib(target: Target) -> None:
    """§1 "Size-limit value": NVCF-MAX-RESPONSE-SIZE-BYTES is always 5242880."""
    assert target.invoke({}).seen_exactly("NVCF-MAX-RESPONSE-SIZE-BYTES") == ["5242880"]


def test_no_asset_ids_without_assets(target: Target) -> None:
    """§1 "NVCF-FUNCTION-ASSET-IDS": only when assets exist."""
    assert target.invoke({}).seen("NVCF-FUNCTION-ASSET-IDS") == []


def test_assets_are_saved_by_id_and_listed(target: Target, tmp_path: Path) -> None:
    """§1 "NVCF-FUNCTION-ASSET-IDS", "Input assets": ids comma-joined; <assetDir>/<assetId> 0644."""
    from nvcf_helpers.client import NvcfClient

    client = NvcfClient(target.base_url, target.api_key)
    ids = []
    for index in range(2):
        path = tmp_path / f"input{index}.txt"
        path.write_text(f"asset {index}")
        ids.append(client.upload_asset(path, content_type="text/plain").asset_id)
    try:
        reply = target.invoke({}, [("NVCF-INPUT-ASSET-REFERENCES", ",".join(ids))])
        assert reply.status == 200
        assert reply.seen_exactly("NVCF-FUNCTION-ASSET-IDS") == [",".join(ids)]
        assets = {a["name"]: a for a in reply.json()["assets"]}
        assert sorted(assets) == sorted(ids)
        for index, asset_id in enumerate(ids):
            assert assets[asset_id]["text"] == f"asset {index}"
            assert assets[asset_id]["mode"] == "0o644"
        assert reply.json()["asset_dir_mode"] == "0o777"  # work.go 624-631
    finally:
        for asset_id in ids:
            client.delete_asset(asset_id)


def test_invocation_region_is_the_gateways(target: Target) -> None:
    """§1 "NVCF-INVOCATION-REGION": the gateway overwrites the client's value; it arrives once."""
    reply = target.invoke({}, [("NVCF-INVOCATION-REGION", "spoofed")])
    values = reply.seen("NVCF-INVOCATION-REGION")
    assert len(values) == 1
    assert values != ["spoofed"]
    assert reply.seen_exactly("NVCF-INVOCATION-REGION") == values


def test_poll_seconds_is_the_window_left(target: Target) -> None:
    """§1 "nvcf-poll-seconds": the poll target minus the time since creation, whole seconds."""
    reply = target.invoke({}, [("NVCF-POLL-SECONDS", "30")])
    assert reply.seen("nvcf-poll-seconds") in (["29"], ["30"])


def test_poll_seconds_can_be_negative_after_queueing(target: Target, token: str) -> None:
    """§1 "nvcf-poll-seconds": it can be 0 or negative after queueing (one slot, busy 2.5 s).

    Needs the echo function at maxRequestConcurrency 1 on a single instance.
    """
    window = [("NVCF-POLL-SECONDS", "1")]
    busy: list[Reply] = []
    holder = threading.Thread(
        target=lambda: busy.append(target.until_done(target.invoke({"sleep": 2.5}, window)))
    )
    holder.start()
    try:
        threading.Event().wait(0.3)
        queued = target.until_done(target.invoke({}, window))
    finally:
        holder.join(30)
    assert busy[0].status == 200
    assert queued.status == 200
    (left,) = queued.seen("nvcf-poll-seconds")
    assert int(left) <= 0


def test_client_headers_forwarded_in_go_casing(target: Target) -> None:
    """§1 "Client headers": forwarded with canonical Go casing, each value kept."""
    sent = [("x-trace-id", "t-1"), ("X-DUP", "a"), ("X-DUP", "b")]
    reply = target.invoke({}, sent)
    assert reply.seen_exactly("X-Trace-Id") == ["t-1"]
    assert reply.seen_exactly("X-Dup") == ["a", "b"]


def test_worker_owned_client_headers_are_dropped(target: Target) -> None:
    """§1 "Client headers", dropped: the 15 worker-owned names, in any case."""
    reply = target.invoke({}, [(name.lower(), "spoofed") for name in WORKER_OWNED])
    values = [value for _, value in reply.json()["headers"]]
    assert "spoofed" not in values


def test_hop_by_hop_and_authorization_are_removed(target: Target) -> None:
    """§1 "Client headers", removed by the gateway: hop-by-hop headers and Authorization."""
    sent = [("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Proxy-Authorization", "Basic eA==")]
    reply = target.invoke({}, sent)
    for name in ("Authorization", "Keep-Alive", "TE", "Proxy-Authorization"):
        assert reply.seen(name) == [], name


def test_default_content_type_is_json(target: Target) -> None:
    """§1 "Default Content-Type": application/json when the request has none."""
    assert target.invoke({}, content_type=None).seen("Content-Type") == ["application/json"]


def test_given_content_type_is_kept(target: Target) -> None:
    """§1 "Default Content-Type": only a request without one gets the default."""
    reply = target.invoke({}, content_type="text/plain")
    assert reply.seen("Content-Type") == ["text/plain"]


def test_direct_requests_get_the_default_content_type(target: Target) -> None:
    """§1 "Default Content-Type": this applies to TLB (direct) requests too."""
    reply = target.direct("POST", "/anything", b"{}")
    assert reply.seen("Content-Type") == ["application/json"]


def test_direct_requests_carry_the_compatibility_switch(target: Target) -> None:
    """§1 "Client headers": TLB requests carry nvcf-feature-disable-worker-compatibility: true."""
    reply = target.direct("GET", "/anything")
    assert reply.seen("nvcf-feature-disable-worker-compatibility") == ["true"]


def test_direct_requests_keep_path_query_and_method(target: Target) -> None:
    """§1 "Path": TLB uses the client's path and query, and the client's method."""
    reply = target.direct("PATCH", "/v1/items/7?x=1&y=%20", b"raw body")
    echo = reply.json()
    assert (echo["method"], echo["path"], echo["body_length"]) == (
        "PATCH",
        "/v1/items/7?x=1&y=%20",
        8,
    )


def test_no_retry_after_a_connection_error(target: Target, token: str) -> None:
    """§1 "Timeouts/retries": none; a reset connection reaches the container once."""
    reply = target.invoke({"count": token, "reset": True})
    assert reply.status == 500
    assert target.invoke({"report": token}).json()["count"] == 1


def test_one_request_at_a_time_by_default(target: Target) -> None:
    """§1 "Concurrency": MAX_REQUEST_CONCURRENCY slots, API default 1: never two at once.

    Needs the echo function at maxRequestConcurrency 1 on a single instance.
    """
    replies: list[Reply] = []

    def one() -> None:
        replies.append(target.until_done(target.invoke({"sleep": 0.3})))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status for r in replies] == [200, 200, 200]
    assert [r.json()["in_flight"] for r in replies] == [1, 1, 1]
