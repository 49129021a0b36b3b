"""The helm-function template: every bake is a chart NVCF accepts, and its README's commands run.

The chart's templates substitute values only, so ``nvcf-helpers check`` renders
them without Helm; with a Helm engine installed (``helm`` on PATH or
``helm-python-sdk``) the same chart is also rendered by Helm and checked.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from template_support import TEMPLATES, bake_ok

from nvcf_helpers.check import check_paths
from nvcf_helpers.check import helm as helm_check
from nvcf_helpers.check.helm import HelmBinary, HelmEngine, HelmPythonSdk, check_chart
from nvcf_helpers.cli import build_parser
from nvcf_helpers.errors import InvalidInputError
from nvcf_helpers.scaffold import generate, list_templates
from nvcf_helpers.spec import load_spec

TEMPLATE = "helm-function"
MATRIX: list[dict[str, str]] = [
    {},
    {
        "project_name": "detector",
        "image_repository": "nvcr.io/acme/vision/detector-server",
        "image_tag": "2024.1",
        "inference_port": "9000",
        "inference_url": "/v1/predict",
        "health_uri": "/v1/ready",
        "chart_version": "1.2.3-rc.1",
    },
]


def _engines() -> list[Any]:
    """The Helm engines this machine has, each a test parameter (none: one skipped test)."""
    engines: list[Any] = []
    binary = shutil.which("helm")
    if binary:
        engines.append(pytest.param(HelmBinary(binary), id="helm"))
    with contextlib.suppress(ImportError):
        engines.append(
            pytest.param(HelmPythonSdk(importlib.import_module("helm_python")), id="helm-python")
        )
    return engines or [pytest.param(None, marks=pytest.mark.skip(reason="no Helm engine"))]


@pytest.fixture(scope="module")
def baked(cookies_session: Any) -> Any:
    """Bake each matrix entry once for the module; returns a lookup function."""
    cache: dict[tuple[tuple[str, str], ...], Path] = {}

    def lookup(extra: dict[str, str]) -> Path:
        key = tuple(sorted(extra.items()))
        if key not in cache:
            cache[key] = bake_ok(cookies_session, TEMPLATE, **extra)
        return cache[key]

    return lookup


def _variable(extra: dict[str, str], key: str) -> str:
    defaults = {"project_name": "my-helm-function", "inference_port": "8000"}
    defaults.update({"chart_version": "0.1.0", "inference_url": "/infer", "health_uri": "/health"})
    return extra.get(key, defaults.get(key, ""))


@pytest.mark.parametrize("extra", MATRIX, ids=["defaults", "custom"])
class TestBake:
    """Each combination of options gives a chart and a definition that agree."""

    def test_no_cookiecutter_syntax_left(self, baked: Any, extra: dict[str, str]) -> None:
        """Only Helm's own `{{ .Values... }}` is left, in the Deployment."""
        project = baked(extra)
        files = sorted(p for p in project.rglob("*") if p.is_file())
        for path in files:
            text = path.read_text(encoding="utf-8")
            assert "cookiecutter" not in text, path
            assert "{%" not in text, path
            if "{{" in text:
                assert path.name == "deployment.yaml", path
        names = {str(p.relative_to(project)) for p in files}
        assert names == {
            "README.md",
            "function.json",
            "chart/.helmignore",
            "chart/Chart.yaml",
            "chart/values.yaml",
            "chart/templates/deployment.yaml",
            "chart/templates/service.yaml",
        }

    def test_check_is_clean(
        self, baked: Any, extra: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`nvcf-helpers check` without Helm: no problem in the chart or function.json."""
        monkeypatch.setattr(helm_check, "find_engine", lambda: None)
        assert check_paths([baked(extra)]) == ([], 2)

    @pytest.mark.parametrize("engine", _engines())
    def test_check_is_clean_with_helm(
        self, baked: Any, extra: dict[str, str], engine: HelmEngine
    ) -> None:
        """Rendered by Helm itself, the chart is as clean."""
        project = baked(extra)
        assert check_chart(project / "chart", [project / "function.json"], engine=engine) == []

    def test_function_json(self, baked: Any, extra: dict[str, str]) -> None:
        """function.json deploys the chart: its URL, its Service, the port the Service serves."""
        project = baked(extra)
        spec = load_spec(project / "function.json")
        name, version = _variable(extra, "project_name"), _variable(extra, "chart_version")
        port = int(_variable(extra, "inference_port"))
        assert spec.kind == "helm"
        assert spec.helm_chart == (
            f"https://helm.ngc.nvidia.com/<org>/<team>/charts/{name}-{version}.tgz"
        )
        assert spec.helm_chart_service_name == name
        assert (spec.inference_port, spec.health.port) == (port, port)
        assert spec.inference_url == _variable(extra, "inference_url")
        assert spec.health.uri == _variable(extra, "health_uri")

    def test_chart(self, baked: Any, extra: dict[str, str]) -> None:
        """The Service is the ClusterIP one NVCF calls; the pods pull with NVCF's secret."""
        chart = baked(extra) / "chart"
        name, port = _variable(extra, "project_name"), int(_variable(extra, "inference_port"))
        meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
        assert (meta["name"], meta["version"]) == (name, _variable(extra, "chart_version"))
        values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
        assert values["ngcImagePullSecretName"] == ""
        service = yaml.safe_load((chart / "templates" / "service.yaml").read_text("utf-8"))
        assert service["metadata"]["name"] == name
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
        deployment = (chart / "templates" / "deployment.yaml").read_text(encoding="utf-8")
        assert "- name: {{ .Values.ngcImagePullSecretName }}" in deployment
        assert f"containerPort: {port}" in deployment

    def test_readme_commands_parse(self, baked: Any, extra: dict[str, str]) -> None:
        """Each nvcf-helpers command of the README is one the command line accepts."""
        readme = (baked(extra) / "README.md").read_text(encoding="utf-8")
        commands = re.findall(r"^(nvcf-helpers .*?)$", readme.replace("\\\n", " "), re.M)
        assert any(c.startswith("nvcf-helpers function create function.json") for c in commands)
        assert any("deploy create FUNCTION_ID VERSION_ID --gpu" in c for c in commands)
        for command in commands:
            words = shlex.split(command.split("#")[0])[1:]
            if words[:1] == ["check"]:
                continue  # run by test_check_is_clean
            build_parser().parse_args(words)  # exits 2 on an unknown option

    def test_readme_pushes_the_packaged_chart(self, baked: Any, extra: dict[str, str]) -> None:
        """`helm package chart` writes <name>-<version>.tgz: the file the README pushes."""
        readme = (baked(extra) / "README.md").read_text(encoding="utf-8")
        name, version = _variable(extra, "project_name"), _variable(extra, "chart_version")
        assert "helm package chart" in readme
        assert f"ngc registry chart push <org>/<team>/{name}:{version}" in readme
        assert f"--source {name}-{version}.tgz" in readme


class TestRefusals:
    """A bad value is refused in one line, and nothing is left on disk."""

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("project_name", "My_Function", "project_name 'My_Function' is not valid: use 1 to 63"),
            ("chart_version", "1.0", "chart_version '1.0' is not valid: Helm wants SemVer"),
            ("inference_port", "http", "inference_port 'http' is not valid: give a port number"),
            (
                "inference_port",
                "8080",
                "inferencePort is 8080: ports 8080 and 8010 are reserved by NVCF",
            ),
            ("health_uri", "health", "health_uri 'health' is not valid: give a path"),
            ("image_tag", "v 1", "image_tag 'v 1' is not valid: give a tag such as 1.0"),
            ("image_repository", "nvcr.io/a b", "image_repository 'nvcr.io/a b' is not valid"),
        ],
    )
    def test_bad_value(self, tmp_path: Path, key: str, value: str, message: str) -> None:
        """generate() raises the hook's one-line message; the output directory stays empty."""
        with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}"):
            generate(TEMPLATE, tmp_path, no_input=True, extra_context={key: value})
        assert list(tmp_path.iterdir()) == []


def test_listed_by_new() -> None:
    """`nvcf-helpers new` lists the template from the checkout."""
    assert TEMPLATE in list_templates()
    assert (TEMPLATES / TEMPLATE / "cookiecutter.json").is_file()
