"""The container templates' ``protocol`` variable: an HTTP or a gRPC function.

A gRPC function is one whose ``inferenceUrl`` is ``/grpc``: NVCF relays its
callers' gRPC calls to ``inferencePort`` as they are, adds no ``NVCF-*``
metadata, and checks its health with the standard ``grpc.health.v1``
service (facts section 7). Its templates serve Triton's gRPC port.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nvcf_helpers.check.function_spec import GRPC_URL
from nvcf_helpers.names import DEFAULT_PORT, HEADER_FORWARD_PATTERN
from nvcf_helpers.scaffold.tensors import TemplateInputError
from nvcf_helpers.triton.command import TritonCommand

__all__ = [
    "GRPC",
    "HTTP",
    "PROTOCOLS",
    "TRITON_GRPC_PORT",
    "check_protocol",
    "health",
    "inference_port",
    "inference_url",
    "protocol_of",
    "triton_image_commands",
]

HTTP = "http"
GRPC = "grpc"
PROTOCOLS = (HTTP, GRPC)
#: The port the gRPC variants serve on: tritonserver's (and so PyTriton's) default gRPC port.
TRITON_GRPC_PORT = 8001


def protocol_of(context: Mapping[str, Any]) -> str:
    """The template's protocol (``http`` when the template has no such variable)."""
    return str(context.get("protocol", HTTP)).strip()


def check_protocol(context: Mapping[str, Any]) -> None:
    """Refuse an unknown protocol, and a long-running gRPC function.

    Raises:
        TemplateInputError: saying what to use instead.
    """
    protocol = protocol_of(context)
    if protocol not in PROTOCOLS:
        raise TemplateInputError(
            f"protocol {protocol!r} is not valid: use http (KServe v2 over HTTP, NVCF's "
            "default) or grpc (a gRPC function: inferenceUrl /grpc, called with tritonclient.grpc)"
        )
    if protocol == GRPC and str(context.get("long_running", "no")).strip() == "yes":
        raise TemplateInputError(
            "long_running 'yes' with protocol 'grpc' is not valid: NVCF relays gRPC calls "
            "without NVCF-* metadata, so a gRPC function gets no output directory for "
            "progress or large outputs; use long_running no, or protocol http"
        )


def inference_port(protocol: str) -> int:
    """The port NVCF sends requests to and probes health on."""
    return TRITON_GRPC_PORT if protocol == GRPC else DEFAULT_PORT


def inference_url(protocol: str, model: str) -> str:
    """``function.json``'s ``inferenceUrl`` for a Triton model."""
    return GRPC_URL if protocol == GRPC else f"/v2/models/{model}/infer"


def health(protocol: str, model: str) -> dict[str, Any]:
    """``function.json``'s health block: the model's readiness, or gRPC's health service."""
    if protocol == GRPC:
        check = {"protocol": "gRPC", "uri": "/"}  # grpc.health.v1: the URI is not used
    else:
        check = {"protocol": "HTTP", "uri": f"/v2/models/{model}/ready"}
    return {
        **check,
        "port": inference_port(protocol),
        "timeout": "PT10S",
        "expectedStatusCode": 200,
    }


def triton_image_commands() -> dict[str, str]:
    """The Triton image's exec-form CMD for each protocol.

    The gRPC image names its gRPC port and forwards ``nvcf-*`` metadata too
    (lower case: gRPC metadata keys are, and Triton matches them as written);
    the HTTP header forwarding stays, as ``check`` requires.
    """
    image = TritonCommand.for_image()
    grpc = image.replace(
        grpc_port=TRITON_GRPC_PORT, grpc_forward_pattern=HEADER_FORWARD_PATTERN.lower()
    )
    return {HTTP: image.exec_form(), GRPC: grpc.exec_form()}
