"""Function definitions: the body of ``POST /v2/nvcf/functions`` (``function.json``).

The templates generate this file, ``nvcf-helpers check`` validates it and
``nvcf-helpers local`` runs a function from it. :func:`parse_spec` turns it
into a frozen :class:`FunctionSpec` with NVCF's defaults filled in, or raises a
:class:`~nvcf_helpers.errors.SpecError` listing every problem found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from nvcf_helpers.errors import SpecError
from nvcf_helpers.names import DEFAULT_PORT, RESERVED_PORTS

__all__ = [
    "RESERVED_PORTS",
    "FunctionSpec",
    "HealthCheck",
    "ModelRef",
    "format_duration",
    "load_spec",
    "parse_duration",
    "parse_spec",
]

DEFAULT_HEALTH_URI = "/v2/health/ready"
DEFAULT_HEALTH_TIMEOUT_SECONDS = 10.0

# The keys FunctionSpec has fields for; others are carried through as written.
_MODELLED_KEYS = frozenset(
    {
        "name",
        "inferenceUrl",
        "inferencePort",
        "health",
        "containerImage",
        "models",
        "helmChart",
        "apiBodyFormat",
    }
)

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def format_duration(seconds: float) -> str:
    """An ISO-8601 duration for ``seconds``, as NVCF writes it (``PT10S``)."""
    return f"PT{seconds:g}S"


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``PT10S`` or ``PT1M30S``.

    Raises:
        ValueError: the text is not such a duration.
    """
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as 'PT10S'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("days", 0.0) * 86400
        + parts.get("hours", 0.0) * 3600
        + parts.get("minutes", 0.0) * 60
        + parts.get("seconds", 0.0)
    )


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """How NVCF decides that a function instance is ready to take requests."""

    protocol: Literal["HTTP", "gRPC"] = "HTTP"
    uri: str = DEFAULT_HEALTH_URI
    port: int = DEFAULT_PORT
    timeout_seconds: float = DEFAULT_HEALTH_TIMEOUT_SECONDS
    expected_status_code: int = 200


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One NGC model a model-only function mounts into its model repository."""

    name: str
    version: str
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A parsed, validated function definition with NVCF's defaults applied."""

    name: str
    inference_url: str
    inference_port: int = DEFAULT_PORT
    health: HealthCheck = field(default_factory=HealthCheck)
    container_image: str | None = None
    models: tuple[ModelRef, ...] = ()
    helm_chart: str | None = None
    api_body_format: str = "CUSTOM"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> Literal["container", "model", "helm"]:
        """Which of NVCF's three kinds of function this is."""
        if self.helm_chart is not None:
            return "helm"
        if self.container_image is not None:
            return "container"
        return "model"

    def to_json(self) -> dict[str, Any]:
        """The definition as NVCF's API takes it (``POST /v2/nvcf/functions``).

        Every field this class models is written from the field, with NVCF's
        defaults spelled out; keys it does not model (``description``,
        ``tags``, ``containerArgs``, ...) are kept from the parsed JSON, so
        ``parse_spec(spec.to_json()) == spec``.
        """
        body: dict[str, Any] = {
            "name": self.name,
            "inferenceUrl": self.inference_url,
            "inferencePort": self.inference_port,
        }
        if self.container_image is not None:
            body["containerImage"] = self.container_image
        if self.helm_chart is not None:
            body["helmChart"] = self.helm_chart
        if self.models:
            body["models"] = [
                {"name": m.name, "version": m.version, **({"uri": m.uri} if m.uri else {})}
                for m in self.models
            ]
        body["health"] = {
            "protocol": self.health.protocol,
            "uri": self.health.uri,
            "port": self.health.port,
            "timeout": format_duration(self.health.timeout_seconds),
            "expectedStatusCode": self.health.expected_status_code,
        }
        body["apiBodyFormat"] = self.api_body_format
        body.update({k: v for k, v in self.raw.items() if k not in _MODELLED_KEYS})
        return body

    def render(self) -> str:
        """``function.json``'s text: :meth:`to_json`, indented, with a final newline."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def on_port(self, port: int) -> FunctionSpec:
        """The same function serving inference and health on ``port`` (a local run)."""
        return replace(self, inference_port=port, health=replace(self.health, port=port))

    @property
    def inference_path(self) -> str:
        """``inference_url`` as a path with a leading slash (NVCF accepts both)."""
        return (
            self.inference_url if self.inference_url.startswith("/") else "/" + self.inference_url
        )


def _port(value: object, where: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.append(f"{where} is {value!r}: expected an integer port between 1 and 65535")
        return DEFAULT_PORT
    if value in RESERVED_PORTS:
        reserved = " and ".join(map(str, sorted(RESERVED_PORTS, reverse=True)))
        problems.append(
            f"{where} is {value}: ports {reserved} are reserved by NVCF; serve on {DEFAULT_PORT}"
        )
    return value


def _string(data: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{key} is {value!r}: expected a non-empty string")
        return None
    return value


def _health(data: object, default_port: int, problems: list[str]) -> HealthCheck:
    if data is None:
        return HealthCheck(port=default_port)
    if not isinstance(data, Mapping):
        problems.append(f"health is {data!r}: expected an object such as {{'uri': ...}}")
        return HealthCheck(port=default_port)
    protocol = data.get("protocol", "HTTP")
    if protocol not in ("HTTP", "gRPC"):
        problems.append(f"health.protocol is {protocol!r}: expected 'HTTP' or 'gRPC'")
        protocol = "HTTP"
    uri = data.get("uri", DEFAULT_HEALTH_URI)
    if not isinstance(uri, str) or not uri.startswith("/"):
        problems.append(f"health.uri is {uri!r}: expected a path such as '/v2/health/ready'")
        uri = DEFAULT_HEALTH_URI
    port = _port(data.get("port", default_port), "health.port", problems)
    timeout = DEFAULT_HEALTH_TIMEOUT_SECONDS
    if "timeout" in data:
        try:
            timeout = parse_duration(str(data["timeout"]))
        except ValueError as exc:
            problems.append(f"health.timeout: {exc}")
    expected = data.get("expectedStatusCode", 200)
    if isinstance(expected, bool) or not isinstance(expected, int) or not 100 <= expected <= 599:
        problems.append(f"health.expectedStatusCode is {expected!r}: expected an HTTP status")
        expected = 200
    return HealthCheck(protocol, uri, port, timeout, expected)


def _models(data: object, problems: list[str]) -> tuple[ModelRef, ...]:
    if data is None:
        return ()
    if not isinstance(data, list) or not data:
        problems.append("models must be a non-empty list of {name, version, uri} objects")
        return ()
    refs = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping) or not all(
            isinstance(item.get(key), str) and item.get(key) for key in ("name", "version")
        ):
            problems.append(f"models[{index}] needs a string 'name' and 'version'")
            continue
        uri = item.get("uri")
        refs.append(ModelRef(item["name"], item["version"], uri if isinstance(uri, str) else None))
    return tuple(refs)


def parse_spec(data: object, source: str = "function.json") -> FunctionSpec:
    """Validate a function definition and apply NVCF's defaults.

    Args:
        data: the decoded JSON body of ``POST /v2/nvcf/functions``.
        source: what to call the definition in error messages.

    Raises:
        SpecError: with every problem found, one per line; its ``problems``
            attribute holds them as a list.
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise _spec_error(source, ["the top level must be a JSON object"])
    name = _string(data, "name", problems)
    if name is None and data.get("name") is None:
        problems.append("name is missing: give the function a name")
    inference_url = _string(data, "inferenceUrl", problems)
    if inference_url is None and data.get("inferenceUrl") is None:
        problems.append("inferenceUrl is missing: e.g. '/v2/models/my_model/infer'")
    port = _port(data.get("inferencePort", DEFAULT_PORT), "inferencePort", problems)
    health = _health(data.get("health"), DEFAULT_PORT, problems)
    container_image = _string(data, "containerImage", problems)
    helm_chart = _string(data, "helmChart", problems)
    models = _models(data.get("models"), problems)
    kinds = [k for k, v in (("containerImage", container_image), ("helmChart", helm_chart)) if v]
    if not kinds and not models:
        problems.append("give one of containerImage, models or helmChart: none is set")
    elif len(kinds) > 1:
        problems.append("containerImage and helmChart are exclusive: keep one")
    api_body_format = data.get("apiBodyFormat", "CUSTOM")
    if api_body_format not in ("CUSTOM", "PREDICT_V2"):
        problems.append(f"apiBodyFormat is {api_body_format!r}: expected 'CUSTOM' or 'PREDICT_V2'")
    if problems:
        raise _spec_error(source, problems)
    return FunctionSpec(
        # Both are set: a missing or empty one was reported as a problem above.
        name=cast(str, name),
        inference_url=cast(str, inference_url),
        inference_port=port,
        health=health,
        container_image=container_image,
        models=models,
        helm_chart=helm_chart,
        api_body_format=str(api_body_format),
        raw=dict(data),
    )


def load_spec(path: str | Path) -> FunctionSpec:
    """Read and validate a ``function.json``.

    Raises:
        SpecError: the file is missing, is not JSON, or fails :func:`parse_spec`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _spec_error(str(path), [f"cannot read it ({exc.strerror})"]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _spec_error(str(path), [f"is not valid JSON ({exc})"]) from None
    return parse_spec(data, str(path))


def _spec_error(source: str, problems: list[str]) -> SpecError:
    return SpecError(f"{source}: " + f"\n{source}: ".join(problems), problems)
