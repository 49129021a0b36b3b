"""Bakes of every template over a matrix of options, and the hooks' refusals.

These tests generate files only (no server): every generated project is
complete (no template syntax left, valid Python, ``nvcf-helpers check``
clean), ``triton-container`` carries exactly the model repository that
``triton-model`` generates, and each bad value is refused in one line with
nothing left on disk.
"""

from __future__ import annotations

import ast
import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from template_support import CUSTOM_IO, TEMPLATES, bake_ok

from nvcf_helpers.check import check_paths
from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.scaffold.hooks import VENDOR_ROOTS, vendored_modules
from nvcf_helpers.spec import load_spec

# What a generated project carries into its container: the runtime, never tooling.
_RUNTIME = [
    "__init__.py",
    "assets.py",
    "context.py",
    "errors.py",
    "log.py",
    "names.py",
    "outputs.py",
    "progress.py",
    "secrets.py",
]
VENDORED = {
    "triton-model": sorted([*_RUNTIME, "triton_backend.py"]),
    "pytriton-container": sorted([*_RUNTIME, "libpython.py", "pytriton.py"]),
    "fastapi-container": sorted([*_RUNTIME, "fastapi.py"]),
}

MATRIX: list[tuple[str, dict[str, str]]] = [
    ("triton-model", {}),
    ("triton-model", {"max_batch_size": "0", "long_running": "yes", **CUSTOM_IO}),
    ("triton-model", {"instance_kind": "KIND_CPU", "model_name": "detector"}),
    ("triton-model", {"instance_kind": "KIND_GPU", "long_running": "yes", "max_batch_size": "64"}),
    ("triton-container", {}),
    ("triton-container", {"long_running": "yes", "triton_version": "23.04", **CUSTOM_IO}),
    ("triton-container", {"protocol": "grpc", "max_batch_size": "0", **CUSTOM_IO}),
    ("pytriton-container", {}),
    ("pytriton-container", {"max_batch_size": "0", "long_running": "yes", **CUSTOM_IO}),
    ("pytriton-container", {"long_running": "yes", "model_name": "ranker"}),
    ("pytriton-container", {"protocol": "grpc", "model_name": "ranker", **CUSTOM_IO}),
]


def _files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def baked(cookies_session: Any) -> Any:
    """Bake each matrix entry once for the module; returns a lookup function."""
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], Path] = {}

    def lookup(template: str, extra: dict[str, str]) -> Path:
        key = (template, tuple(sorted(extra.items())))
        if key not in cache:
            cache[key] = bake_ok(cookies_session, template, **extra)
        return cache[key]

    return lookup


@pytest.mark.parametrize(
    ("template", "extra"), MATRIX, ids=lambda v: str(v) if isinstance(v, str) else None
)
class TestBake:
    """Each combination of options gives a complete, valid project."""

    def test_no_template_syntax_left(
        self, baked: Any, template: str, extra: dict[str, str]
    ) -> None:
        """No generated file holds a cookiecutter placeholder or Jinja tag."""
        project = baked(template, extra)
        leftovers = [
            str(path.relative_to(project))
            for path in _files(project)
            for marker in ("{{ cookiecutter.", "{{cookiecutter.", "{%", "%}")
            if marker in path.read_text(encoding="utf-8", errors="replace")
        ]
        assert leftovers == []
        assert not any("{{" in str(path) for path in _files(project))

    def test_python_files_compile(self, baked: Any, template: str, extra: dict[str, str]) -> None:
        """Every generated Python file parses."""
        project = baked(template, extra)
        for path in _files(project):
            if path.suffix == ".py":
                ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def test_generated_code_is_lint_clean(
        self, baked: Any, template: str, extra: dict[str, str]
    ) -> None:
        """Generated Python passes ruff (E, F, W, I, UP, B) and its formatter."""
        project = baked(template, extra)
        ruff = [sys.executable, "-m", "ruff"]
        options = ["--isolated", "--line-length", "100", "--exclude", "nvcf_helpers"]
        lint = [*ruff, "check", *options, "--select", "E,F,W,I,UP,B", "."]
        result = subprocess.run(lint, cwd=project, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout
        check_format = [*ruff, "format", "--check", *options, "."]
        result = subprocess.run(
            check_format, cwd=project, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout

    def test_check_is_clean(
        self, baked: Any, template: str, extra: dict[str, str], hadolint_available: bool
    ) -> None:
        """`nvcf-helpers check` finds nothing wrong in the project."""
        project = baked(template, extra)
        findings, checked = check_paths([project], hadolint=hadolint_available)
        assert [str(f) for f in findings] == []
        assert checked == (
            2 if template == "triton-model" else 3 if template == "triton-container" else 2
        )

    def test_function_json(self, baked: Any, template: str, extra: dict[str, str]) -> None:
        """function.json is the NVCF body for the template's kind of function."""
        project = baked(template, extra)
        model = extra.get("model_name", "my_model")
        spec = load_spec(project / "function.json")
        if extra.get("protocol") == "grpc":  # a gRPC function on Triton's gRPC port
            assert (spec.inference_path, spec.inference_port, spec.health.port) == (
                "/grpc",
                8001,
                8001,
            )
            assert (spec.health.protocol, spec.health.uri) == ("gRPC", "/")
            assert (spec.kind, spec.api_body_format) == ("container", "CUSTOM")
            return
        assert spec.inference_path == f"/v2/models/{model}/infer"
        if template == "triton-model":
            assert (spec.kind, spec.api_body_format) == ("model", "PREDICT_V2")
            assert [ref.name for ref in spec.models] == [model]
        else:
            assert (spec.kind, spec.api_body_format) == ("container", "CUSTOM")
            assert spec.container_image == f"nvcr.io/<org>/<team>/{project.name}:1.0"
            assert (spec.inference_port, spec.health.port) == (8000, 8000)
            assert spec.health.uri == f"/v2/models/{model}/ready"


class TestModelRepository:
    """What the triton templates generate for Triton."""

    def test_config_declares_the_variables(self, cookies: Any) -> None:
        """config.pbtxt carries the model name, batching, instance kind and tensors asked for."""
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        project = bake_ok(
            cookies, "triton-model", model_name="det", instance_kind="KIND_CPU", **CUSTOM_IO
        )
        text = (project / "model_repository" / "det" / "config.pbtxt").read_text()
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert (config.name, config.backend, config.max_batch_size) == ("det", "python", 8)
        assert config.HasField("dynamic_batching")
        assert [g.kind for g in config.instance_group] == [
            model_config_pb2.ModelInstanceGroup.KIND_CPU
        ]
        assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
            ("A", model_config_pb2.TYPE_FP32, [-1]),
            ("B", model_config_pb2.TYPE_STRING, [2]),
        ]
        assert [t.name for t in config.output] == ["X", "Y", "Z"]

    def test_no_batching_means_no_dynamic_batching(self, cookies: Any) -> None:
        """max_batch_size 0 leaves dynamic_batching out."""
        project = bake_ok(cookies, "triton-model", max_batch_size="0")
        text = (project / "model_repository" / "my_model" / "config.pbtxt").read_text()
        assert "max_batch_size: 0" in text
        assert "dynamic_batching" not in text

    def test_default_instance_kind_loads_anywhere(self, cookies: Any) -> None:
        """The default instance kind is KIND_AUTO (GPU when present, else CPU)."""
        project = bake_ok(cookies, "triton-model")
        text = (project / "model_repository" / "my_model" / "config.pbtxt").read_text()
        assert "kind: KIND_AUTO" in text

    @pytest.mark.parametrize("extra", [{}, {"long_running": "yes", **CUSTOM_IO}])
    def test_triton_container_shares_the_repository(
        self, cookies: Any, extra: dict[str, str]
    ) -> None:
        """triton-container's repository, client and tests are triton-model's, byte for byte."""
        model = bake_ok(cookies, "triton-model", project_name="same", **extra)
        container = bake_ok(cookies, "triton-container", project_name="same", **extra)
        shared = ["client.py", "pytest.ini", "tests/conftest.py", "tests/test_model.py"]
        shared += [str(p.relative_to(model)) for p in _files(model / "model_repository")]
        for name in shared:
            assert filecmp.cmp(model / name, container / name, shallow=False), name

    def test_triton_container_template_copies_no_model_file(self) -> None:
        """The triton-container template holds no model repository of its own to drift."""
        names = {p.name for p in (TEMPLATES / "triton-container").rglob("*") if p.is_file()}
        assert not names & {"config.pbtxt", "model.py", "client.py", "test_model.py"}

    @pytest.mark.parametrize(
        ("template", "where", "adapter"),
        [
            ("triton-model", "model_repository/my_model/1", "triton_backend"),
            ("pytriton-container", ".", "pytriton"),
        ],
    )
    def test_vendored_runtime_is_exactly_pinned(
        self, cookies: Any, tmp_path: Path, template: str, where: str, adapter: str
    ) -> None:
        """The project gets the runtime and its adapter, nothing else, and it imports alone."""
        project = bake_ok(cookies, template, long_running="yes")
        copy = project / where / "nvcf_helpers"
        names = sorted(p.name for p in copy.glob("*.py"))
        assert names == VENDORED[template]
        assert names == vendored_modules(VENDOR_ROOTS[template])
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            f"import nvcf_helpers, nvcf_helpers.{adapter}; "
            "from nvcf_helpers import ProgressReporter, large_output; print(nvcf_helpers.__file__)"
        )
        # -I: isolated, -S: no site-packages, so only the standard library and the copy
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code, str(copy.parent)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(copy / "__init__.py")

    def test_vendoring_refuses_tooling(self, tmp_path: Path) -> None:
        """A runtime module that imports developer tooling stops the copy, naming both."""
        for name, body in {
            "__init__.py": "from nvcf_helpers import context\n",
            "context.py": "from nvcf_helpers.testing import free_port\n",
            "testing.py": "",
        }.items():
            (tmp_path / name).write_text(body, encoding="utf-8")
        with pytest.raises(
            NvcfHelperError, match=r"nvcf_helpers.context imports nvcf_helpers.testing"
        ):
            vendored_modules(["__init__"], tmp_path)


def _python_3_10() -> str | None:
    """A working Python 3.10 (what Triton images from 23.04 run), if this machine has one."""
    candidates = [
        shutil.which("python3.10"),
        *glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")),
    ]
    for candidate in candidates:
        if candidate:
            result = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.stdout.strip() == "(3, 10)":
                return candidate
    return None


class TestOldestPython:
    """The vendored helpers run on Python 3.10, the Python of Triton images from 23.04."""

    @pytest.mark.parametrize("template", ["triton-model", "pytriton-container"])
    def test_vendored_helpers_on_python_3_10(
        self, cookies: Any, tmp_path: Path, template: str
    ) -> None:
        """The copy imports with the standard library alone and writes a progress file."""
        python = _python_3_10()
        if python is None:
            pytest.skip("no Python 3.10 on this machine")
        project = bake_ok(cookies, template, long_running="yes")
        where = (
            project / "model_repository" / "my_model" / "1"
            if template == "triton-model"
            else project
        )
        adapter = "triton_backend" if template == "triton-model" else "pytriton"
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import nvcf_helpers, nvcf_helpers."
            + adapter
            + "; from nvcf_helpers import ProgressReporter, RequestContext; "
            "ctx = RequestContext.from_parameters(sys.argv[2]); ProgressReporter(ctx).update(100)"
        )
        parameters = json.dumps({"NVCF-REQID": "r1", "NVCF-LARGE-OUTPUT-DIR": str(tmp_path)})
        result = subprocess.run(
            [python, "-I", "-S", "-c", code, str(where), parameters],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / "progress").read_text()) == {"id": "r1", "progress": 100}


class TestPyTritonContainer:
    """What the pytriton-container template generates for its image."""

    def test_build_context_is_self_contained(self, cookies: Any) -> None:
        """The Dockerfile copies only files the project has, including the vendored helpers."""
        project = bake_ok(cookies, "pytriton-container")
        for line in (project / "Dockerfile").read_text().splitlines():
            if line.startswith("COPY"):
                source = line.split()[-2]
                assert (project / source).exists(), line
        assert (project / "nvcf_helpers" / "pytriton.py").is_file()

    def test_requirements_pin_pytriton(self, cookies: Any) -> None:
        """requirements.txt pins nvidia-pytriton to one release."""
        project = bake_ok(cookies, "pytriton-container")
        lines = [
            line
            for line in (project / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert any(line.startswith("nvidia-pytriton==") for line in lines)

    def test_dockerfile_rules(self, cookies: Any) -> None:
        """Pinned CUDA 12 / Ubuntu 22.04 base, non-root user, port 8000, exec-form CMD."""
        project = bake_ok(cookies, "pytriton-container")
        text = (project / "Dockerfile").read_text()
        assert "FROM nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04\n" in text
        assert "USER nvcf\n" in text
        assert "EXPOSE 8000\n" in text
        assert json.loads(text.split("CMD ", 1)[1].splitlines()[0]) == ["python3", "run.py"]

    def test_grpc_dockerfile_exposes_the_grpc_port(self, cookies: Any) -> None:
        """protocol=grpc: PyTriton's gRPC port is EXPOSEd and is function.json's port."""
        project = bake_ok(cookies, "pytriton-container", protocol="grpc")
        text = (project / "Dockerfile").read_text()
        assert "PYTRITON_TRITON_CONFIG_GRPC_PORT=8001" in text
        assert "EXPOSE 8001\n" in text
        assert load_spec(project / "function.json").inference_port == 8001


REFUSALS = [
    ("model_name", "9lives", "model_name '9lives' is not valid: use 1 to 64 letters, digits"),
    ("model_name", "my model", "model_name 'my model' is not valid"),
    ("project_name", "-x", "project_name '-x' is not valid"),
    ("max_batch_size", "-1", "max_batch_size '-1' is not valid: use a whole number from 0"),
    ("max_batch_size", "eight", "max_batch_size 'eight' is not valid"),
    ("inputs", "INPUT0:FP32", "inputs entry 'INPUT0:FP32' is not NAME:TYPE:DIMS"),
    ("inputs", "INPUT0:FLOAT:[-1]", "inputs entry 'INPUT0' has data type 'FLOAT': use one of BOOL"),
    ("inputs", "INPUT0:FP32:[0]", "inputs entry 'INPUT0' has dims '[0]': write whole numbers >= 1"),
    ("inputs", "INPUT0:FP32:[]", "inputs entry 'INPUT0' has no dims"),
    ("outputs", "1OUT:FP32:[-1]", "outputs entry name '1OUT' is not valid"),
    ("outputs", "INPUT0:FP32:[-1]", "INPUT0 is both an input and an output"),
    ("outputs", "A:FP32:[-1]; A:FP32:[1]", "outputs declares A more than once"),
]


class TestRefusals:
    """Each bad value is refused by the pre-generation hook, in one line, leaving nothing."""

    @pytest.mark.parametrize("template", ["triton-model", "triton-container", "pytriton-container"])
    @pytest.mark.parametrize(("key", "value", "message"), REFUSALS)
    def test_bad_value(  # noqa: PLR0917 - pytest passes parameters positionally
        self,
        cookies: Any,
        capfd: pytest.CaptureFixture[str],
        template: str,
        key: str,
        value: str,
        message: str,
    ) -> None:
        """The hook prints what is wrong and what to do; the project directory is removed."""
        result = cookies.bake(template=str(TEMPLATES / template), extra_context={key: value})
        assert isinstance(result.exception, FailedHookException)
        errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1
        assert message in errors[0]
        output = Path(str(cookies._new_output_dir())).parent
        assert [p for p in output.rglob("*") if p.is_file()] == []

    @pytest.mark.parametrize(
        ("template", "key", "value", "message"),
        [
            ("triton-container", "triton_version", "22.12", "triton_version '22.12' is not valid"),
            (
                "triton-container",
                "triton_version",
                "latest",
                "triton_version 'latest' is not valid",
            ),
        ],
    )
    def test_triton_version(  # noqa: PLR0917 - pytest passes parameters positionally
        self,
        cookies: Any,
        capfd: pytest.CaptureFixture[str],
        template: str,
        key: str,
        value: str,
        message: str,
    ) -> None:
        """The Triton image must be a YY.MM release NVCF supports (23.04 or later)."""
        result = cookies.bake(template=str(TEMPLATES / template), extra_context={key: value})
        assert isinstance(result.exception, FailedHookException)
        assert message in capfd.readouterr().err

    @pytest.mark.parametrize("template", ["triton-container", "pytriton-container"])
    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"protocol": "soap"}, "protocol 'soap' is not valid: use http"),
            (
                {"protocol": "grpc", "long_running": "yes"},
                "long_running 'yes' with protocol 'grpc' is not valid",
            ),
        ],
    )
    def test_protocol(
        self, capfd: pytest.CaptureFixture[str], template: str, extra: dict[str, str], message: str
    ) -> None:
        """protocol is http or grpc; a gRPC function (no NVCF-* metadata) is not long-running."""
        from nvcf_helpers.scaffold.hooks import pre_gen

        context = json.loads((TEMPLATES / template / "cookiecutter.json").read_text())
        context = {k: (v[0] if isinstance(v, list) else v) for k, v in context.items()}
        context.update(project_name="p", **extra)
        assert pre_gen(template, context) == 1
        errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1
        assert message in errors[0]

    def test_grpc_long_running_leaves_nothing(self, cookies: Any) -> None:
        """A refused gRPC combination leaves no project behind."""
        result = cookies.bake(
            template=str(TEMPLATES / "pytriton-container"),
            extra_context={"protocol": "grpc", "long_running": "yes"},
        )
        assert isinstance(result.exception, FailedHookException)
        output = Path(str(cookies._new_output_dir())).parent
        assert [p for p in output.rglob("*") if p.is_file()] == []

    def test_choices_are_refused_by_cookiecutter(self, cookies: Any) -> None:
        """A value outside a choice variable's list is refused before any file is made."""
        result = cookies.bake(
            template=str(TEMPLATES / "triton-model"), extra_context={"instance_kind": "KIND_TPU"}
        )
        assert "KIND_TPU provided for choice variable instance_kind" in str(result.exception)
        output = Path(str(cookies._new_output_dir())).parent
        assert [p for p in output.rglob("*") if p.is_file()] == []

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("instance_kind", "KIND_TPU", "instance_kind 'KIND_TPU' is not valid: use KIND_AUTO"),
            ("long_running", "maybe", "long_running 'maybe' is not valid: use yes or no"),
        ],
    )
    def test_hook_checks_choices_too(self, key: str, value: str, message: str) -> None:
        """The hook checks choices too, for contexts that skip cookiecutter's own check."""
        from nvcf_helpers.scaffold.hooks import validate
        from nvcf_helpers.scaffold.tensors import TemplateInputError

        context = json.loads((TEMPLATES / "triton-model" / "cookiecutter.json").read_text())
        context = {k: (v[0] if isinstance(v, list) else v) for k, v in context.items()}
        context.update(project_name="p", **{key: value})
        with pytest.raises(TemplateInputError, match=re.escape(message)):
            validate("triton-model", context)


class TestReadme:
    """Each generated README's commands name files and sub-commands that exist."""

    @pytest.mark.parametrize(
        ("template", "extra"),
        [
            ("triton-model", {}),
            ("triton-container", {}),
            ("pytriton-container", {}),
            ("triton-container", {"protocol": "grpc"}),
            ("pytriton-container", {"protocol": "grpc"}),
        ],
    )
    def test_commands_refer_to_real_things(
        self, cookies: Any, template: str, extra: dict[str, str]
    ) -> None:
        """`python X`, `nvcf-helpers CMD PATH` and `pip install -r X` name real things."""
        from nvcf_helpers.cli import COMMANDS

        project = bake_ok(cookies, template, **extra)
        text = (project / "README.md").read_text()
        blocks = re.findall(r"```\n(.*?)```", text, flags=re.DOTALL)
        commands = [line.split("#")[0].split() for block in blocks for line in block.splitlines()]
        seen = 0
        for words in commands:
            if words[:1] == ["python"]:
                assert (project / words[1]).is_file(), words
                seen += 1
            elif words[:1] == ["nvcf-helpers"]:
                assert words[1] in COMMANDS, words
                assert (project / words[2]).exists(), words
                seen += 1
            elif words[:3] == ["pip", "install", "-r"]:
                assert (project / words[3]).is_file(), words
        assert seen >= 3
