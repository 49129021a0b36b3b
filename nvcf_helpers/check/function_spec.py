"""Checks of a function definition (``function.json``).

:func:`nvcf_helpers.spec.parse_spec` applies NVCF's own rules (and
:func:`~nvcf_helpers.spec.parse_deployment` those of a top-level
``deploymentSpecifications``, when the file holds one); each problem is a
finding. This module adds the checks that need more than NVCF looks at: the
inference and health ports agree, ``inferenceUrl`` names a model that exists,
a container function's health check waits for that model (Triton's
server-level ``/v2/health/ready`` answers before the model is loaded), and
the Dockerfile beside it serves on ``inferencePort``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from nvcf_helpers.check.finding import Finding
from nvcf_helpers.errors import SpecError
from nvcf_helpers.spec import FunctionSpec, parse_deployment, parse_spec

__all__ = ["TRITON_URL", "check_function_spec", "json_line"]

#: A Triton inference path; group 1 is the model name.
TRITON_URL = re.compile(
    r"^/?v2/models/([^/]+)(?:/versions/[^/]+)?/(?:infer|generate|generate_stream)$"
)

_SERVER_HEALTH = ("/v2/health/ready", "/v2/health/live")
#: The ``inferenceUrl`` that makes a gRPC function, matched as NVCF matches it: exactly.
GRPC_URL = "/grpc"


def json_line(text: str, dotted: str) -> int:
    """The line of a key or item (``a.b``, ``a[2].b``) in a JSON text.

    A path that is not there gives the line of its longest part that is
    (``a[2]`` for a missing ``a[2].b``), and 1 when no part is.
    """
    paths = _json_paths(text)
    parts = re.findall(r"[^.\[]+|\[\d+\]", dotted)
    for end in range(len(parts), 0, -1):
        path = ".".join(parts[:end]).replace(".[", "[")
        if path in paths:
            return paths[path]
    return 1


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def _json_paths(text: str) -> dict[str, int]:
    """Each key's and item's path (``a.b``, ``a[2]``) in a JSON text, with its first line."""
    paths: dict[str, int] = {}
    # One frame per open container: its path, and the key (object) or index (array) it is at.
    frames: list[tuple[str, list[Any]]] = []
    line, position = 1, 0
    for token in _JSON_TOKEN.finditer(text):
        line += text.count("\n", position, token.start())
        position = token.start()
        value = token.group()
        frame = frames[-1] if frames else None
        if value in ("}", "]"):
            if frames:
                frames.pop()
        elif value == ",":
            if frame is not None and isinstance(frame[1][0], int):
                frame[1][0] += 1
        elif value == ":":
            continue
        elif frame is not None and frame[1][0] is None:  # an object's key
            frame[1][0] = _key(value)
            paths.setdefault(_child(frame), line)
        else:  # a value
            path = _child(frame) if frame is not None else ""
            if frame is not None and isinstance(frame[1][0], int):
                paths.setdefault(path, line)
            elif frame is not None:
                frame[1][0] = None  # the next string in this object is a key
            if value == "{":
                frames.append((path, [None]))
            elif value == "[":
                frames.append((path, [0]))
    return paths


def _key(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:  # not a JSON string: the text is malformed; keep what is there
        return token.strip('"')


def _child(frame: tuple[str, list[Any]]) -> str:
    path, (at,) = frame
    if isinstance(at, int):
        return f"{path}[{at}]"
    return f"{path}.{at}" if path else str(at)


def _problem_line(text: str, problem: str) -> int:
    match = re.match(r"([A-Za-z_.\[\]0-9]+)", problem)
    return json_line(text, match.group(1)) if match else 1


def _split_problem(problem: str) -> tuple[str, str]:
    """Split parse_spec's 'what: how' sentences at the last colon, when there is one."""
    what, sep, how = problem.rpartition(": ")
    if sep and what and how and not how.startswith("'"):
        return what, how
    return problem, "see the function definition reference in NVCF's documentation"


def check_function_spec(
    path: Path,
    *,
    known_models: Collection[str] | None = None,
    served_ports: Collection[int] | None = None,
) -> tuple[FunctionSpec | None, list[Finding]]:
    """Check one ``function.json``.

    Args:
        path: the file.
        known_models: model names found beside it (a model repository, a
            PyTriton script); None when nothing was found to compare with.
        served_ports: the ports the container beside it serves HTTP on; None
            when unknown.

    Returns:
        The parsed definition (None when it is invalid) and the problems found.
    """
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Finding(path, 1, f"cannot read it ({exc})", "make it a readable UTF-8 file")]
    except ValueError as exc:
        line = getattr(exc, "lineno", 1)
        return None, [
            Finding(path, line, f"it is not valid JSON ({exc})", "correct the JSON syntax")
        ]
    findings = _deployment_findings(path, text, data)
    try:
        spec = parse_spec(data, str(path))
    except SpecError as exc:
        return None, sorted(findings + _findings(path, text, exc))
    return spec, sorted(
        findings
        + _cross_checks(
            path, text, spec, data, known_models=known_models, served_ports=served_ports
        )
    )


def _findings(path: Path, text: str, error: SpecError) -> list[Finding]:
    """One finding per problem of a SpecError, on the line of the key it names."""
    findings = []
    for problem in error.problems:
        what, how = _split_problem(problem)
        findings.append(Finding(path, _problem_line(text, problem), what, how))
    return findings


def _deployment_findings(path: Path, text: str, data: Any) -> list[Finding]:
    """The problems of a top-level ``deploymentSpecifications``, when the file has one."""
    if not isinstance(data, dict) or "deploymentSpecifications" not in data:
        return []
    try:
        parse_deployment({"deploymentSpecifications": data["deploymentSpecifications"]})
    except SpecError as exc:
        return _findings(path, text, exc)
    return []


def _cross_checks(
    path: Path,
    text: str,
    spec: FunctionSpec,
    data: Any,
    *,
    known_models: Collection[str] | None,
    served_ports: Collection[int] | None,
) -> list[Finding]:
    """How the definition fits itself and the project beside it."""
    findings = _port_agreement(path, text, spec, data) + _grpc_findings(path, text, spec)
    match = TRITON_URL.match(spec.inference_url)
    if match is None:
        return findings
    model = match.group(1)
    url_line = json_line(text, "inferenceUrl")
    findings += _model_named(path, url_line, spec, model, known_models)
    if spec.kind == "container" and spec.health.protocol == "HTTP":
        health_line = json_line(text, "health.uri") if "health" in data else url_line
        findings += _model_health(path, health_line, spec.health.uri, model)
    if served_ports and spec.inference_port not in served_ports:
        findings.append(
            Finding(
                path,
                json_line(text, "inferencePort"),
                f"inferencePort is {spec.inference_port} but the Dockerfile serves on "
                f"{', '.join(str(p) for p in sorted(served_ports))}",
                "make inferencePort and the server's HTTP port (and EXPOSE) the same",
            )
        )
    return findings


def _grpc_findings(path: Path, text: str, spec: FunctionSpec) -> list[Finding]:
    """A gRPC function is marked ``/grpc`` exactly, and its health check speaks gRPC."""
    marker = spec.inference_path
    if marker.lower() == GRPC_URL and marker != GRPC_URL:
        return [
            Finding(
                path,
                json_line(text, "inferenceUrl"),
                f"inferenceUrl is {spec.inference_url!r}: NVCF recognises a gRPC function only "
                f"by {GRPC_URL!r} in lower case, and would send this one HTTP requests",
                f"write inferenceUrl {GRPC_URL!r}",
            )
        ]
    if marker == GRPC_URL and spec.health.protocol != "gRPC":
        return [
            Finding(
                path,
                json_line(text, "health.protocol"),
                f"a gRPC function (inferenceUrl {GRPC_URL!r}) with an {spec.health.protocol} "
                "health check: NVCF would send HTTP to a gRPC server, which never answers "
                "healthy",
                "set health.protocol to 'gRPC' (the standard grpc.health.v1 service; "
                "tritonserver serves it)",
            )
        ]
    return []


def _port_agreement(path: Path, text: str, spec: FunctionSpec, data: Any) -> list[Finding]:
    """Health is probed on the port that serves inference."""
    explicit_ports = "inferencePort" in data or (
        isinstance(data.get("health"), dict) and "port" in data["health"]
    )
    ports_matter = spec.kind != "model" or explicit_ports
    if not ports_matter or spec.health.port == spec.inference_port:
        return []
    line = json_line(text, "health.port" if "health" in data else "inferencePort")
    return [
        Finding(
            path,
            line,
            f"health.port is {spec.health.port} but inferencePort is "
            f"{spec.inference_port}; NVCF probes health on one port and sends requests "
            "to the other",
            f"set both to {spec.inference_port} (one port serves inference and health)",
        )
    ]


def _model_named(
    path: Path, line: int, spec: FunctionSpec, model: str, known_models: Collection[str] | None
) -> list[Finding]:
    """The model inferenceUrl calls is one the project (or ``models``) has."""
    if known_models:
        if model in known_models:
            return []
        return [
            Finding(
                path,
                line,
                f"inferenceUrl names model {model!r}, but the project serves "
                f"{', '.join(sorted(known_models))}",
                f"use /v2/models/{sorted(known_models)[0]}/infer or rename the model",
            )
        ]
    if spec.kind != "model" or model in {ref.name for ref in spec.models}:
        return []
    names = ", ".join(ref.name for ref in spec.models) or "none"
    return [
        Finding(
            path,
            line,
            f"inferenceUrl names model {model!r}, which is not in models ({names})",
            "list the model in models or correct the name in inferenceUrl",
        )
    ]


def _model_health(path: Path, line: int, uri: str, model: str) -> list[Finding]:
    """A container's health check waits for the model inferenceUrl calls."""
    ready = f"/v2/models/{model}/ready"
    if uri in _SERVER_HEALTH:
        return [
            Finding(
                path,
                line,
                f"health.uri {uri} answers 200 before model {model!r} is loaded, so NVCF "
                "sends requests that fail",
                f'use the model\'s own ready endpoint: "uri": "{ready}"',
            )
        ]
    if uri.startswith("/v2/models/") and not re.match(
        rf"^/v2/models/{re.escape(model)}(/versions/[^/]+)?/ready$", uri
    ):
        return [
            Finding(
                path,
                line,
                f"health.uri {uri} does not check model {model!r}, the one inferenceUrl calls",
                f'use "uri": "{ready}"',
            )
        ]
    return []
