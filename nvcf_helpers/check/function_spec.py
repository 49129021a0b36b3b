"""Checks of a function definition (``function.json``).

:func:`nvcf_helpers.spec.parse_spec` validates each field; this module adds
the checks that need more than one field, or more than the file: the
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

from nvcf_helpers.check.finding import Finding, line_of
from nvcf_helpers.errors import SpecError
from nvcf_helpers.spec import FunctionSpec, parse_spec

__all__ = ["TRITON_URL", "check_function_spec", "json_line"]

#: A Triton inference path; group 1 is the model name.
TRITON_URL = re.compile(
    r"^/?v2/models/([^/]+)(?:/versions/[^/]+)?/(?:infer|generate|generate_stream)$"
)

_SERVER_HEALTH = ("/v2/health/ready", "/v2/health/live")


def json_line(text: str, dotted: str) -> int:
    """The line of a (possibly nested, ``a.b``) key in a JSON text; 1 when absent."""
    line = 1
    for part in dotted.split("."):
        key = part.split("[")[0]
        line = line_of(text, f'"{key}"', line)
    return line


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
    try:
        spec = parse_spec(data, str(path))
    except SpecError as exc:
        findings = []
        for problem in exc.problems:
            what, how = _split_problem(problem)
            findings.append(Finding(path, _problem_line(text, problem), what, how))
        return None, sorted(findings)
    return spec, sorted(
        _cross_checks(path, text, spec, data, known_models=known_models, served_ports=served_ports)
    )


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
    findings = _port_agreement(path, text, spec, data)
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
