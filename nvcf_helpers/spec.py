"""Function definitions and deployment specifications, as NVCF's API takes them.

``function.json`` is the body of ``POST /v2/nvcf/functions``: templates
generate it, ``nvcf-helpers check`` validates it and ``nvcf-helpers local``
runs a function from it. :func:`parse_spec` turns it into a frozen
:class:`FunctionSpec` with NVCF's defaults filled in; :func:`parse_deployment`
does the same for the body of a deployment request. Both apply the rules of
NVCF's function API and raise a :class:`~nvcf_helpers.errors.SpecError`
listing every problem found.
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
    "DeploymentSpec",
    "EnvironmentEntry",
    "FunctionSpec",
    "HealthCheck",
    "ModelRef",
    "Secret",
    "format_duration",
    "load_spec",
    "parse_deployment",
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
        "containerArgs",
        "containerEnvironment",
        "models",
        "helmChart",
        "helmChartServiceName",
        "apiBodyFormat",
        "functionType",
        "description",
        "tags",
        "secrets",
    }
)

# NVCF's limits on a function definition (its CreateFunctionRequest, SecretDto, NvcfConstants).
_NAME = re.compile(r"^[a-z0-9A-Z][a-z0-9A-Z\-_]*$")
_NAME_MAX = 128
_TAG = re.compile(r"[a-zA-Z0-9\-_:=]+")
_TAGS_MAX = 64
_TAG_MAX = 128
_DESCRIPTION_MAX = 256
_SECRET_NAME = re.compile(r"^[a-z0-9A-Z][a-z0-9A-Z\_\.\-]*$")
_SECRET_NAME_MAX = 48
_SECRET_VALUE_MAX = 32768
_API_BODY_FORMATS = ("CUSTOM", "PREDICT_V2")
_FUNCTION_TYPES = ("DEFAULT", "STREAMING", "LLM")
_JSON_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (list, "an array"),
    (Mapping, "an object"),
)
# A given health object needs every field; the example shows what each holds.
_HEALTH_FIELDS = {
    "protocol": "'HTTP'",
    "uri": "'/v2/health/ready'",
    "port": str(DEFAULT_PORT),
    "timeout": "'PT10S'",
    "expectedStatusCode": "200",
}

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
class Secret:
    """One function secret; its ``repr`` never shows the value."""

    name: str
    #: A string or a JSON object, as NVCF mounts it in ``/var/secrets/secrets.json``.
    value: Any = field(repr=False, hash=False)


@dataclass(frozen=True, slots=True)
class EnvironmentEntry:
    """One ``containerEnvironment`` variable."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A parsed, validated function definition with NVCF's defaults applied."""

    name: str
    inference_url: str
    inference_port: int = DEFAULT_PORT
    health: HealthCheck = field(default_factory=HealthCheck)
    container_image: str | None = None
    container_args: str | None = None
    container_environment: tuple[EnvironmentEntry, ...] = ()
    models: tuple[ModelRef, ...] = ()
    helm_chart: str | None = None
    helm_chart_service_name: str | None = None
    api_body_format: str = "CUSTOM"
    function_type: str = "DEFAULT"
    description: str | None = None
    tags: tuple[str, ...] = ()
    secrets: tuple[Secret, ...] = ()
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

        ``inferencePort``, ``health`` and ``apiBodyFormat`` are written with
        NVCF's defaults spelled out; the other modelled keys only when set (or
        given, even empty, in the parsed JSON); keys this class does not model
        are kept from the parsed JSON, so ``parse_spec(spec.to_json()) == spec``.
        """
        body: dict[str, Any] = {
            "name": self.name,
            "inferenceUrl": self.inference_url,
            "inferencePort": self.inference_port,
        }
        environment = [{"key": e.key, "value": e.value} for e in self.container_environment]
        models = [
            {"name": m.name, "version": m.version, **({"uri": m.uri} if m.uri else {})}
            for m in self.models
        ]
        body.update(
            _set_only(
                containerImage=self.container_image,
                containerArgs=self.container_args,
                containerEnvironment=self._given("containerEnvironment", environment, []),
                helmChart=self.helm_chart,
                helmChartServiceName=self.helm_chart_service_name,
                models=models or None,
            )
        )
        body["health"] = {
            "protocol": self.health.protocol,
            "uri": self.health.uri,
            "port": self.health.port,
            "timeout": format_duration(self.health.timeout_seconds),
            "expectedStatusCode": self.health.expected_status_code,
        }
        body["apiBodyFormat"] = self.api_body_format
        secrets = [{"name": s.name, "value": s.value} for s in self.secrets]
        body.update(
            _set_only(
                functionType=self._given("functionType", self.function_type, "DEFAULT"),
                description=self.description,
                tags=self._given("tags", list(self.tags), []),
                secrets=self._given("secrets", secrets, []),
            )
        )
        body.update({k: v for k, v in self.raw.items() if k not in _MODELLED_KEYS})
        return body

    def _given(self, key: str, value: Any, default: Any) -> Any:
        """``value``, or None when it is the default and the parsed JSON left ``key`` out."""
        return value if value != default or key in self.raw else None

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


def _set_only(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _kind(value: object) -> str:
    """What JSON type a value has, without showing it (for values that may be secret)."""
    for types, kind in _JSON_KINDS:
        if isinstance(value, types):
            return kind
    return "null" if value is None else f"a {type(value).__name__}"


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


def _name(data: Mapping[str, Any], problems: list[str]) -> str | None:
    name = _string(data, "name", problems)
    if name is None:
        if data.get("name") is None:
            problems.append("name is missing: give the function a name")
        return None
    if len(name) > _NAME_MAX:
        problems.append(
            f"name is {len(name)} characters long: NVCF allows at most {_NAME_MAX}; shorten it"
        )
    if not _NAME.fullmatch(name):
        problems.append(
            f"name {name!r} does not match {_NAME.pattern}: use letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


def _health(data: object, default_port: int, problems: list[str]) -> HealthCheck:
    if data is None:
        return HealthCheck(port=default_port)
    if not isinstance(data, Mapping):
        problems.append(f"health is {data!r}: expected an object such as {{'uri': ...}}")
        return HealthCheck(port=default_port)
    for key, example in _HEALTH_FIELDS.items():
        if data.get(key) is None:
            problems.append(
                f"health.{key} is missing: NVCF needs all five health fields once health is "
                f"given; add {key} (e.g. {example}) or leave health out to take the defaults"
            )
    given = {key: value for key, value in data.items() if value is not None}
    protocol = given.get("protocol", "HTTP")
    if protocol not in ("HTTP", "gRPC"):
        problems.append(f"health.protocol is {protocol!r}: expected 'HTTP' or 'gRPC'")
        protocol = "HTTP"
    uri = given.get("uri", DEFAULT_HEALTH_URI)
    if not isinstance(uri, str) or not uri.startswith("/"):
        problems.append(f"health.uri is {uri!r}: expected a path such as '/v2/health/ready'")
        uri = DEFAULT_HEALTH_URI
    port = _port(given.get("port", default_port), "health.port", problems)
    timeout = DEFAULT_HEALTH_TIMEOUT_SECONDS
    if "timeout" in given:
        try:
            timeout = parse_duration(str(given["timeout"]))
        except ValueError as exc:
            problems.append(f"health.timeout: {exc}")
    expected = given.get("expectedStatusCode", 200)
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


def _kind_rules(data: Mapping[str, Any], problems: list[str]) -> None:
    """What makes a container, model or helm function, and what a helm function may not have."""
    present = {key for key, value in data.items() if value is not None}
    if not present & {"containerImage", "models", "helmChart"}:
        problems.append(
            "none of containerImage, models or helmChart is set: give a container image, "
            "NGC models or a helm chart"
        )
    if "helmChart" in present:
        for key in ("containerImage", "containerArgs", "containerEnvironment"):
            if key in present:
                problems.append(
                    f"helmChart cannot be combined with {key}: a helm function's containers "
                    f"and their settings come from its chart; remove {key} or helmChart"
                )
        if "helmChartServiceName" not in present:
            problems.append(
                "helmChart is set but helmChartServiceName is missing: name the chart's "
                "Service that serves inferencePort in helmChartServiceName"
            )
    elif "helmChartServiceName" in present:
        problems.append(
            "helmChartServiceName is set but helmChart is missing: give the chart's URL in "
            "helmChart or remove helmChartServiceName"
        )


def _choice(
    data: Mapping[str, Any], key: str, allowed: tuple[str, ...], problems: list[str]
) -> str:
    """One of ``allowed`` (the first is NVCF's default, taken when ``key`` is absent)."""
    value = data.get(key)
    if value is None:
        return allowed[0]
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(choice) for choice in allowed[:-1]) + f" or {allowed[-1]!r}"
        problems.append(f"{key} is {value!r}: use {choices}")
        return allowed[0]
    return value


def _description(data: Mapping[str, Any], problems: list[str]) -> str | None:
    value = data.get("description")
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(
            f"description is {value!r}: use a string of at most {_DESCRIPTION_MAX} characters"
        )
        return None
    if len(value) > _DESCRIPTION_MAX:
        problems.append(
            f"description is {len(value)} characters long: NVCF allows at most "
            f"{_DESCRIPTION_MAX}; shorten it"
        )
    return value


def _tags(data: Mapping[str, Any], problems: list[str]) -> tuple[str, ...]:
    value = data.get("tags")
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"tags is {value!r}: use a list of strings such as ['vision', 'team=ml']")
        return ()
    if len(value) > _TAGS_MAX:
        problems.append(
            f"tags has {len(value)} entries: NVCF allows at most {_TAGS_MAX}; "
            f"remove {len(value) - _TAGS_MAX}"
        )
    for index, tag in enumerate(value):
        where = f"tags[{index}]"
        if not isinstance(tag, str):
            problems.append(f"{where} is {tag!r}: use a string such as 'team=ml'")
            continue
        if len(tag) > _TAG_MAX:
            problems.append(
                f"{where} is {len(tag)} characters long: NVCF allows at most {_TAG_MAX}; shorten it"
            )
        if not _TAG.fullmatch(tag):
            problems.append(
                f"{where} {tag!r} does not match {_TAG.pattern}: use only letters, digits, "
                "'-', '_', ':' and '='"
            )
    return tuple(tag for tag in value if isinstance(tag, str))


def _secret_name(name: object, where: str, problems: list[str]) -> str | None:
    if name is None:
        problems.append(f"{where}.name is missing: give each secret a name such as 'API_KEY'")
        return None
    if not isinstance(name, str):
        problems.append(f"{where}.name is {name!r}: use a string such as 'API_KEY'")
        return None
    if not 1 <= len(name) <= _SECRET_NAME_MAX:
        problems.append(
            f"{where}.name is {len(name)} characters long: use 1 to {_SECRET_NAME_MAX} characters"
        )
    if name and not _SECRET_NAME.fullmatch(name):
        problems.append(
            f"{where}.name {name!r} does not match {_SECRET_NAME.pattern}: use letters, "
            "digits, '_', '.' and '-', starting with a letter or digit"
        )
    return name


def _secret_value(value: object, where: str, problems: list[str]) -> None:
    """Checks a secret's value; messages give its length and type, never its text."""
    if value is None:
        problems.append(f"{where}.value is missing: give the secret's value")
        return
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping):
        # NVCF also takes a JSON object; its length is that of its JSON text.
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        problems.append(f"{where}.value is {_kind(value)}: use a string or a JSON object")
        return
    length = len(text.strip())
    if length == 0:
        problems.append(f"{where}.value is blank: give the secret a non-blank value")
    elif length > _SECRET_VALUE_MAX:
        problems.append(
            f"{where}.value is {length} characters long after trimming: NVCF allows at most "
            f"{_SECRET_VALUE_MAX}; shorten it or deliver the data as an asset"
        )


def _secrets(data: Mapping[str, Any], problems: list[str]) -> tuple[Secret, ...]:
    value = data.get("secrets")
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"secrets is {_kind(value)}: use a list of {{name, value}} objects")
        return ()
    found: list[Secret] = []
    first: dict[str, int] = {}
    for index, item in enumerate(value):
        where = f"secrets[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} is {_kind(item)}: use an object with a name and a value")
            continue
        name = _secret_name(item.get("name"), where, problems)
        _secret_value(item.get("value"), where, problems)
        if name is None:
            continue
        if name in first:
            problems.append(
                f"{where}.name {name!r} repeats secrets[{first[name]}].name: give each secret "
                "a distinct name"
            )
        first.setdefault(name, index)
        found.append(Secret(name, item.get("value")))
    return tuple(found)


def _environment(data: Mapping[str, Any], problems: list[str]) -> tuple[EnvironmentEntry, ...]:
    value = data.get("containerEnvironment")
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(
            f"containerEnvironment is {_kind(value)}: use a list of {{key, value}} objects"
        )
        return ()
    entries = []
    for index, item in enumerate(value):
        where = f"containerEnvironment[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} is {_kind(item)}: use an object with a key and a value")
            continue
        key, text = item.get("key"), item.get("value")
        if key is None:
            problems.append(f"{where}.key is missing: give the variable's name")
        elif not isinstance(key, str) or not key.strip():
            problems.append(f"{where}.key is {key!r}: use the variable's name as a string")
        if text is None:
            problems.append(f"{where}.value is missing: give the variable's value as a string")
        elif not isinstance(text, str):
            problems.append(f"{where}.value is {_kind(text)}: write the value as a string")
        if isinstance(key, str) and key.strip() and isinstance(text, str):
            entries.append(EnvironmentEntry(key, text))
    return tuple(entries)


def _container_args(data: Mapping[str, Any], problems: list[str]) -> str | None:
    value = data.get("containerArgs")
    if value is not None and not isinstance(value, str):
        problems.append(
            f"containerArgs is {value!r}: write the arguments as one string, e.g. '--port 8000'"
        )
        return None
    return value


def parse_spec(data: object, source: str = "function.json") -> FunctionSpec:
    """Validate a function definition as NVCF's API does, and apply NVCF's defaults.

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
    name = _name(data, problems)
    inference_url = _string(data, "inferenceUrl", problems)
    if inference_url is None and data.get("inferenceUrl") is None:
        problems.append("inferenceUrl is missing: e.g. '/v2/models/my_model/infer'")
    port = _port(data.get("inferencePort", DEFAULT_PORT), "inferencePort", problems)
    health = _health(data.get("health"), DEFAULT_PORT, problems)
    container_image = _string(data, "containerImage", problems)
    helm_chart = _string(data, "helmChart", problems)
    helm_chart_service_name = _string(data, "helmChartServiceName", problems)
    models = _models(data.get("models"), problems)
    _kind_rules(data, problems)
    api_body_format = _choice(data, "apiBodyFormat", _API_BODY_FORMATS, problems)
    function_type = _choice(data, "functionType", _FUNCTION_TYPES, problems)
    if function_type == "LLM" and data.get("models") is None:
        problems.append(
            "functionType is 'LLM' but models is not set: list the function's models in "
            "models, or use functionType 'DEFAULT' or 'STREAMING'"
        )
    description = _description(data, problems)
    tags = _tags(data, problems)
    secrets = _secrets(data, problems)
    environment = _environment(data, problems)
    container_args = _container_args(data, problems)
    if problems:
        raise _spec_error(source, problems)
    return FunctionSpec(
        # Both are set: a missing or empty one was reported as a problem above.
        name=cast(str, name),
        inference_url=cast(str, inference_url),
        inference_port=port,
        health=health,
        container_image=container_image,
        container_args=container_args,
        container_environment=environment,
        models=models,
        helm_chart=helm_chart,
        helm_chart_service_name=helm_chart_service_name,
        api_body_format=api_body_format,
        function_type=function_type,
        description=description,
        tags=tags,
        secrets=secrets,
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


# The keys DeploymentSpec has fields for; others are carried through as written.
_DEPLOYMENT_KEYS = frozenset(
    {
        "gpu",
        "instanceType",
        "backend",
        "minInstances",
        "maxInstances",
        "maxRequestConcurrency",
        "configuration",
    }
)
_MAX_CONCURRENCY = 16384
_MIN_MAX_MESSAGE = "Invalid request: 'minInstances' must be lesser than or equal to 'maxInstances'"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpec:
    """One entry of a deployment request's ``deploymentSpecifications``, validated.

    Attributes:
        gpu: the GPU to run on (``L40``).
        instance_type: one of that GPU's instance types.
        backend: the cluster group (``GFN``, ``OCI``, ...); None when not given.
        min_instances: instances kept running (0 lets the function scale to zero).
        max_instances: the most instances NVCF starts.
        max_request_concurrency: requests one instance serves at once.
        configuration: a helm function's values overrides, kept as given.
        raw: the entry as parsed; keys not modelled here are kept from it.
    """

    gpu: str
    instance_type: str
    backend: str | None = None
    min_instances: int
    max_instances: int
    max_request_concurrency: int = 1
    configuration: Any = field(default=None, hash=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as NVCF's API takes it, camelCase, unmodelled keys kept."""
        body: dict[str, Any] = {"gpu": self.gpu, "instanceType": self.instance_type}
        if self.backend is not None:
            body["backend"] = self.backend
        body["minInstances"] = self.min_instances
        body["maxInstances"] = self.max_instances
        body["maxRequestConcurrency"] = self.max_request_concurrency
        if self.configuration is not None:
            body["configuration"] = self.configuration
        body.update({k: v for k, v in self.raw.items() if k not in _DEPLOYMENT_KEYS})
        return body


def _required_text(
    item: Mapping[str, Any], key: str, where: str, fix: str, problems: list[str]
) -> str | None:
    value = item.get(key)
    if value is None:
        problems.append(f"{where}.{key} is missing: {fix}")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}.{key} is {value!r}: {fix}")
        return None
    return value


def _count(
    item: Mapping[str, Any],
    key: str,
    where: str,
    problems: list[str],
    *,
    low: int,
    high: int | None = None,
    default: int | None = None,
) -> int | None:
    """An integer from ``low`` to ``high``; booleans and floats are refused."""
    value = item.get(key)
    wanted = f"from {low} to {high}" if high else f"of {low} or more"
    if value is None:
        if default is None:
            problems.append(f"{where}.{key} is missing: give an integer {wanted}")
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        problems.append(f"{where}.{key} is {value!r}: use an integer {wanted}")
        return None
    return value


def _deployment(item: object, where: str, problems: list[str]) -> DeploymentSpec | None:
    if not isinstance(item, Mapping):
        problems.append(
            f"{where} is {_kind(item)}: use an object with gpu, instanceType, minInstances "
            "and maxInstances"
        )
        return None
    gpu = _required_text(item, "gpu", where, "name the GPU to run on, e.g. 'L40'", problems)
    instance_type = _required_text(
        item,
        "instanceType",
        where,
        "name one of the GPU's instance types (GET /v2/nvcf/clusterGroups lists them)",
        problems,
    )
    backend = item.get("backend")
    if backend is not None and not isinstance(backend, str):
        problems.append(f"{where}.backend is {backend!r}: name the cluster group, e.g. 'GFN'")
    minimum = _count(item, "minInstances", where, problems, low=0)
    maximum = _count(item, "maxInstances", where, problems, low=1)
    concurrency = _count(
        item, "maxRequestConcurrency", where, problems, low=1, high=_MAX_CONCURRENCY, default=1
    )
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.append(
            f"{where}.minInstances is {minimum} and maxInstances is {maximum} (NVCF answers "
            f'"{_MIN_MAX_MESSAGE}"): lower minInstances or raise maxInstances'
        )
    if None in (gpu, instance_type, minimum, maximum, concurrency):
        return None
    return DeploymentSpec(
        gpu=cast(str, gpu),
        instance_type=cast(str, instance_type),
        backend=backend if isinstance(backend, str) else None,
        min_instances=cast(int, minimum),
        max_instances=cast(int, maximum),
        max_request_concurrency=cast(int, concurrency),
        configuration=item.get("configuration"),
        raw=dict(item),
    )


def parse_deployment(data: object, source: str = "deployment") -> tuple[DeploymentSpec, ...]:
    """Validate the body of a deployment request as NVCF's API does.

    The body is ``{"deploymentSpecifications": [...]}`` with at least one
    entry. Defaults: ``maxRequestConcurrency`` is 1, as NVCF documents;
    ``backend`` and ``configuration`` stay unset. NVCF documents no default
    for ``gpu``, ``instanceType``, ``minInstances`` or ``maxInstances``, so
    each is required.

    Args:
        data: the decoded JSON body.
        source: what to call the body in error messages.

    Raises:
        SpecError: with every problem found, each naming the entry's index.
    """
    if not isinstance(data, Mapping):
        raise _spec_error(
            source,
            [f"the body is {_kind(data)}: use an object with a deploymentSpecifications list"],
        )
    items = data.get("deploymentSpecifications")
    if not isinstance(items, list) or not items:
        state = "missing" if items is None else "empty" if items == [] else _kind(items)
        raise _spec_error(
            source,
            [
                f"deploymentSpecifications is {state}: give a list of at least one "
                "{gpu, instanceType, minInstances, maxInstances} object"
            ],
        )
    problems: list[str] = []
    specs = [
        _deployment(item, f"deploymentSpecifications[{index}]", problems)
        for index, item in enumerate(items)
    ]
    if problems:
        raise _spec_error(source, problems)
    return tuple(spec for spec in specs if spec is not None)
