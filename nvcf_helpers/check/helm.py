"""Checks of a Helm chart for an NVCF Helm function, and of the function.json naming it.

NVCF renders a Helm function's chart and refuses it unless every object is of
a kind it accepts, there are at most 300 of them, every Service is ClusterIP,
and the Service named by ``helmChartServiceName`` exposes ``inferencePort`` on
a port that a container of the pods it selects declares; the chart's URL must
be ``https`` or ``oci``. Its pods pull from NGC with the secret NVCF names in
the value ``ngcImagePullSecretName``. This module applies those rules first.

The chart is rendered as NVCF renders it (its default values, with
``ngcImagePullSecretName`` set) by the first engine found:

1. ``helm`` on ``PATH`` (``helm template``): Helm itself.
2. ``helm_python`` (PyPI ``helm-python-sdk``), which embeds Helm's Go SDK. It
   is used when installed but is not a dependency: a 0.x release by one
   author, and a 75 MB wheel (255 MB installed) that every ``check`` install
   would carry for the charts that need it.
3. Neither: files without template actions, and files whose actions only
   substitute values (``{{ .Values.a.b }}``, ``{{ .Release.Name }}``, with an
   optional ``| quote``), are rendered here exactly as Helm renders them. Any
   other file is reported as not checked, and so are the rules that need the
   whole chart.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from nvcf_helpers.check.finding import Finding
from nvcf_helpers.check.function_spec import json_line
from nvcf_helpers.errors import NvcfHelperError, SpecError
from nvcf_helpers.spec import FunctionSpec, parse_spec

__all__ = [
    "CHART_FILE",
    "MAX_OBJECTS",
    "NGC_PULL_VALUE",
    "HelmBinary",
    "HelmCheckError",
    "HelmEngine",
    "HelmPythonSdk",
    "HelmRenderError",
    "chart_specs",
    "check_chart",
    "check_helm_definition",
    "find_engine",
]

CHART_FILE = "Chart.yaml"
VALUES_FILE = "values.yaml"
#: The value NVCF sets to the name of the secret that pulls the chart's images from NGC.
NGC_PULL_VALUE = "ngcImagePullSecretName"
#: NVCF refuses a chart that renders more objects than this.
MAX_OBJECTS = 300

# The kinds NVCF accepts, each with its API group ("" is the core group); the
# last three are tolerated for now.
_ACCEPTED_KINDS = {
    "Pod": "",
    "Deployment": "apps",
    "ReplicaSet": "apps",
    "StatefulSet": "apps",
    "Job": "batch",
    "CronJob": "batch",
    "Service": "",
    "ConfigMap": "",
    "Secret": "",
    "PersistentVolumeClaim": "",
    "ServiceAccount": "",
    "Role": "rbac.authorization.k8s.io",
    "RoleBinding": "rbac.authorization.k8s.io",
}
_KINDS_FIX = (
    "remove it: NVCF accepts Pod, Deployment, ReplicaSet, StatefulSet, Job, CronJob, Service, "
    "ConfigMap, Secret and PersistentVolumeClaim (and for now ServiceAccount, Role, RoleBinding)"
)
# Where each workload keeps its pod template (a Pod is its own).
_POD_TEMPLATE: Mapping[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# A Service selecting on it selects a StatefulSet's pods (NVCF drops the label to match).
_POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
# NVCF refuses chart URLs on these networks.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(block)
    for block in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
_CHART_URL_FIX = (
    "give the chart's URL in NGC, e.g. https://helm.ngc.nvidia.com/<org>/<team>/charts/"
    "<name>-<version>.tgz"
)
# How the chart is rendered: a release name and namespace of our own, and a
# pull-secret name standing in for the one NVCF sets.
_RELEASE = "nvcf-check"
_NAMESPACE = "default"
_PROBE_PULL_NAME = "nvcf-check-ngc-pull-secret"
_NOT_CHECKED_FIX = (
    "install Helm (helm on PATH) or pip install helm-python-sdk, then check again: until then "
    "this file's objects and the rules that need the whole chart (the Service named by "
    "helmChartServiceName, its port and pods, the object limit) go unchecked"
)
# A template action, with its whitespace-trimming dashes.
_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
# An action that only prints a value: `.Values.a.b`, `.Release.Name`, `.Chart.Version`.
_REFERENCE = re.compile(r"^\s*\.((?:Values|Release|Chart)(?:\.[A-Za-z_]\w*)+)\s*(\|\s*quote\s*)?$")
# Where Helm's errors name a template: `chart/templates/x.yaml:12:3`.
_ERROR_AT = re.compile(r"[\w.-]+/((?:templates|charts)/[^\s:()\"']+)(?::(\d+))?")
# Helm prints values.yaml's numbers as float64: integers below 10**6 print in full.
_PLAIN_INTEGER_LIMIT = 10**6


class HelmCheckError(NvcfHelperError):
    """A chart cannot be checked here: PyYAML is missing, or the Helm engine does not run."""


class HelmRenderError(NvcfHelperError):
    """Helm refused to render a chart.

    Attributes:
        file: the chart file Helm named (``templates/x.yaml``), or None.
        line: the line Helm named (1 when it named none).
    """

    def __init__(self, message: str, file: str | None = None, line: int = 1) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


class HelmEngine(Protocol):
    """Something that renders a chart as ``helm template`` does."""

    @property
    def name(self) -> str:
        """What to call the engine in findings."""

    def render(self, chart: Path, values: Mapping[str, Any]) -> dict[str, str]:
        """Each template's rendered text, by its path in the chart (``templates/x.yaml``).

        Args:
            chart: the chart's directory.
            values: values set over the chart's ``values.yaml``.

        Raises:
            HelmRenderError: Helm refused the chart.
        """
        ...


def _chart_relative(name: str) -> str:
    """``templates/x.yaml`` for Helm's ``<chart>/templates/x.yaml``."""
    return name.partition("/")[2] or name


def _render_error(text: str) -> HelmRenderError:
    """Helm's error message, with the template and line it names."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    message = " ".join(lines).removeprefix("Error: ") or "it failed without a message"
    match = _ERROR_AT.search(text)
    if match is None:
        return HelmRenderError(message)
    return HelmRenderError(message, match[1], int(match[2] or 1))


@dataclass(frozen=True)
class HelmBinary:
    """The ``helm`` command: ``helm template``."""

    path: str
    name: str = "helm"

    def render(self, chart: Path, values: Mapping[str, Any]) -> dict[str, str]:
        """Run ``helm template`` and split its output by template (see :class:`HelmEngine`)."""
        with tempfile.TemporaryDirectory(prefix="nvcf-helm-") as scratch:
            overrides = Path(scratch) / "values.json"  # JSON is YAML: Helm reads it as values
            overrides.write_text(json.dumps(dict(values)), encoding="utf-8")
            command = [self.path, "template", _RELEASE, str(chart)]
            command += ["--namespace", _NAMESPACE, "--values", str(overrides)]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=120, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise HelmCheckError(
                    f"helm ({self.path}) could not run ({exc}): reinstall it, or take it off "
                    "PATH to check without it"
                ) from None
        if done.returncode != 0:
            raise _render_error(done.stderr or done.stdout)
        files: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in done.stdout.splitlines():
            if line.startswith("# Source: "):
                current = files.setdefault(_chart_relative(line[10:].strip()), [])
                current.append("---")  # each source block is a document of its own
            elif current is not None:
                current.append(line)
        return {name: "\n".join(lines) + "\n" for name, lines in files.items()}


def _is_manifest(relative: str) -> bool:
    """Whether Helm outputs a template: partials (``_x.tpl``) and NOTES.txt it does not."""
    base = relative.rpartition("/")[2]
    return not base.startswith("_") and base != "NOTES.txt"


@dataclass(frozen=True)
class HelmPythonSdk:
    """Helm's Go SDK through the ``helm_python`` module (PyPI ``helm-python-sdk``)."""

    module: ModuleType
    name: str = "helm-python-sdk"

    def render(self, chart: Path, values: Mapping[str, Any]) -> dict[str, str]:
        """Render offline with Helm's engine (see :class:`HelmEngine`)."""
        try:
            with self.module.Chart.load(str(chart)) as loaded:
                rendered = loaded.render(dict(values), name=_RELEASE, namespace=_NAMESPACE)
        except self.module.HelmError as exc:
            raise _render_error(str(exc)) from None
        files = {_chart_relative(str(key)): str(text) for key, text in rendered.items()}
        return {name: text for name, text in files.items() if _is_manifest(name)}


def find_engine() -> HelmEngine | None:
    """The Helm engine to render charts with: ``helm`` on PATH, else ``helm_python``, else None."""
    binary = shutil.which("helm")
    if binary:
        return HelmBinary(binary)
    try:
        module = importlib.import_module("helm_python")
    except Exception:  # not installed, or its native library does not load: no engine
        return None
    return HelmPythonSdk(module)


# --- YAML with line numbers ---------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that knows its line and each key's (1-based)."""

    def __init__(self, items: Mapping[Any, Any], line: int, key_lines: dict[str, int]) -> None:
        super().__init__(items)
        self.line = line
        self.key_lines = key_lines

    def line_of(self, key: str) -> int:
        """The line of ``key``, or the mapping's own when it lacks the key."""
        return self.key_lines.get(key, self.line)

    def child(self, key: str) -> _Map:
        """The mapping under ``key``; an empty one (on ``key``'s line) when there is none."""
        value = self.get(key)
        return value if isinstance(value, _Map) else _Map({}, self.line_of(key), {})


@functools.cache
def _yaml() -> ModuleType:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise HelmCheckError(
            "PyYAML is not installed, so Helm charts cannot be checked: "
            "pip install 'nvcf-helpers[check]'"
        ) from None


@functools.cache
def _loader() -> Any:
    """A safe YAML loader whose mappings are :class:`_Map` (PyYAML ships no type hints)."""
    yaml = _yaml()

    def construct(loader: Any, node: Any) -> _Map:
        items = loader.construct_mapping(node, deep=True)
        lines = {str(key.value): key.start_mark.line + 1 for key, _ in node.value}
        return _Map(items, node.start_mark.line + 1, lines)

    loader: Any = type("ChartLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("tag:yaml.org,2002:map", construct)
    return loader


def _load_all(text: str) -> list[Any]:
    """Every document of a YAML text. Raises the module's ``YAMLError``."""
    return list(_yaml().load_all(text, Loader=_loader()))


def _yaml_problem(error: Exception) -> tuple[int, str]:
    """The line a YAML error is on and what it says."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return (mark.line + 1 if mark is not None else 1), str(problem)


def _read_yaml(path: Path) -> tuple[list[Any] | None, Finding | None]:
    """A YAML file's documents, or None and the finding that says why not."""
    try:
        return _load_all(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError) as exc:
        return None, Finding(path, 1, f"cannot read it ({exc})", "make it a readable UTF-8 file")
    except _yaml().YAMLError as exc:
        line, problem = _yaml_problem(exc)
        return None, Finding(path, line, f"it is not valid YAML ({problem})", "correct the YAML")


# --- the chart's own files ----------------------------------------------------------------


def _chart_metadata(chart: Path) -> tuple[_Map | None, list[Finding]]:
    """Chart.yaml, and what Helm would refuse in it."""
    path = chart / CHART_FILE
    documents, problem = _read_yaml(path)
    if problem is not None:
        return None, [problem]
    meta = documents[0] if documents else None
    if not isinstance(meta, _Map):
        fix = "write the chart's apiVersion: v2, name and version in it"
        return None, [Finding(path, 1, "it does not describe a chart", fix)]
    required = (("apiVersion", "v2"), ("name", chart.resolve().name), ("version", "0.1.0"))
    findings = [
        Finding(path, 1, f"it has no {key}, so Helm refuses the chart", f"add {key}: {example}")
        for key, example in required
        if not meta.get(key)
    ]
    return meta, findings


def _values(chart: Path) -> tuple[dict[Any, Any], list[Finding]]:
    """values.yaml, and whether it has the pull-secret value NVCF sets."""
    path = chart / VALUES_FILE
    if not path.is_file():
        return {}, [
            Finding(
                chart / CHART_FILE,
                1,
                f"the chart has no {VALUES_FILE}, so no {NGC_PULL_VALUE} value for NVCF to set",
                f'add {VALUES_FILE} holding {NGC_PULL_VALUE}: ""',
            )
        ]
    documents, problem = _read_yaml(path)
    if problem is not None:
        return {}, [problem]
    values = documents[0] if documents else None
    if values is None:
        values = _Map({}, 1, {})
    if not isinstance(values, _Map):
        return {}, [Finding(path, 1, "it is not a mapping of values", "write key: value lines")]
    if NGC_PULL_VALUE not in values:
        return values, [
            Finding(
                path,
                1,
                f"{VALUES_FILE} has no {NGC_PULL_VALUE}, the value NVCF sets to the secret "
                "that pulls the chart's images from NGC",
                f'add {NGC_PULL_VALUE}: "" and name it in the pods\' imagePullSecrets',
            )
        ]
    if not isinstance(values[NGC_PULL_VALUE], str):
        return values, [
            Finding(
                path,
                values.line_of(NGC_PULL_VALUE),
                f"{NGC_PULL_VALUE} is {values[NGC_PULL_VALUE]!r}, but NVCF sets it to a "
                "secret's name",
                f'make it a string: {NGC_PULL_VALUE}: ""',
            )
        ]
    return values, []


# --- rendering ----------------------------------------------------------------------------


@dataclass
class _Rendering:
    """What rendering a chart gave.

    Attributes:
        files: each rendered template's text, by its path in the chart.
        exact: the rendered lines are the templates' lines (rendered here).
        findings: Helm's refusal, or the files that could not be rendered.
    """

    files: dict[str, str] = field(default_factory=dict)
    exact: bool = True
    findings: list[Finding] = field(default_factory=list)


def _printed(value: Any) -> str | None:
    """How Helm prints a value of values.yaml, for the values whose printing is certain."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) < _PLAIN_INTEGER_LIMIT:
        return str(value)
    if isinstance(value, str) and "\n" not in value:
        return value
    return None


def _substitution(action: re.Match[str], scope: Mapping[str, Any]) -> str | None:
    """What a value-printing action prints; None for any other action."""
    if action[1] or action[3]:  # `{{-` and `-}}` trim whitespace: left to Helm
        return None
    reference = _REFERENCE.match(action[2])
    if reference is None:
        return None
    *parents, leaf = reference[1].split(".")
    node: Any = scope
    for part in parents:
        node = node.get(part) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return None
    if leaf not in node:  # Helm prints a missing value as nothing
        text = "" if parents[0] == "Values" and not reference[2] else None
    else:
        text = _printed(node[leaf])
    if text is None or not reference[2]:
        return text
    if '"' in text or "\\" in text or not text.isprintable():
        return None  # Go's quoting of these differs from a plain pair of quotes
    return f'"{text}"'


def _substitute(text: str, scope: Mapping[str, Any]) -> tuple[str | None, int, str]:
    """The template rendered, or None with the line and text of the first action Helm must do."""
    parts: list[str] = []
    position = 0
    for action in _ACTION.finditer(text):
        printed = _substitution(action, scope)
        if printed is None:
            return None, text.count("\n", 0, action.start()) + 1, action[0]
        parts += [text[position : action.start()], printed]
        position = action.end()
    parts.append(text[position:])
    return "".join(parts), 0, ""


def _render_here(chart: Path, meta: _Map, scope: Mapping[str, Any]) -> _Rendering:
    """Render without Helm: the templates that only substitute values."""
    rendering = _Rendering()
    templates = chart / "templates"
    paths = sorted(templates.rglob("*")) if templates.is_dir() else []
    for path in paths:
        relative = path.relative_to(chart).as_posix()
        if not path.is_file() or not _is_manifest(relative):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fix = "make it a readable UTF-8 file"
            rendering.findings.append(Finding(path, 1, f"cannot read it ({exc})", fix))
            continue
        rendered, line, action = _substitute(text, scope)
        if rendered is None:
            problem = f"not checked: {action.strip()} needs Helm, and no Helm engine is installed"
            rendering.findings.append(Finding(path, line, problem, _NOT_CHECKED_FIX))
        else:
            rendering.files[relative] = rendered
    subcharts = sorted(p.name for p in (chart / "charts").glob("*"))
    if subcharts or meta.get("dependencies"):
        where = meta.line_of("dependencies")
        names = ", ".join(subcharts) or "its dependencies"
        problem = f"not checked: the subcharts ({names}) need Helm, and no Helm engine is installed"
        rendering.findings.append(Finding(chart / CHART_FILE, where, problem, _NOT_CHECKED_FIX))
    return rendering


def _render(
    chart: Path, meta: _Map, values: Mapping[Any, Any], engine: HelmEngine | None
) -> _Rendering:
    """Render the chart as NVCF does: default values, the pull-secret value set."""
    overrides = {NGC_PULL_VALUE: _PROBE_PULL_NAME}
    if engine is None:
        scope = {
            "Values": {**values, **overrides},
            "Release": {"Name": _RELEASE, "Namespace": _NAMESPACE},
            "Chart": {"Name": meta.get("name"), "Version": meta.get("version")},
        }
        return _render_here(chart, meta, scope)
    try:
        return _Rendering(files=engine.render(chart, overrides), exact=False)
    except HelmRenderError as exc:
        where = chart / exc.file if exc.file else chart / CHART_FILE
        problem = f"{engine.name} cannot render the chart: {exc}"
        fix = "correct the template (helm template shows the same error)"
        return _Rendering(exact=False, findings=[Finding(where, exc.line, problem, fix)])


# --- rendered objects ---------------------------------------------------------------------


def _source_line(source: list[str], rendered: list[str], at: int, start: int) -> int:
    """The template line that rendered line ``at``: the same text, else the same key."""
    text = rendered[at - 1].strip() if 0 < at <= len(rendered) else ""
    if not text:
        return start
    stripped = [line.strip() for line in source]
    for number in range(start, len(stripped) + 1):
        if stripped[number - 1] == text:
            return number
    if ":" in text:
        key = text.split(":", 1)[0] + ":"
        for number in range(start, len(stripped) + 1):
            if stripped[number - 1].startswith(key):
                return number
    return start


def _kind_line(source: list[str], kind: str, occurrence: int) -> int:
    """The line of the ``occurrence``-th ``kind: <kind>`` of a template (1 when not found)."""
    pattern = re.compile(rf"^\s*kind:\s*[\"']?{re.escape(kind)}[\"']?\s*(#.*)?$")
    hits = [number for number, line in enumerate(source, 1) if pattern.match(line)]
    return hits[occurrence - 1] if len(hits) >= occurrence else 1


@dataclass(frozen=True)
class _Object:
    """One rendered Kubernetes object, and the template it came from."""

    path: Path
    body: _Map
    source: list[str]
    rendered: list[str]
    exact: bool
    start: int

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.child("metadata").get("name"))

    def line(self, mapping: _Map, key: str | None = None) -> int:
        """The template line of ``mapping`` (or of its ``key``)."""
        at = mapping.line_of(key) if key else mapping.line
        if self.exact:
            return at
        return _source_line(self.source, self.rendered, at, self.start)

    def pod_template(self) -> _Map | None:
        """The pod template of a workload (a Pod's own body); None for other kinds."""
        keys = _POD_TEMPLATE.get(self.kind)
        if keys is None:
            return None
        template = self.body
        for key in keys:
            template = template.child(key)
        return template


def _objects(chart: Path, rendering: _Rendering) -> tuple[list[_Object], list[Finding]]:
    """The objects of the rendered templates (documents with apiVersion and kind)."""
    objects: list[_Object] = []
    findings: list[Finding] = []
    for relative, text in sorted(rendering.files.items()):
        path = chart / relative
        try:
            source = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        except (OSError, UnicodeDecodeError):
            source = []
        rendered = text.splitlines()
        try:
            documents = _load_all(text)
        except _yaml().YAMLError as exc:
            at, problem = _yaml_problem(exc)
            line = at if rendering.exact else _source_line(source, rendered, at, 1)
            fix = "correct the YAML (indentation, a ':' after each key)"
            findings.append(Finding(path, line, f"it renders invalid YAML ({problem})", fix))
            continue
        seen: dict[str, int] = {}
        for body in documents:
            if not isinstance(body, _Map) or not body.get("kind") or not body.get("apiVersion"):
                continue  # NVCF skips documents without a type, as Kubernetes would refuse them
            kind = str(body["kind"])
            seen[kind] = seen.get(kind, 0) + 1
            start = body.line if rendering.exact else _kind_line(source, kind, seen[kind])
            objects.append(_Object(path, body, source, rendered, rendering.exact, start))
    return objects, findings


# --- NVCF's rules -------------------------------------------------------------------------


def _kind_findings(objects: Iterable[_Object]) -> list[Finding]:
    """Only the kinds NVCF accepts."""
    findings = []
    for obj in objects:
        api_version = str(obj.body.get("apiVersion"))
        group = api_version.rpartition("/")[0]
        if _ACCEPTED_KINDS.get(obj.kind) == group:
            continue
        problem = f"{obj.kind} {obj.name!r} ({api_version}) is a kind NVCF refuses in a Helm chart"
        findings.append(Finding(obj.path, obj.line(obj.body, "kind"), problem, _KINDS_FIX))
    return findings


def _count_findings(chart: Path, objects: list[_Object]) -> list[Finding]:
    """At most MAX_OBJECTS objects."""
    if len(objects) <= MAX_OBJECTS:
        return []
    return [
        Finding(
            chart / CHART_FILE,
            1,
            f"the chart renders {len(objects)} objects, and NVCF refuses more than {MAX_OBJECTS}",
            "remove objects (one ConfigMap holds many files) or split the chart",
        )
    ]


def _service_type_findings(objects: Iterable[_Object]) -> list[Finding]:
    """Every Service is ClusterIP."""
    findings = []
    for service in (obj for obj in objects if obj.kind == "Service"):
        spec = service.body.child("spec")
        kind = spec.get("type")
        if kind in (None, "", "ClusterIP"):
            continue
        findings.append(
            Finding(
                service.path,
                service.line(spec, "type"),
                f"Service {service.name!r} is of type {kind}, but NVCF accepts only ClusterIP "
                "Services",
                "remove spec.type or set it to ClusterIP (NVCF reaches the Service from inside "
                "the cluster)",
            )
        )
    return findings


def _pull_secret_findings(objects: Iterable[_Object]) -> list[Finding]:
    """Every pod pulls with the secret NVCF names in the pull-secret value."""
    findings = []
    for obj in objects:
        template = obj.pod_template()
        if template is None:
            continue
        spec = template.child("spec")
        secrets = spec.get("imagePullSecrets")
        entries = secrets if isinstance(secrets, list) else []
        names = [str(s.get("name")) for s in entries if isinstance(s, Mapping) and s.get("name")]
        if _PROBE_PULL_NAME in names:
            continue
        named = f" (it names {', '.join(names)})" if names else ""
        findings.append(
            Finding(
                obj.path,
                obj.line(spec, "imagePullSecrets"),
                f"{obj.kind} {obj.name!r} does not pull its images with the secret NVCF names "
                f"in {NGC_PULL_VALUE}{named}",
                "add to its pod spec: imagePullSecrets: "
                f'[{{name: "{{{{ .Values.{NGC_PULL_VALUE} }}}}"}}]',
            )
        )
    return findings


def _labels_match(selector: Mapping[Any, Any], labels: Any) -> bool:
    if not isinstance(labels, Mapping):
        labels = {}
    return all(key in labels and str(labels[key]) == str(value) for key, value in selector.items())


def _selected_pods(spec: _Map, objects: Iterable[_Object]) -> list[_Map]:
    """The pod specs a Service's selector selects, as NVCF matches them."""
    raw = spec.get("selector")
    selector = dict(raw) if isinstance(raw, Mapping) else {}
    statefulsets_only = bool(selector.pop(_POD_INDEX_LABEL, None))
    pods = []
    for obj in objects:
        template = obj.pod_template()
        if template is None or (statefulsets_only and obj.kind != "StatefulSet"):
            continue
        if _labels_match(selector, template.child("metadata").get("labels")):
            pods.append(template.child("spec"))
    return pods


def _container_ports(pods: Iterable[_Map]) -> list[tuple[Any, Any]]:
    """Each ``(containerPort, name)`` the pods' containers declare."""
    declared = []
    for pod in pods:
        containers = pod.get("containers")
        for container in containers if isinstance(containers, list) else []:
            ports = container.get("ports") if isinstance(container, Mapping) else None
            for port in ports if isinstance(ports, list) else []:
                if isinstance(port, Mapping):
                    declared.append((port.get("containerPort"), port.get("name")))
    return declared


def _reaches(target: Any, number: Any, name: Any) -> bool:
    """Whether a targetPort (a number, or a port's name) is a declared container port."""
    if isinstance(target, int) and not isinstance(target, bool):
        return bool(target == number)
    return isinstance(target, str) and target == name


def _service_port_findings(
    service: _Object, port: int, objects: list[_Object], spec_path: Path
) -> list[Finding]:
    """The Service exposes ``port`` and sends it to a port a selected container declares."""
    spec = service.body.child("spec")
    raw = spec.get("ports")
    ports = [p for p in raw if isinstance(p, _Map)] if isinstance(raw, list) else []
    exposed = [p for p in ports if p.get("port") == port]
    if not exposed:
        listed = ", ".join(str(p.get("port")) for p in ports) or "none"
        return [
            Finding(
                service.path,
                service.line(spec, "ports"),
                f"Service {service.name!r} does not expose inferencePort {port} (its ports: "
                f"{listed}), and NVCF sends requests to it on inferencePort",
                f"add port {port} to its spec.ports, or set inferencePort in {spec_path.name} "
                "to the Service's port",
            )
        ]
    pods = _selected_pods(spec, objects)
    if not pods:
        raw_selector = spec.get("selector")
        selector = raw_selector if isinstance(raw_selector, Mapping) else {}
        shown = ", ".join(f"{k}={v}" for k, v in selector.items())
        return [
            Finding(
                service.path,
                service.line(spec, "selector"),
                f"Service {service.name!r} selects no pod of the chart: no pod template has "
                f"the labels {shown}",
                "make spec.selector match the labels of the workload's pod template "
                "(spec.template.metadata.labels)",
            )
        ]
    declared = _container_ports(pods)
    for entry in exposed:
        target = entry.get("targetPort", entry.get("port"))
        if any(_reaches(target, number, name) for number, name in declared):
            return []
    entry = exposed[0]
    target = entry.get("targetPort", port)
    shown = ", ".join(f"{n}/{name}" if name else str(n) for n, name in declared) or "no port"
    fix = (
        f"name a container port {target!r}, or set targetPort to the port the server listens on"
        if isinstance(target, str)
        else f"declare containerPort: {target} in the server's container, or set targetPort "
        "to the port it listens on"
    )
    return [
        Finding(
            service.path,
            service.line(entry, "targetPort" if "targetPort" in entry else "port"),
            f"Service {service.name!r} sends inferencePort {port} to targetPort {target!r}, "
            f"which no container of the pods it selects declares (they declare {shown})",
            fix,
        )
    ]


def _helm_spec(path: Path) -> tuple[FunctionSpec | None, str]:
    """A valid helm function definition and its text; None when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
        spec = parse_spec(json.loads(text), str(path))
    except (OSError, UnicodeDecodeError, ValueError, SpecError):
        return None, ""  # check_function_spec reports why
    return (spec if spec.kind == "helm" else None), text


def _target_service_findings(spec_path: Path, objects: list[_Object]) -> list[Finding]:
    """The Service helmChartServiceName names exists, exposes inferencePort, reaches a pod."""
    spec, text = _helm_spec(spec_path)
    if spec is None or not spec.helm_chart_service_name or "{{" in spec.helm_chart_service_name:
        return []  # an invalid or templated definition is reported by its own check
    name = spec.helm_chart_service_name
    services = [obj for obj in objects if obj.kind == "Service"]
    for service in services:
        if service.name == name:
            return _service_port_findings(service, spec.inference_port, objects, spec_path)
    names = ", ".join(sorted(service.name for service in services)) or "none"
    return [
        Finding(
            spec_path,
            json_line(text, "helmChartServiceName"),
            f"helmChartServiceName {name!r} names no Service of the chart (its Services: {names})",
            f"give the Service that serves inference metadata.name: {name}, or name one of "
            "the chart's Services here",
        )
    ]


# --- entry points -------------------------------------------------------------------------


def _defines_helm(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and bool({"helmChart", "helmChartServiceName"} & data.keys())


def chart_specs(chart: Path) -> list[Path]:
    """The helm function definitions of a chart: ``*function.json`` in it, else beside it."""
    parent = chart.parent if chart.name not in ("", ".", "..") else chart.resolve().parent
    for directory in (chart, parent):
        found = [p for p in sorted(directory.glob("*function.json")) if _defines_helm(p)]
        if found:
            return found
    return []


def check_chart(
    chart: Path,
    specs: Iterable[Path] = (),
    *,
    engine: HelmEngine | Literal["auto"] | None = "auto",
) -> list[Finding]:
    """Check a Helm chart against NVCF's rules.

    Args:
        chart: the chart's directory (the one holding ``Chart.yaml``).
        specs: the function definitions that deploy it; the Service each names
            is looked for. None given: the chart's own rules only.
        engine: how to render it; ``"auto"`` finds one (:func:`find_engine`),
            None renders here what needs no Helm.

    Returns:
        The problems found, sorted; a file that could not be rendered is one.

    Raises:
        HelmCheckError: PyYAML is not installed, or the Helm engine does not run.
    """
    meta, findings = _chart_metadata(chart)
    if meta is None:
        return findings
    values, value_findings = _values(chart)
    rendering = _render(chart, meta, values, find_engine() if engine == "auto" else engine)
    objects, yaml_findings = _objects(chart, rendering)
    findings += value_findings + rendering.findings + yaml_findings
    findings += _kind_findings(objects) + _service_type_findings(objects)
    findings += _pull_secret_findings(objects)
    if not rendering.findings and not yaml_findings:  # the whole chart is known
        findings += _count_findings(chart, objects)
        for spec_path in specs:
            findings += _target_service_findings(spec_path, objects)
    return sorted(findings)


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: NVCF resolves it, we cannot tell
    return any(address in network for network in _PRIVATE_NETWORKS)


def _chart_url_findings(path: Path, text: str, url: str) -> list[Finding]:
    """The chart URL is https or oci, with a public host."""
    line = json_line(text, "helmChart")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return [Finding(path, line, f"helmChart {url!r} is not a URL", _CHART_URL_FIX)]
    if parts.scheme not in ("https", "oci"):
        problem = f"helmChart {url!r} is not an https:// or oci:// URL, the only ones NVCF fetches"
        return [Finding(path, line, problem, _CHART_URL_FIX)]
    if not host:
        return [Finding(path, line, f"helmChart {url!r} has no host", _CHART_URL_FIX)]
    if _is_private(host):
        problem = f"helmChart {url!r} points to a private network, which NVCF refuses"
        return [Finding(path, line, problem, _CHART_URL_FIX)]
    return []


def check_helm_definition(path: Path) -> list[Finding]:
    """Check what NVCF checks of a helm function definition beyond its schema.

    The chart URL is https or oci on a public host, and ``helmChartServiceName``
    is a name, not a template. (That ``helmChart`` comes with
    ``helmChartServiceName`` and without container settings is
    :func:`~nvcf_helpers.spec.parse_spec`'s rule, reported by ``check``'s
    function.json check.)

    Returns:
        The problems found; none for a definition that is not a helm function's.
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return []  # check_function_spec reports it
    if not isinstance(data, dict):
        return []
    findings = []
    chart = data.get("helmChart")
    if isinstance(chart, str) and chart.strip():
        findings += _chart_url_findings(path, text, chart)
    service = data.get("helmChartServiceName")
    if isinstance(service, str) and "{{" in service:
        findings.append(
            Finding(
                path,
                json_line(text, "helmChartServiceName"),
                f"helmChartServiceName {service!r} is a template, and NVCF does not render it",
                "write the Service's name as it is, and give that Service a fixed "
                "metadata.name in the chart",
            )
        )
    return findings
