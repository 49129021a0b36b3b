"""``nvcf-helpers new``, and the templates run by cookiecutter from a checkout or a wheel."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from template_support import OTHER_TEMPLATE_NAMES, REPOSITORY, TEMPLATE_NAMES, TEMPLATES

import nvcf_helpers
from nvcf_helpers.cli import main
from nvcf_helpers.errors import InvalidInputError
from nvcf_helpers.scaffold import generate, list_templates, template_path, templates_root


def run_new(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["new", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestNewCommand:
    """The command line."""

    def test_generates_with_values_after_options(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """TEMPLATE, options, then KEY=VALUE words: the project is made and the next steps shown."""
        status, out, err = run_new(
            capsys,
            "triton-model",
            "-o",
            str(tmp_path),
            "--no-input",
            "model_name=detector",
            "max_batch_size=0",
        )
        assert (status, err) == (0, "")
        project = tmp_path / "detector-function"
        assert out.splitlines()[0] == f"created {project}"
        assert "nvcf-helpers serve model_repository" in out
        config = (project / "model_repository" / "detector" / "config.pbtxt").read_text()
        assert "max_batch_size: 0" in config

    def test_templates_are_listed_in_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help names every template."""
        with pytest.raises(SystemExit) as exited:
            main(["new", "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert all(name in out for name in TEMPLATE_NAMES)

    def test_unknown_template_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown template exits 2 with argparse's message."""
        with pytest.raises(SystemExit) as exited:
            main(["new", "triton-modle"])
        assert exited.value.code == 2
        assert "invalid choice: 'triton-modle'" in capsys.readouterr().err

    def test_unknown_variable(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A misspelt variable is refused (cookiecutter would ignore it) and nothing is made."""
        status, _, err = run_new(
            capsys, "triton-model", "-o", str(tmp_path), "--no-input", "modle_name=x"
        )
        assert status == 1
        assert err.startswith(
            "nvcf-helpers new: error: the template has no variable 'modle_name': "
            "use one of model_name, "
        )
        assert list(tmp_path.iterdir()) == []

    def test_bad_choice(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A value outside a choice variable's list names the choices."""
        status, _, err = run_new(
            capsys, "triton-model", "-o", str(tmp_path), "--no-input", "long_running=maybe"
        )
        assert status == 1
        assert (
            err
            == "nvcf-helpers new: error: long_running 'maybe' is not valid: use one of no, yes\n"
        )

    def test_not_an_assignment(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """A word without '=' is explained."""
        status, _, err = run_new(
            capsys, "triton-model", "-o", str(tmp_path), "--no-input", "detector"
        )
        assert status == 1
        assert err == (
            "nvcf-helpers new: error: 'detector' is not KEY=VALUE: write e.g. model_name=detector\n"
        )

    @pytest.mark.parametrize("template", TEMPLATE_NAMES)
    def test_hook_refusal_is_one_line(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, template: str
    ) -> None:
        """The hook's refusal is the only output line, with no traceback; nothing is left."""
        status, out, err = run_new(
            capsys, template, "-o", str(tmp_path), "--no-input", "inputs=IN:FP32"
        )
        assert (status, out) == (1, "")
        assert err == (
            "nvcf-helpers new: error: inputs entry 'IN:FP32' is not NAME:TYPE:DIMS: write e.g. "
            "INPUT0:FP32:[-1], and separate entries with ';'\n"
        )
        assert list(tmp_path.iterdir()) == []

    def test_existing_project_is_not_overwritten(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """Generating over an existing project fails with a message and keeps the files."""
        assert run_new(capsys, "triton-model", "-o", str(tmp_path), "--no-input")[0] == 0
        marker = tmp_path / "my-model-function" / "mine.txt"
        marker.write_text("keep me")
        status, _, err = run_new(capsys, "triton-model", "-o", str(tmp_path), "--no-input")
        assert status == 1
        assert (
            "already exists: choose another name (project_name=...) or output directory (-o)" in err
        )
        assert marker.read_text() == "keep me"


class TestGenerateApi:
    """The Python API behind the command."""

    def test_refusal_raises_invalid_input(self, tmp_path: Path) -> None:
        """generate() raises InvalidInputError carrying the hook's message."""
        with pytest.raises(InvalidInputError, match=r"^max_batch_size 'x' is not valid"):
            generate(
                "pytriton-container", tmp_path, no_input=True, extra_context={"max_batch_size": "x"}
            )

    def test_templates_found_in_the_checkout(self) -> None:
        """In a checkout (editable install) the templates are the top-level templates/ directory."""
        assert templates_root() == TEMPLATES
        assert list_templates() == sorted((*TEMPLATE_NAMES, *OTHER_TEMPLATE_NAMES))
        assert template_path("triton-model") == TEMPLATES / "triton-model"

    def test_no_files_outside_the_output(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No replay file or clone is written to the user's home."""
        home = tmp_path / "home"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))
        generate("triton-container", tmp_path / "out", no_input=True)
        assert list(home.iterdir()) == []


def _cookiecutter_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return dict(os.environ, HOME=str(home))  # cookiecutter writes its replay files under HOME


class TestCookiecutterFromCheckout:
    """`cookiecutter templates/<name>` works without nvcf-helpers new."""

    @pytest.mark.parametrize("template", TEMPLATE_NAMES)
    def test_relative_template_path(self, tmp_path: Path, template: str) -> None:
        """cookiecutter, run in the checkout with a relative path, makes a complete project."""
        out = tmp_path / "out"
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "cookiecutter"),
                f"templates/{template}",
                "--no-input",
                "-o",
                str(out),
            ],
            cwd=REPOSITORY,
            env=_cookiecutter_env(tmp_path),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        (project,) = out.iterdir()
        assert (project / "function.json").is_file()
        assert list(project.rglob("nvcf_helpers/__init__.py"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built with the virtualenv's hatchling (no network)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPOSITORY),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("nvcf_helpers-*.whl")
    return built


class TestWheel:
    """The templates ship inside the wheel, and `nvcf-helpers new` works from it."""

    def test_templates_are_in_the_wheel(self, wheel: Path) -> None:
        """Every template file of the checkout is in the wheel under nvcf_helpers/_templates."""
        names = set(zipfile.ZipFile(wheel).namelist())
        expected = {
            "nvcf_helpers/_templates/" + str(path.relative_to(TEMPLATES))
            for path in TEMPLATES.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert expected <= names
        assert "nvcf_helpers/_templates/triton-model/cookiecutter.json" in names
        assert not [name for name in names if "__pycache__" in name]

    def test_new_works_from_the_installed_wheel(self, wheel: Path, tmp_path: Path) -> None:
        """With the unpacked wheel first on the path, new uses its _templates and modules."""
        site = tmp_path / "site"
        zipfile.ZipFile(wheel).extractall(site)
        code = (
            "import sys, nvcf_helpers; from nvcf_helpers.scaffold import templates_root; "
            "print(templates_root()); from nvcf_helpers.cli import main; "
            "sys.exit(main(sys.argv[1:]))"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "new",
                "triton-model",
                "--no-input",
                "-o",
                str(tmp_path / "out"),
            ],
            env=dict(_cookiecutter_env(tmp_path), PYTHONPATH=str(site)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == str(site / "nvcf_helpers" / "_templates")
        vendored = (
            tmp_path
            / "out"
            / "my-model-function"
            / "model_repository"
            / "my_model"
            / "1"
            / "nvcf_helpers"
        )
        assert filecmp.cmp(
            vendored / "context.py", site / "nvcf_helpers" / "context.py", shallow=False
        )
        assert Path(nvcf_helpers.__file__).parent != site / "nvcf_helpers"
