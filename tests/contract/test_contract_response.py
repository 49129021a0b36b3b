"""Contract, facts §2 "Container → worker response" and §3 "Progress file": what the caller gets.

Each test names the bullet of ``NVCF_SOURCE_FACTS.md`` it checks. The echo
container answers as the request tells it; the same tests run against the
local NVCF and, pointed there, a real NVCF (see ``conftest.py``).
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from contract_support import Reply, Target

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
NO_COMPAT = ("nvcf-feature-disable-worker-compatibility", "true")
MIB5 = 5 * 1024 * 1024


def _zip(target: Target, reply: Reply) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(target.download(reply.headers["Location"])))


def _percents(target: Target, reply: Reply, poll: str = "1") -> tuple[list[str], Reply]:
    """Every NVCF-PERCENT-COMPLETE seen while polling a request to its end (with the end)."""
    seen = []
    deadline = time.monotonic() + 30
    while reply.status == 202 and time.monotonic() < deadline:
        if "NVCF-PERCENT-COMPLETE" in reply.headers:
            seen.append(reply.headers["NVCF-PERCENT-COMPLETE"])
        reply = target.status(reply.request_id, poll)
    return seen, reply


# -- §2 errors -------------------------------------------------------------------------------------


def test_error_is_rewrapped_exactly(target: Target) -> None:
    """§2 "Errors (compatibility mode)": type, title, status, detail from "error"; nothing else."""
    reply = target.invoke({"status": 422, "body": '{"error": "x must be positive"}'})
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert reply.json() == {
        "type": "urn:inference-service:problem-details:unprocessable-entity",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "x must be positive",
    }


def test_error_without_error_string_is_inference_error(target: Target) -> None:
    """§2 "Errors (compatibility mode)": detail "Inference error" when the body has no "error"."""
    reply = target.invoke({"status": 503, "body": "down", "content_type": "text/plain"})
    assert reply.json() == {
        "type": "urn:inference-service:problem-details:service-unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Inference error",
    }


def test_error_with_a_code_go_does_not_know(target: Target) -> None:
    """§2 "Errors (compatibility mode)": for codes Go does not know, title is empty."""
    reply = target.invoke({"status": 599, "body": '{"error": "odd"}'})
    problem = reply.json()
    assert reply.status == 599
    assert problem.get("title", "") == ""
    assert problem["type"] == "urn:inference-service:problem-details:"
    assert (problem["status"], problem["detail"]) == (599, "odd")


def test_connection_error_is_an_inference_connection_problem(target: Target) -> None:
    """§2 "Connection errors": a reset gives 500 urn:inference-connection:..., fixed detail."""
    reply = target.invoke({"reset": True})
    assert reply.status == 500
    problem = reply.json()
    assert problem["type"] == "urn:inference-connection:problem-details:internal-server-error"
    assert problem["detail"] == "Inference connection error while making inference request"


# -- §2 large output -------------------------------------------------------------------------------


def test_any_file_means_a_302_zip_with_the_response_first(target: Target) -> None:
    """§2 "Large output": any regular file (recursive, hidden too): zip, <reqid>.response first."""
    files = {".hidden": "h", "sub/dir/a.txt": "a"}
    reply = target.invoke({"files": files})
    assert reply.status == 302
    bundle = _zip(target, reply)
    names = bundle.namelist()
    assert names[0] == f"{reply.request_id}.response"
    assert sorted(names[1:]) == [".hidden", "sub/dir/a.txt"]
    assert bundle.read("sub/dir/a.txt") == b"a"
    assert json.loads(bundle.read(names[0]))["path"] == target.inference_url


def test_progress_files_are_not_artifacts(target: Target) -> None:
    """§2 "Large output": the only file skipped is one whose base name is exactly ``progress``."""
    reply = target.invoke({"files": {"progress": "{}", "sub/progress": "{}"}})
    assert reply.status == 200
    assert reply.json()["path"] == target.inference_url


def test_partial_files_ship(target: Target) -> None:
    """§2 "Large output": ``.partial`` files are not skipped."""
    reply = target.invoke({"files": {"deep/x.partial": "half"}})
    assert reply.status == 302
    assert "deep/x.partial" in _zip(target, reply).namelist()


@pytest.mark.local_only("the warning is the local NVCF's own (NVCF_CONTRACT §0)")
def test_partial_files_ship_with_a_local_warning(target: Target) -> None:
    """§2 "Large output" with issue 10: the local NVCF warns about a leftover ``.partial``."""
    reply = target.invoke({"files": {"y.partial": "half"}})
    assert "y.partial" in reply.headers.get("NVCF-LOCAL-WARNING", "")


def test_302_carries_only_location(target: Target) -> None:
    """§2 "Large output", result: 302, Location, empty body; the container's headers dropped."""
    reply = target.invoke({"files": {"a.txt": "a"}, "headers": {"X-Own": "1"}})
    assert reply.status == 302
    assert reply.body == b""
    assert reply.headers["Location"]
    assert "X-Own" not in reply.headers


def test_body_over_5_mib_is_zipped(target: Target) -> None:
    """§2 "Large output": a body over MaxDirectResponseSizeBytes (5 MiB) comes as a zip."""
    reply = target.invoke({"body_bytes": MIB5 + 1})
    assert reply.status == 302
    bundle = _zip(target, reply)
    assert len(bundle.read(f"{reply.request_id}.response")) == MIB5 + 1


def test_body_of_5_mib_is_inline(target: Target) -> None:
    """§2 "Large output": exactly 5 MiB does not exceed the limit: inline."""
    reply = target.invoke({"body_bytes": MIB5})
    assert (reply.status, len(reply.body)) == (200, MIB5)


# -- §2 pass-through -------------------------------------------------------------------------------


def test_small_success_passes_through(target: Target) -> None:
    """§2 "Small successes": container status and headers, minus hop-by-hop, plus Content-Length."""
    own = {"X-Own": "1", "Proxy-Authenticate": "Basic", "Upgrade": "h2c"}
    reply = target.invoke({"status": 201, "body": '{"made": 1}', "headers": own})
    assert (reply.status, reply.body) == (201, b'{"made": 1}')
    assert reply.headers["X-Own"] == "1"
    assert "Proxy-Authenticate" not in reply.headers
    assert "Upgrade" not in reply.headers
    assert reply.headers["Content-Length"] == str(len(reply.body))


def test_outside_compatibility_an_error_passes_through(target: Target) -> None:
    """§2 "Outside compatibility mode": status, headers and body unchanged; no rewrap."""
    request = {"status": 418, "body": "teapot", "content_type": "text/plain"}
    reply = target.invoke({**request, "headers": {"X-Own": "1"}}, [NO_COMPAT])
    assert (reply.status, reply.body) == (418, b"teapot")
    assert reply.headers["Content-Type"] == "text/plain"
    assert reply.headers["X-Own"] == "1"


def test_outside_compatibility_files_are_not_zipped(target: Target) -> None:
    """§2 "Outside compatibility mode": no zip for artifacts in the output directory."""
    reply = target.invoke({"files": {"a.txt": "a"}}, [NO_COMPAT])
    assert reply.status == 200
    assert reply.json()["path"] == target.inference_url


def test_outside_compatibility_no_5_mib_check(target: Target) -> None:
    """§2 "Outside compatibility mode": no 5 MiB check: 6 MiB come back inline."""
    reply = target.invoke({"body_bytes": 6 << 20}, [NO_COMPAT])
    assert (reply.status, len(reply.body)) == (200, 6 << 20)


def test_event_stream_accept_turns_compatibility_off(target: Target) -> None:
    """§2 "Compatibility mode": skipped for Accept text/event-stream: the error passes through."""
    request = {"status": 418, "body": "teapot", "content_type": "text/plain"}
    reply = target.invoke(request, [("Accept", "text/event-stream")])
    assert (reply.status, reply.body) == (418, b"teapot")


def test_direct_calls_pass_through(target: Target) -> None:
    """§2 "Compatibility mode" (never for TLB) and "Outside": a direct 418 comes back untouched."""
    reply = target.direct("GET", "/anything?status=418&body=short&header=X-Teapot:%20yes")
    assert (reply.status, reply.body) == (418, b"short")
    assert reply.headers["X-Teapot"] == "yes"


def test_slow_container_gets_an_empty_202(target: Target) -> None:
    """§2 "Container timeout": none; the caller gets an empty 202 when its window ends."""
    reply = target.invoke({"sleep": 1.5}, [("NVCF-POLL-SECONDS", "1")])
    assert (reply.status, reply.body) == (202, b"")
    assert "NVCF-PERCENT-COMPLETE" not in reply.headers
    assert target.until_done(reply).status == 200


def test_header_over_8_kib_is_relayed(target: Target) -> None:
    """§2 "Gateway limits on the relayed response": a 10 KB header is within ~417 KB."""
    reply = target.invoke({"status": 200, "body": "{}", "header_bytes": 10_000})
    assert reply.status == 200
    assert len(reply.headers["X-Big"]) == 10_000


# -- §3 progress -----------------------------------------------------------------------------------


def test_progress_answers_the_wait_at_once(target: Target) -> None:
    """§3 "Delivery": 202, application/json, NVCF-PERCENT-COMPLETE, body = partialResponse."""
    request = {"progress": [{"percent": 40, "partial": {"step": 1}}], "sleep": 0.8}
    reply = target.invoke(request, [("NVCF-POLL-SECONDS", "30")])
    assert reply.elapsed < 10
    assert reply.status == 202
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["NVCF-PERCENT-COMPLETE"] == "40"
    assert reply.json() == {"step": 1}
    assert target.until_done(reply).status == 200


def test_progress_without_partial_response_is_null(target: Target) -> None:
    """§3 "Delivery": body = the re-serialised partialResponse, ``null`` if absent."""
    reply = target.invoke(
        {"progress": [{"percent": 5}], "sleep": 0.8}, [("NVCF-POLL-SECONDS", "30")]
    )
    assert reply.status == 202
    assert reply.body.strip() == b"null"
    target.until_done(reply)


def test_progress_has_no_range_check(target: Target) -> None:
    """§3 "Validation": there is no 0-100 range check: 150 is delivered."""
    reply = target.invoke(
        {"progress": [{"percent": 150}], "sleep": 0.8}, [("NVCF-POLL-SECONDS", "30")]
    )
    assert reply.headers.get("NVCF-PERCENT-COMPLETE") == "150"
    target.until_done(reply)


def test_progress_has_no_size_limit(target: Target) -> None:
    """§3 "Validation": no size limit: a 300 KB partialResponse is delivered."""
    partial = {"text": "p" * 300_000}
    request = {"progress": [{"percent": 1, "partial": partial}], "sleep": 0.8}
    reply = target.invoke(request, [("NVCF-POLL-SECONDS", "30")])
    assert reply.status == 202
    assert reply.json() == partial
    target.until_done(reply)


@pytest.mark.parametrize("percent", [55.5, -5, "50"])
def test_invalid_progress_is_ignored(target: Target, percent: object) -> None:
    """§3 "Validation": invalid JSON, negative or fractional progress is logged and ignored."""
    request = {"progress": [{"percent": percent}], "sleep": 0.8}
    percents, final = _percents(target, target.invoke(request, [("NVCF-POLL-SECONDS", "1")]))
    assert percents == []
    assert final.status == 200


def test_progress_with_another_id_is_ignored(target: Target) -> None:
    """§3 "Validation": ``id`` must match an in-flight request ID."""
    request = {"progress": [{"percent": 30, "id": "not-a-request"}], "sleep": 0.8}
    percents, final = _percents(target, target.invoke(request, [("NVCF-POLL-SECONDS", "1")]))
    assert (percents, final.status) == ([], 200)


@pytest.mark.local_differs("the local NVCF reads only <output dir>/progress")
def test_progress_in_a_subdirectory_counts(target: Target) -> None:
    """§3 "Watching"/"Which file": any file named ``progress``, in directories created below too."""
    request = {"progress": [{"percent": 20, "dir": "deeper"}], "sleep": 0.8}
    percents, final = _percents(target, target.invoke(request, [("NVCF-POLL-SECONDS", "1")]))
    assert (percents, final.status) == (["20"], 200)


@pytest.mark.local_differs("the local NVCF reads only <output dir>/progress")
def test_progress_directory_does_not_matter(target: Target, token: str) -> None:
    """§3 "Validation": the directory it was written in does not matter, only the id."""
    request = {"progress": [{"percent": 25, "sibling": f"elsewhere-{token}"}], "sleep": 0.8}
    percents, final = _percents(target, target.invoke(request, [("NVCF-POLL-SECONDS", "1")]))
    assert (percents, final.status) == (["25"], 200)


def test_progress_mtime_must_advance(target: Target) -> None:
    """§3 "Validation": the file's mtime must be later than the previous update's."""
    steps = [
        {"percent": 10, "pause": 0.6},
        {"percent": 20, "same_mtime": True, "pause": 0.6},
        {"percent": 30, "pause": 0.6},
    ]
    percents, final = _percents(
        target, target.invoke({"progress": steps}, [("NVCF-POLL-SECONDS", "1")])
    )
    assert final.status == 200
    assert "20" not in percents
    assert percents[-1] == "30"


def test_progress_only_in_compatibility_mode(target: Target) -> None:
    """§3 "Applies only in compatibility mode": with the switch, no 202, the container's answer."""
    request = {"progress": [{"percent": 40}], "sleep": 0.5}
    reply = target.invoke(request, [("NVCF-POLL-SECONDS", "30"), NO_COMPAT])
    assert reply.status == 200
    assert "NVCF-PERCENT-COMPLETE" not in reply.headers


def test_status_headers_on_relayed_answers(target: Target) -> None:
    """§3 "Gateway headers": nvcf-status in-progress (202), fulfilled (200, 302), errored (4xx)."""
    pending = target.invoke({"sleep": 1.5}, [("NVCF-POLL-SECONDS", "1")])
    assert pending.headers["NVCF-STATUS"] == "in-progress"
    done = target.until_done(pending)
    assert done.headers["NVCF-STATUS"] == "fulfilled"
    assert target.invoke({"files": {"a": "a"}}).headers["NVCF-STATUS"] == "fulfilled"
    assert target.invoke({"status": 404}).headers["NVCF-STATUS"] == "errored"
    for reply in (pending, done):
        exposed = reply.headers["Access-Control-Expose-Headers"].lower()
        assert "nvcf-reqid" in exposed
        assert reply.headers["NVCF-REQID"] == pending.request_id


def test_no_status_headers_on_gateway_errors(target: Target) -> None:
    """§3 "Gateway headers": not added to the gateway's own 4xx errors."""
    reply = target.invoke({}, [("NVCF-POLL-SECONDS", "soon")])
    assert reply.status == 400
    assert "NVCF-STATUS" not in reply.headers
