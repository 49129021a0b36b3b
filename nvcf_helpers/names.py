"""Every name and limit NVCF and a container agree on, spelled once.

Header names are in the spelling NVCF's documentation uses; receivers must
match them case-insensitively (HTTP/2 lower-cases names). Every other module,
on both sides of the contract, reads them from here.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- Headers NVCF's worker sends to the container with each request ----------
REQUEST_ID = "NVCF-REQID"
SUBJECT = "NVCF-SUB"
NCA_ID = "NVCF-NCAID"
FUNCTION_NAME = "NVCF-FUNCTION-NAME"
FUNCTION_ID = "NVCF-FUNCTION-ID"
FUNCTION_VERSION_ID = "NVCF-FUNCTION-VERSION-ID"
ASSET_DIR = "NVCF-ASSET-DIR"
LARGE_OUTPUT_DIR = "NVCF-LARGE-OUTPUT-DIR"
MAX_RESPONSE_SIZE = "NVCF-MAX-RESPONSE-SIZE-BYTES"
NSPECT_ID = "NVCF-NSPECTID"
BACKEND = "NVCF-BACKEND"
INSTANCE_TYPE = "NVCF-INSTANCETYPE"
REGION = "NVCF-REGION"
ENV = "NVCF-ENV"
FUNCTION_ASSET_IDS = "NVCF-FUNCTION-ASSET-IDS"
#: Seconds left in the caller's poll window (NVCF's worker sends it lower-cased).
POLL_SECONDS = "NVCF-POLL-SECONDS"
#: The gateway's region; NVCF's worker copies it through under this exact spelling.
INVOCATION_REGION = "NVCF-INVOCATION-REGION"
#: ``true`` turns NVCF's worker compatibility mode off (no rewrap, zip or progress).
DISABLE_WORKER_COMPATIBILITY = "nvcf-feature-disable-worker-compatibility"

# -- Headers between a caller and NVCF's API ---------------------------------
#: The caller's asset ids for an invocation, comma-separated.
INPUT_ASSET_REFERENCES = "NVCF-INPUT-ASSET-REFERENCES"
#: A pending invocation's state (``pending-evaluation``, ``in-progress``, ...).
STATUS = "NVCF-STATUS"
#: A pending invocation's progress, from the container's ``progress`` file.
PERCENT_COMPLETE = "NVCF-PERCENT-COMPLETE"
#: The signed metadata header of an asset upload (S3 lower-cases it).
ASSET_DESCRIPTION = "x-amz-meta-nvcf-asset-description"
#: Where the local NVCF says a container broke the documented contract.
LOCAL_WARNING = "NVCF-LOCAL-WARNING"
#: Direct invocation: a request on any path with this header goes to that function.
DIRECT_FUNCTION_ID = "function-id"
#: Direct invocation: the version to invoke, next to :data:`DIRECT_FUNCTION_ID`.
DIRECT_FUNCTION_VERSION_ID = "function-version-id"

#: The header each :class:`~nvcf_helpers.RequestContext` field comes from.
CONTEXT_HEADERS: Mapping[str, str] = {
    "request_id": REQUEST_ID,
    "subject": SUBJECT,
    "nca_id": NCA_ID,
    "function_name": FUNCTION_NAME,
    "function_id": FUNCTION_ID,
    "function_version_id": FUNCTION_VERSION_ID,
    "asset_dir": ASSET_DIR,
    "large_output_dir": LARGE_OUTPUT_DIR,
    "max_response_bytes": MAX_RESPONSE_SIZE,
    "nspect_id": NSPECT_ID,
    "backend": BACKEND,
    "instance_type": INSTANCE_TYPE,
    "region": REGION,
    "env": ENV,
    "asset_ids": FUNCTION_ASSET_IDS,
    "poll_seconds": POLL_SECONDS,
}

#: The function's identity in the container's environment, by context field.
CONTEXT_ENVIRONMENT: Mapping[str, str] = {
    "backend": "NVCF_BACKEND",
    "env": "NVCF_ENV",
    "function_id": "NVCF_FUNCTION_ID",
    "function_name": "NVCF_FUNCTION_NAME",
    "function_version_id": "NVCF_FUNCTION_VERSION_ID",
    "instance_type": "NVCF_INSTANCETYPE",
    "nca_id": "NVCF_NCA_ID",
    "region": "NVCF_REGION",
}
#: NVCF reserves every environment variable with this prefix.
RESERVED_ENV_PREFIX = "NVCF_"

# -- Triton -------------------------------------------------------------------
#: The ``--http-header-forward-pattern`` that passes every NVCF header to a model.
HEADER_FORWARD_PATTERN = "NVCF-.*"

# -- Ports --------------------------------------------------------------------
#: NVCF's default ``inferencePort`` and health port.
DEFAULT_PORT = 8000
#: Ports NVCF's own services use inside the pod: a container must not.
RESERVED_PORTS = frozenset({8080, 8010})

# -- Files in the per-request directories ---------------------------------------
#: The progress file in ``NVCF-LARGE-OUTPUT-DIR``.
PROGRESS_FILE = "progress"
#: What a large output is called while it is being written.
PARTIAL_SUFFIX = ".partial"
#: The suffix of the zip member holding the inline response: ``<reqid>.response``.
RESPONSE_MEMBER_SUFFIX = ".response"

# -- Limits -------------------------------------------------------------------
#: The largest body NVCF's worker passes back inline: 5 MiB, the value NVCF always sends.
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024
#: A partial response must serialise to fewer bytes than this (NVCF: "under 250 KB").
MAX_PARTIAL_RESPONSE_BYTES = 250 * 1000
#: The largest invocation body NVCF's API accepts (larger inputs go as assets).
MAX_REQUEST_BODY_BYTES = 5_000_000
#: How long one invocation or poll call waits for a result by default.
DEFAULT_POLL_SECONDS = 60
#: The default poll window of a request sent with ``Accept: text/event-stream``.
DEFAULT_STREAM_POLL_SECONDS = 1200
#: Poll windows below this count as this (NVCF's gateway raises 0 to 1).
MIN_POLL_SECONDS = 1
#: The longest poll window NVCF's gateway accepts; above it answers 400.
MAX_POLL_SECONDS = 3600
#: NVCF's gateway waits this long past the poll window for the worker's answer, then 504.
POLL_GRACE_SECONDS = 2
#: Requests a function's queue holds before NVCF answers 429 (its ``max_messages``).
DEFAULT_QUEUE_SIZE = 100_000
#: How long NVCF remembers a request id after its last 202 (its mapping's max age).
REQUEST_MAPPING_MAX_AGE_SECONDS = 3600


def response_member(request_id: str) -> str:
    """The name of the inline response inside a result zip."""
    return f"{request_id}{RESPONSE_MEMBER_SUFFIX}"
