"""Tests for ``nvcf-helpers check`` on Helm charts: each of NVCF's Helm rules, and the rendering.

Every rule test copies the valid project in ``tests/check_fixtures/helm/project``
(a chart and the function.json that deploys it), makes one mistake and runs
the real command line. Unless a test says otherwise no Helm engine is used
(the fixture's templates only substitute values), so the results do not
depend on whether this machine has Helm.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from nvcf_helpers.check import check_paths, collect
from nvcf_helpers.check import helm as helm_check
from nvcf_helpers.check.helm import HelmBinary, HelmPythonSdk, check_chart, find_engine
from nvcf_helpers.cli import main

FIXTURE = Path(__file__).parent / "check_fixtures" / "helm" / "project"
# file:line: what is wrong; how to fix it
FINDING = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<what>.+); (?P<how>.+)$")


@pytest.fixture(autouse=True)
def _no_helm_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render without Helm, whatever this machine has installed."""
    monkeypatch.setattr(helm_check, "find_engine", lambda: None)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the valid project, to make one mistake in."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) in a file."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_number(path: Path, needle: str) -> int:
    """The first line of a file holding ``needle``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} is not in {path}")


def check(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[re.Match[str]]]:
    """Run ``nvcf-helpers check``: the status and each finding line, parsed."""
    status = main(["check", *(str(p) for p in paths)])
    lines = capsys.readouterr().out.splitlines()
    matches = [FINDING.match(line) for line in lines]
    assert all(matches), lines
    return status, [m for m in matches if m is not None]


def only_finding(capsys: pytest.CaptureFixture[str], *paths: Path) -> re.Match[str]:
    """The one finding that checking ``paths`` gives (status 1)."""
    status, found = check(capsys, *paths)
    assert status == 1
    assert len(found) == 1, [m[0] for m in found]
    return found[0]


class TestValidChart:
    """A chart that follows NVCF's rules is clean."""

    def test_project_is_clean(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The chart and its function.json: exit 0, two files checked."""
        status = main(["check", str(FIXTURE)])
        captured = capsys.readouterr()
        assert (status, captured.out) == (0, "")
        assert "2 files checked, no problems" in captured.err

    def test_chart_alone_is_checked_with_the_definition_beside_it(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """Checking only chart/ still checks the Service that ../function.json names."""
        edit(
            project / "function.json",
            '"helmChartServiceName": "echo"',
            '"helmChartServiceName": "x"',
        )
        finding = only_finding(capsys, project / "chart")
        assert finding["file"] == str(project / "function.json")
        assert "helmChartServiceName 'x' names no Service of the chart" in finding["what"]

    def test_chart_yaml_names_the_chart(self, project: Path) -> None:
        """Chart.yaml given as a file is its chart."""
        targets = collect([project / "chart" / "Chart.yaml"])
        assert targets.charts == [project / "chart"]
        assert targets.function_specs == [project / "function.json"]

    def test_tolerated_kinds_are_clean(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """ServiceAccount, Role, RoleBinding and PersistentVolumeClaim are accepted."""
        extra = "".join(
            f"---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: x\n"
            for api, kind in (
                ("v1", "ServiceAccount"),
                ("rbac.authorization.k8s.io/v1", "Role"),
                ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                ("v1", "PersistentVolumeClaim"),
                ("v1", "ConfigMap"),
                ("v1", "Secret"),
            )
        )
        (project / "chart" / "templates" / "extra.yaml").write_text(extra, encoding="utf-8")
        assert check(capsys, project) == (0, [])


class TestObjects:
    """Only the kinds NVCF accepts, and at most 300 of them."""

    def test_unsupported_kind(self, capsys: pytest.CaptureFixture[str], project: Path) -> None:
        """An Ingress is refused, on its kind line."""
        service = project / "chart" / "templates" / "service.yaml"
        ingress = "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n"
        service.write_text(service.read_text(encoding="utf-8") + ingress, encoding="utf-8")
        finding = only_finding(capsys, project)
        assert finding["file"] == str(service)
        assert int(finding["line"]) == line_number(service, "kind: Ingress")
        assert finding["what"] == (
            "Ingress 'web' (networking.k8s.io/v1) is a kind NVCF refuses in a Helm chart"
        )
        assert finding["how"].startswith("remove it: NVCF accepts Pod, Deployment")

    def test_accepted_kind_in_another_api_group(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A Deployment of a group other than apps is not the Deployment NVCF accepts."""
        deployment = project / "chart" / "templates" / "deployment.yaml"
        edit(deployment, "apiVersion: apps/v1", "apiVersion: extensions/v1beta1")
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(deployment, "kind: Deployment")
        assert "Deployment 'echo' (extensions/v1beta1) is a kind NVCF refuses" in finding["what"]

    @pytest.mark.parametrize(("config_maps", "refused"), [(298, False), (299, True)])
    def test_at_most_300_objects(
        self,
        capsys: pytest.CaptureFixture[str],
        project: Path,
        config_maps: int,
        refused: bool,
    ) -> None:
        """The Deployment, the Service and 298 ConfigMaps pass; one more is refused."""
        maps = "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
            for i in range(config_maps)
        )
        (project / "chart" / "templates" / "maps.yaml").write_text(maps, encoding="utf-8")
        if not refused:
            assert check(capsys, project) == (0, [])
            return
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (str(project / "chart" / "Chart.yaml"), "1")
        assert finding["what"] == "the chart renders 301 objects, and NVCF refuses more than 300"


class TestServices:
    """ClusterIP Services, and the one helmChartServiceName names."""

    def test_service_must_be_cluster_ip(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A LoadBalancer is refused, on its type line."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "type: ClusterIP", "type: LoadBalancer")
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(service, "type: LoadBalancer")
        assert finding["what"] == (
            "Service 'echo' is of type LoadBalancer, but NVCF accepts only ClusterIP Services"
        )

    def test_named_service_must_exist(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """helmChartServiceName naming no Service is reported in function.json."""
        spec = project / "function.json"
        edit(spec, '"helmChartServiceName": "echo"', '"helmChartServiceName": "echo-svc"')
        finding = only_finding(capsys, project)
        assert (finding["file"], int(finding["line"])) == (
            str(spec),
            line_number(spec, "helmChartServiceName"),
        )
        assert finding["what"] == (
            "helmChartServiceName 'echo-svc' names no Service of the chart (its Services: echo)"
        )

    def test_service_must_expose_inference_port(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A Service without a port equal to inferencePort is reported on its ports."""
        spec = project / "function.json"
        edit(spec, '"inferencePort": 8000', '"inferencePort": 9000')
        edit(spec, '"port": 8000', '"port": 9000')
        service = project / "chart" / "templates" / "service.yaml"
        finding = only_finding(capsys, project)
        assert (finding["file"], int(finding["line"])) == (
            str(service),
            line_number(service, "ports:"),
        )
        assert finding["what"] == (
            "Service 'echo' does not expose inferencePort 9000 (its ports: 8000), and NVCF "
            "sends requests to it on inferencePort"
        )

    @pytest.mark.parametrize(
        ("target", "problem"),
        [
            ("8000", None),
            ("8001", "targetPort 8001, which no container of the pods it selects declares"),
            ("http", None),
            ("grpc", "targetPort 'grpc', which no container of the pods it selects declares"),
        ],
    )
    def test_target_port_by_number_or_name(
        self,
        capsys: pytest.CaptureFixture[str],
        project: Path,
        target: str,
        problem: str | None,
    ) -> None:
        """targetPort reaches a container port by its number or by its name."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "targetPort: http", f"targetPort: {target}")
        if problem is None:
            assert check(capsys, project) == (0, [])
            return
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(service, "targetPort:")
        assert problem in finding["what"]
        assert finding["what"].endswith("(they declare 8000/http)")

    def test_target_port_defaults_to_the_port(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """Without targetPort the Service sends to its own port number."""
        edit(project / "chart" / "templates" / "service.yaml", "      targetPort: http\n", "")
        assert check(capsys, project) == (0, [])

    def test_selector_must_select_a_pod(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A selector no pod template matches is reported on the selector."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "    app: echo", "    app: other")
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(service, "selector:")
        assert finding["what"] == (
            "Service 'echo' selects no pod of the chart: no pod template has the labels app=other"
        )

    def test_pod_index_selects_statefulsets_only(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A pod-index selector selects a StatefulSet's pods, never a Deployment's (as NVCF)."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "    app: echo", "    app: echo\n    apps.kubernetes.io/pod-index: '0'")
        finding = only_finding(capsys, project)
        assert "Service 'echo' selects no pod of the chart" in finding["what"]
        deployment = project / "chart" / "templates" / "deployment.yaml"
        edit(deployment, "kind: Deployment", "kind: StatefulSet")
        assert check(capsys, project) == (0, [])


class TestPullSecret:
    """values.yaml has ngcImagePullSecretName and the pods pull with it."""

    def test_value_must_be_in_values_yaml(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """Without the value NVCF sets, values.yaml is reported."""
        values = project / "chart" / "values.yaml"
        edit(values, 'ngcImagePullSecretName: ""\n', "")
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (str(values), "1")
        assert finding["what"] == (
            "values.yaml has no ngcImagePullSecretName, the value NVCF sets to the secret that "
            "pulls the chart's images from NGC"
        )

    def test_values_yaml_must_exist(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A chart without values.yaml is reported on Chart.yaml."""
        (project / "chart" / "values.yaml").unlink()
        edit(project / "chart" / "templates" / "deployment.yaml", ":{{ .Values.image.tag }}", "")
        edit(
            project / "chart" / "templates" / "deployment.yaml",
            "{{ .Values.image.repository }}",
            "x",
        )
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (str(project / "chart" / "Chart.yaml"), "1")
        assert finding["what"] == (
            "the chart has no values.yaml, so no ngcImagePullSecretName value for NVCF to set"
        )

    def test_value_must_be_a_string(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A mapping where NVCF writes a secret's name is reported on its line."""
        values = project / "chart" / "values.yaml"
        edit(values, 'ngcImagePullSecretName: ""', "ngcImagePullSecretName: {name: x}")
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (str(values), "1")
        assert finding["what"] == (
            "ngcImagePullSecretName is {'name': 'x'}, but NVCF sets it to a secret's name"
        )

    def test_pods_must_pull_with_it(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A pod spec without imagePullSecrets is reported on the pod spec."""
        deployment = project / "chart" / "templates" / "deployment.yaml"
        edit(
            deployment,
            "      imagePullSecrets:\n        - name: {{ .Values.ngcImagePullSecretName }}\n",
            "",
        )
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(deployment, "containers:")
        assert finding["what"] == (
            "Deployment 'echo' does not pull its images with the secret NVCF names in "
            "ngcImagePullSecretName"
        )
        assert finding["how"] == (
            "add to its pod spec: imagePullSecrets: "
            '[{name: "{{ .Values.ngcImagePullSecretName }}"}]'
        )

    def test_a_fixed_secret_name_is_not_the_value(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A literal secret name is not the one NVCF creates, on the imagePullSecrets line."""
        deployment = project / "chart" / "templates" / "deployment.yaml"
        edit(deployment, "{{ .Values.ngcImagePullSecretName }}", "my-secret")
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(deployment, "imagePullSecrets:")
        assert finding["what"].endswith("ngcImagePullSecretName (it names my-secret)")


class TestDefinition:
    """What NVCF checks of the function definition of a helm function."""

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("oci://nvcr.io/my-org/echo:0.1.0", None),
            (
                "http://helm.ngc.nvidia.com/my-org/charts/echo-0.1.0.tgz",
                "helmChart 'http://helm.ngc.nvidia.com/my-org/charts/echo-0.1.0.tgz' is not an "
                "https:// or oci:// URL, the only ones NVCF fetches",
            ),
            ("https:///echo.tgz", "helmChart 'https:///echo.tgz' has no host"),
            (
                "https://192.168.1.5/echo.tgz",
                "helmChart 'https://192.168.1.5/echo.tgz' points to a private network, which "
                "NVCF refuses",
            ),
        ],
    )
    def test_chart_url_is_https_or_oci(
        self,
        capsys: pytest.CaptureFixture[str],
        project: Path,
        url: str,
        problem: str | None,
    ) -> None:
        """The chart URL's scheme and host, reported on helmChart."""
        spec = project / "function.json"
        edit(spec, "https://helm.ngc.nvidia.com/my-org/charts/echo-0.1.0.tgz", url)
        if problem is None:
            assert check(capsys, project) == (0, [])
            return
        finding = only_finding(capsys, project)
        assert (finding["file"], int(finding["line"])) == (
            str(spec),
            line_number(spec, "helmChart"),
        )
        assert finding["what"] == problem

    def test_service_name_is_not_a_template(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A templated helmChartServiceName is refused; the Service is then not looked for."""
        spec = project / "function.json"
        edit(
            spec, '"helmChartServiceName": "echo"', '"helmChartServiceName": "{{ .Release.Name }}"'
        )
        finding = only_finding(capsys, project)
        assert int(finding["line"]) == line_number(spec, "helmChartServiceName")
        assert finding["what"] == (
            "helmChartServiceName '{{ .Release.Name }}' is a template, and NVCF does not render it"
        )

    def test_definition_rules_reach_check(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """parse_spec's helm rules (tested in test_spec) are findings of a chart's project."""
        spec = project / "function.json"
        data = json.loads(spec.read_text(encoding="utf-8"))
        del data["helmChartServiceName"]
        data["containerImage"] = "nvcr.io/my-org/echo:1.0"
        spec.write_text(json.dumps(data, indent=2), encoding="utf-8")
        status, found = check(capsys, project)
        assert status == 1
        problems = " | ".join(m["what"] for m in found)
        assert "helmChart cannot be combined with containerImage" in problems
        assert "helmChart is set but helmChartServiceName is missing" in problems


class TestRenderingWithoutHelm:
    """Value substitution is rendered here; any other template logic is reported as unchecked."""

    def test_values_are_substituted(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A port from values.yaml is the port the rules see (quoted or not)."""
        values = project / "chart" / "values.yaml"
        values.write_text(values.read_text(encoding="utf-8") + "port: 9000\n", encoding="utf-8")
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "port: 8000", "port: {{ .Values.port }}")
        edit(service, "name: echo", "name: {{ .Values.missing }}echo")
        edit(service, "type: ClusterIP", "type: {{ .Values.image.tag | quote }}")
        status, found = check(capsys, project)
        assert status == 1
        assert [m["what"] for m in found] == [
            "Service 'echo' is of type 1.0, but NVCF accepts only ClusterIP Services",
            "Service 'echo' does not expose inferencePort 8000 (its ports: 9000), and NVCF "
            "sends requests to it on inferencePort",
        ]

    def test_template_logic_is_reported_not_checked(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """An `if` without Helm: one finding says so; chart-wide rules are not guessed."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "apiVersion: v1", "{{- if .Values.enabled }}\napiVersion: v1")
        service.write_text(service.read_text(encoding="utf-8") + "{{- end }}\n", encoding="utf-8")
        finding = only_finding(capsys, project)  # no "names no Service" guessed
        assert (finding["file"], finding["line"]) == (str(service), "1")
        assert finding["what"] == (
            "not checked: {{- if .Values.enabled }} needs Helm, and no Helm engine is installed"
        )
        assert finding["how"].startswith(
            "install Helm (helm on PATH) or pip install helm-python-sdk"
        )

    def test_subcharts_are_reported_not_checked(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A subchart needs Helm to render: Chart.yaml says it was not checked."""
        (project / "chart" / "charts" / "redis").mkdir(parents=True)
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (str(project / "chart" / "Chart.yaml"), "1")
        assert finding["what"] == (
            "not checked: the subcharts (redis) need Helm, and no Helm engine is installed"
        )

    def test_invalid_yaml_is_reported(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """A template that renders invalid YAML is reported on the line YAML stops at."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "  type: ClusterIP", "  type: ClusterIP\n   bad: [")
        finding = only_finding(capsys, project)
        assert finding["file"] == str(service)
        assert finding["what"].startswith("it renders invalid YAML")

    def test_chart_yaml_needs_a_version(
        self, capsys: pytest.CaptureFixture[str], project: Path
    ) -> None:
        """Chart.yaml without version is refused by Helm, so by check."""
        edit(project / "chart" / "Chart.yaml", "version: 0.1.0\n", "")
        finding = only_finding(capsys, project)
        assert finding["what"] == "it has no version, so Helm refuses the chart"


FAKE_HELM = """#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
(here / "argv.json").write_text(json.dumps(sys.argv[1:]))
values = sys.argv[sys.argv.index("--values") + 1]
(here / "values.json").write_text(pathlib.Path(values).read_text())
if (here / "error.txt").exists():
    sys.stderr.write((here / "error.txt").read_text())
    sys.exit(1)
sys.stdout.write((here / "output.txt").read_text())
"""

# What `helm template` prints for the fixture chart with a NodePort Service: the
# documents sorted by kind, each headed by its template.
HELM_OUTPUT = """---
# Source: echo/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  type: NodePort
  selector:
    app: echo
  ports:
    - name: http
      port: 8000
      targetPort: http
---
# Source: echo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
spec:
  selector:
    matchLabels:
      app: echo
  template:
    metadata:
      labels:
        app: echo
    spec:
      imagePullSecrets:
        - name: nvcf-check-ngc-pull-secret
      containers:
        - name: server
          image: "nvcr.io/my-org/echo:1.0"
          ports:
            - name: http
              containerPort: 8000
"""


class TestHelmEngine:
    """With Helm, the chart is rendered by Helm and findings point into the templates."""

    @pytest.fixture
    def fake_helm(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """A `helm` on PATH that records its arguments and prints output.txt."""
        directory = tmp_path / "bin"
        directory.mkdir()
        helm = directory / "helm"
        helm.write_text(FAKE_HELM.format(python=sys.executable), encoding="utf-8")
        helm.chmod(0o755)
        monkeypatch.setenv("PATH", str(directory))
        monkeypatch.setattr(helm_check, "find_engine", find_engine)
        return directory

    def test_helm_on_path_is_the_engine(self, fake_helm: Path) -> None:
        """find_engine prefers the helm command."""
        assert find_engine() == HelmBinary(str(fake_helm / "helm"))

    def test_no_engine_without_helm_or_helm_python(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Neither helm on PATH nor helm_python importable: no engine."""
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.setitem(sys.modules, "helm_python", None)  # import raises ImportError
        assert find_engine() is None

    def test_findings_point_into_the_templates(
        self, capsys: pytest.CaptureFixture[str], project: Path, fake_helm: Path
    ) -> None:
        """helm template's output is read by template, and lines map back to the sources."""
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "type: ClusterIP", "type: {{ .Values.serviceType }}")
        (fake_helm / "output.txt").write_text(HELM_OUTPUT, encoding="utf-8")
        finding = only_finding(capsys, project)
        assert (finding["file"], int(finding["line"])) == (str(service), 6)
        assert finding["what"].startswith("Service 'echo' is of type NodePort")
        argv = json.loads((fake_helm / "argv.json").read_text(encoding="utf-8"))
        assert argv[:6] == [
            "template",
            "nvcf-check",
            str(project / "chart"),
            "--namespace",
            "default",
            "--values",
        ]
        values = json.loads((fake_helm / "values.json").read_text(encoding="utf-8"))
        assert values == {"ngcImagePullSecretName": "nvcf-check-ngc-pull-secret"}

    def test_render_error_points_at_the_template(
        self, capsys: pytest.CaptureFixture[str], project: Path, fake_helm: Path
    ) -> None:
        """Helm's refusal is a finding on the template and line it names."""
        (fake_helm / "error.txt").write_text(
            'Error: template: echo/templates/service.yaml:7:10: executing "echo/templates/'
            'service.yaml" at <.Values.a.b>: nil pointer evaluating interface {}.b\n',
            encoding="utf-8",
        )
        finding = only_finding(capsys, project)
        assert (finding["file"], finding["line"]) == (
            str(project / "chart" / "templates" / "service.yaml"),
            "7",
        )
        assert finding["what"].startswith("helm cannot render the chart: template: echo/templates")

    def test_helm_python_renders_what_needs_helm(
        self, capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With helm-python-sdk (Helm's Go SDK), an `if` is rendered and its objects checked."""
        module = pytest.importorskip("helm_python")
        monkeypatch.setattr(helm_check, "find_engine", lambda: HelmPythonSdk(module))
        service = project / "chart" / "templates" / "service.yaml"
        edit(service, "apiVersion: v1", "{{- if .Values.image }}\napiVersion: v1")
        edit(service, "type: ClusterIP", 'type: {{ .Values.kind | default "NodePort" }}')
        service.write_text(service.read_text(encoding="utf-8") + "{{- end }}\n", encoding="utf-8")
        finding = only_finding(capsys, project)
        assert (finding["file"], int(finding["line"])) == (
            str(service),
            line_number(service, "type:"),
        )
        assert finding["what"].startswith("Service 'echo' is of type NodePort")

    def test_helm_python_matches_the_substitution_done_here(self, project: Path) -> None:
        """The fixture chart rendered by Helm's Go SDK and here: the same findings (none)."""
        module = pytest.importorskip("helm_python")
        chart = project / "chart"
        specs = [project / "function.json"]
        assert check_chart(chart, specs, engine=HelmPythonSdk(module)) == []
        assert check_chart(chart, specs, engine=None) == []


def test_check_paths_counts_a_chart_as_one_file() -> None:
    """A project holding a chart and its function.json is two files."""
    assert check_paths([FIXTURE]) == ([], 2)
