"""The helm-function template's variables and the function.json its project starts with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nvcf_helpers.errors import SpecError
from nvcf_helpers.scaffold.tensors import TemplateInputError
from nvcf_helpers.spec import FunctionSpec, parse_spec

__all__ = ["helm_definition", "validate_helm"]

# A Kubernetes Service name (a DNS label), which is also the chart's and the function's name.
_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Helm charts are versioned with SemVer 2.
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_IMAGE_TAG = re.compile(r"^\w[\w.-]{0,127}$")
# Written into YAML as it is: no space, quote or brace.
_PLAIN = re.compile(r"^[^\s\"'{}#]+$")


def _value(context: Mapping[str, Any], key: str) -> str:
    return str(context.get(key, "")).strip()


def _refuse(key: str, value: str, what: str) -> TemplateInputError:
    return TemplateInputError(f"{key} {value!r} is not valid: {what}")


def validate_helm(context: Mapping[str, Any]) -> None:
    """Check the helm-function template's variables.

    Raises:
        TemplateInputError: the first problem found, saying what to do.
    """
    project = _value(context, "project_name")
    if not _SERVICE_NAME.match(project):
        raise _refuse(
            "project_name",
            project,
            "use 1 to 63 lower-case letters, digits and '-', starting with a letter and not "
            "ending with '-' (it names the chart, its Service and the NVCF function)",
        )
    if not _PLAIN.match(_value(context, "image_repository")):
        raise _refuse(
            "image_repository",
            _value(context, "image_repository"),
            "give the image without its tag, e.g. nvcr.io/<org>/<team>/server",
        )
    if not _IMAGE_TAG.match(_value(context, "image_tag")):
        raise _refuse("image_tag", _value(context, "image_tag"), "give a tag such as 1.0")
    if not _SEMVER.match(_value(context, "chart_version")):
        raise _refuse(
            "chart_version", _value(context, "chart_version"), "Helm wants SemVer, e.g. 0.1.0"
        )
    for key in ("inference_url", "health_uri"):
        path = _value(context, key)
        if not path.startswith("/") or not _PLAIN.match(path):
            raise _refuse(key, path, "give a path such as /infer, with no space or quote")
    if not _value(context, "inference_port").isdigit():
        raise _refuse(
            "inference_port", _value(context, "inference_port"), "give a port number, e.g. 8000"
        )
    try:
        helm_definition(context)
    except SpecError as exc:  # NVCF's own rules: a reserved or out-of-range port
        raise TemplateInputError(exc.problems[0] if exc.problems else str(exc)) from None


def helm_definition(context: Mapping[str, Any]) -> FunctionSpec:
    """The helm function that deploys the template's chart.

    Raises:
        SpecError: the variables make a definition NVCF would refuse.
    """
    project, version = _value(context, "project_name"), _value(context, "chart_version")
    port = int(_value(context, "inference_port"))
    definition = {
        "name": project,
        "inferenceUrl": _value(context, "inference_url"),
        "inferencePort": port,
        "helmChart": f"https://helm.ngc.nvidia.com/<org>/<team>/charts/{project}-{version}.tgz",
        "helmChartServiceName": project,
        "health": {
            "protocol": "HTTP",
            "uri": _value(context, "health_uri"),
            "port": port,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
        "apiBodyFormat": "CUSTOM",
    }
    return parse_spec(definition, "the helm-function template's function.json")
