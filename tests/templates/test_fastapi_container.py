"""The fastapi-container template: bakes, refusals, its own tests, and its app behind a local NVCF.

Bakes over the option matrix give complete projects that ``nvcf-helpers
check`` passes and that carry exactly the runtime and the FastAPI adapter.
The integration tests serve generated projects as their image does (the
Dockerfile's uvicorn command) behind a local NVCF, invoke them with their
request.json, and read the captured log lines; they also run each project's
own tests and the commands its README shows.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from template_support import TEMPLATES, bake_ok
from test_bake import VENDORED

from nvcf_helpers.check import check_paths
from nvcf_helpers.client import NvcfApiError
from nvcf_helpers.local import LocalNvcf
from nvcf_helpers.scaffold.hooks import VENDOR_ROOTS, vendored_modules
from nvcf_helpers.spec import load_spec

TEMPLATE = "fastapi-container"
MATRIX: list[dict[str, str]] = [
    {},
    {"long_running": "yes"},
    {"long_running": "no", "project_name": "scorer"},
]
#: How many tests each generated project's own run passes.
OWN_TESTS = {"no": 8, "yes": 10}


def _files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _image_command(project: Path, port: str) -> list[str]:
    """The Dockerfile's CMD as this machine runs it: this Python, 127.0.0.1, ``port``."""
    (line,) = re.findall(r"^CMD (\[.*\])$", (project / "Dockerfile").read_text(), re.M)
    argv: list[str] = json.loads(line)
    assert argv[:4] == ["python3", "-m", "uvicorn", "app:app"]
    argv[0] = sys.executable
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = port
    return argv


def _with_venv_path() -> dict[str, str]:
    """The environment with this Python's directory first on PATH (for `python`, `nvcf-helpers`)."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _command_blocks(markdown: str) -> list[str]:
    """The fenced blocks without a language (the README's commands; ```text is a listing)."""
    fences = re.findall(r"^```(\w*)\n(.*?)^```$", markdown, re.MULTILINE | re.DOTALL)
    return [body for language, body in fences if not language]


@pytest.fixture(scope="module")
def baked(cookies_session: Any) -> Any:
    """Bake each variant once for the module; returns a lookup function."""
    cache: dict[tuple[tuple[str, str], ...], Path] = {}

    def lookup(extra: dict[str, str]) -> Path:
        key = tuple(sorted(extra.items()))
        if key not in cache:
            cache[key] = bake_ok(cookies_session, TEMPLATE, **extra)
        return cache[key]

    return lookup


@pytest.mark.parametrize("extra", MATRIX, ids=lambda extra: ",".join(extra.values()) or "default")
class TestBake:
    """Each combination of options gives a complete, valid project."""

    def test_no_template_syntax_left(self, baked: Any, extra: dict[str, str]) -> None:
        """No generated file holds a cookiecutter placeholder or Jinja tag."""
        project = baked(extra)
        leftovers = [
            str(path.relative_to(project))
            for path in _files(project)
            for marker in ("{{ cookiecutter.", "{{cookiecutter.", "{%", "%}")
            if marker in path.read_text(encoding="utf-8", errors="replace")
        ]
        assert leftovers == []
        assert not any("{{" in str(path) for path in _files(project))

    def test_python_files_compile(self, baked: Any, extra: dict[str, str]) -> None:
        """Every generated Python file parses."""
        for path in _files(baked(extra)):
            if path.suffix == ".py":
                ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def test_generated_code_is_lint_clean(self, baked: Any, extra: dict[str, str]) -> None:
        """Generated Python passes ruff (E, F, W, I, UP, B) and its formatter."""
        project = baked(extra)
        options = ["--isolated", "--line-length", "100", "--exclude", "nvcf_helpers"]
        for command in (
            ["check", *options, "--select", "E,F,W,I,UP,B", "."],
            ["format", "--check", *options, "."],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "ruff", *command],
                cwd=project,
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stdout

    def test_check_is_clean(
        self, baked: Any, extra: dict[str, str], hadolint_available: bool
    ) -> None:
        """`nvcf-helpers check` (hadolint and NVCF's rules) finds nothing wrong."""
        findings, checked = check_paths([baked(extra)], hadolint=hadolint_available)
        assert [str(f) for f in findings] == []
        assert checked == 2  # the Dockerfile and function.json

    def test_function_json_names_the_apps_routes(self, baked: Any, extra: dict[str, str]) -> None:
        """function.json: a container on port 8000 whose routes app.py serves."""
        project = baked(extra)
        spec = load_spec(project / "function.json")
        assert (spec.kind, spec.api_body_format) == ("container", "CUSTOM")
        assert spec.container_image == f"nvcr.io/<org>/<team>/{project.name}:1.0"
        assert (spec.inference_port, spec.health.port) == (8000, 8000)
        app = (project / "app.py").read_text()
        assert f'INFERENCE_URL = "{spec.inference_path}"' in app
        assert f'HEALTH_URI = "{spec.health.uri}"' in app

    def test_dockerfile_runs_uvicorn_as_nvcf_needs(self, baked: Any, extra: dict[str, str]) -> None:
        """Non-root, port 8000, an exec-form CMD running uvicorn, and a COPY for every file."""
        project = baked(extra)
        text = (project / "Dockerfile").read_text()
        assert "USER nvcf\n" in text
        assert "EXPOSE 8000\n" in text
        argv = _image_command(project, "8000")
        assert argv[argv.index("--port") + 1] == "8000"
        assert "--timeout-graceful-shutdown" in argv
        for line in text.splitlines():
            if line.startswith("COPY"):
                assert (project / line.split()[-2]).exists(), line

    def test_readme_commands_refer_to_real_things(self, baked: Any, extra: dict[str, str]) -> None:
        """`python X`, `nvcf-helpers CMD` and `pip install -r X` name real things."""
        from nvcf_helpers.cli import COMMANDS

        project = baked(extra)
        blocks = _command_blocks((project / "README.md").read_text())
        commands = [line.split("#")[0].split() for block in blocks for line in block.splitlines()]
        seen = set()
        for words in commands:
            if words[:1] == ["python"]:
                assert (project / words[1]).is_file(), words
            elif words[:1] == ["nvcf-helpers"]:
                assert words[1] in COMMANDS, words
                seen.add(words[1])
            elif words[:3] == ["pip", "install", "-r"]:
                assert (project / words[3]).is_file(), words
        assert seen == {"check", "local", "invoke", "function", "deploy"}


class TestVendoring:
    """The FastAPI adapter travels into this template's projects, and into no other's."""

    def test_vendored_runtime_is_exactly_pinned(self, baked: Any) -> None:
        """The project gets the runtime and nvcf_helpers.fastapi, nothing else."""
        names = sorted(p.name for p in (baked({}) / "nvcf_helpers").glob("*.py"))
        assert names == VENDORED[TEMPLATE]
        assert names == vendored_modules(VENDOR_ROOTS[TEMPLATE])

    @pytest.mark.parametrize("other", sorted(set(VENDOR_ROOTS) - {TEMPLATE}))
    def test_other_templates_do_not_carry_the_adapter(self, other: str) -> None:
        """The other templates' images never get the FastAPI adapter."""
        assert "fastapi.py" not in vendored_modules(VENDOR_ROOTS[other])

    def test_the_copy_imports_on_its_own(self, baked: Any, tmp_path: Path) -> None:
        """The copy's runtime needs only the standard library; its adapter only FastAPI."""
        project = baked({})
        core = "import sys; sys.path.insert(0, sys.argv[1]); import nvcf_helpers; print('ok')"
        adapter = (
            "import sys; sys.path.insert(0, sys.argv[1]); import nvcf_helpers.fastapi as a; "
            "print(a.__file__)"
        )
        for flags, code, expected in (
            (["-I", "-S"], core, "ok"),  # no site-packages at all
            (["-I"], adapter, str(project / "nvcf_helpers" / "fastapi.py")),
        ):
            result = subprocess.run(
                [sys.executable, *flags, "-c", code, str(project)],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == expected


class TestGenerating:
    """`nvcf-helpers new` and cookiecutter make it; bad values are refused, leaving nothing."""

    def test_bad_project_name(self, cookies: Any, capfd: pytest.CaptureFixture[str]) -> None:
        """The hook names the variable and what is allowed; no file is left."""
        result = cookies.bake(
            template=str(TEMPLATES / TEMPLATE), extra_context={"project_name": "-x"}
        )
        assert isinstance(result.exception, FailedHookException)
        errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1
        assert "project_name '-x' is not valid" in errors[0]
        output = Path(str(cookies._new_output_dir())).parent
        assert [p for p in output.rglob("*") if p.is_file()] == []

    def test_a_model_variable_is_not_one_of_its_own(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """`nvcf-helpers new` refuses the Triton templates' variables for it."""
        from nvcf_helpers.cli import main

        status = main(["new", TEMPLATE, "-o", str(tmp_path), "--no-input", "model_name=x"])
        assert status == 1
        assert capsys.readouterr().err == (
            "nvcf-helpers new: error: the template has no variable 'model_name': "
            "use one of project_name, long_running\n"
        )
        assert list(tmp_path.iterdir()) == []

    def test_new_says_what_to_run_next(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """`nvcf-helpers new fastapi-container` makes the project and names the local NVCF."""
        from nvcf_helpers.cli import main

        assert main(["new", TEMPLATE, "-o", str(tmp_path), "--no-input"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0] == f"created {tmp_path / 'my-fastapi-function'}"
        assert "nvcf-helpers local --spec function.json -- python -m uvicorn app:app" in out

    def test_cookiecutter_from_the_checkout(self, tmp_path: Path) -> None:
        """`cookiecutter templates/fastapi-container` works without nvcf-helpers new."""
        home = tmp_path / "home"  # cookiecutter writes its replay files under HOME
        home.mkdir()
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "cookiecutter"),
                f"templates/{TEMPLATE}",
                "--no-input",
                "-o",
                str(tmp_path / "out"),
            ],
            cwd=TEMPLATES.parent,
            env=dict(os.environ, HOME=str(home)),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        project = tmp_path / "out" / "my-fastapi-function"
        assert load_spec(project / "function.json").inference_path == "/infer"
        assert (project / "nvcf_helpers" / "fastapi.py").is_file()


@pytest.fixture(scope="module")
def served_long_running(baked: Any) -> Iterator[tuple[LocalNvcf, Path]]:
    """The long_running=yes project, served as its image is, behind a local NVCF."""
    project = baked({"long_running": "yes"})
    log = project.parent / "local-nvcf.log"
    with LocalNvcf(
        project / "function.json",
        _image_command(project, "{port}"),
        cwd=project,
        output=log,
        startup_timeout=60,
    ) as nvcf:
        yield nvcf, log


@pytest.mark.integration
class TestLocalNvcf:
    """Done when: long_running=yes, invoked through a local NVCF with request.json, logs its id."""

    def test_request_json_is_answered_and_logged_with_its_id(
        self, baked: Any, served_long_running: tuple[LocalNvcf, Path]
    ) -> None:
        """200 with the model's answer; every line naming the request is NVCF-format."""
        nvcf, log = served_long_running
        request = json.loads((baked({"long_running": "yes"}) / "request.json").read_text())
        result = nvcf.client().invoke(nvcf.function_id, request)
        assert result.status == 200
        assert result.json() == {"values": [v * request["scale"] for v in request["values"]]}
        assert result.request_id
        lines = _lines_with(log, f"[reqid={result.request_id}]")
        assert any(line.endswith(" answered 3 values") for line in lines)
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
        for line in lines:
            assert re.match(rf"{stamp} \[INFO\] \[INFERENCE\] \[reqid={result.request_id}\] ", line)

    def test_bad_body_is_a_problem_without_traceback(
        self, served_long_running: tuple[LocalNvcf, Path]
    ) -> None:
        """A body the request model refuses: a 422 problem naming the field; no traceback."""
        nvcf, log = served_long_running
        with pytest.raises(NvcfApiError) as caught:
            nvcf.client().invoke(nvcf.function_id, {"values": "many", "scale": 2})
        assert caught.value.status == 422
        assert caught.value.detail.startswith("body.values: Input should be a valid list")
        (line,) = _lines_with(log, "rejected: body.values: ")
        assert "[reqid=" in line
        assert "Traceback" not in log.read_text()


def _lines_with(log: Path, text: str, timeout: float = 10.0) -> list[str]:
    """The lines of ``log`` holding ``text``, once there is one (output arrives through a pipe)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if text in line]
        if lines or time.monotonic() > deadline:
            assert lines, f"no line with {text!r} in:\n{log.read_text()[-3000:]}"
            return lines
        time.sleep(0.1)


def _readme_section(project: Path, heading: str) -> list[list[str]]:
    """The command lines of the README section ``heading``, split as a shell splits them."""
    text = (project / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = _command_blocks(section)
    return [
        shlex.split(line, comments=True) for block in blocks for line in block.splitlines() if line
    ]


def _id(output: str, label: str) -> str:
    """The id printed on the line ``<label>  <id>`` (``function id``, ``version id``)."""
    found = re.search(rf"^{label} +(\S+)$", output, re.M)
    assert found is not None, output
    return found[1]


@pytest.mark.integration
class TestReadme:
    """The README's commands, run as written (the placeholders filled in)."""

    def _run(self, project: Path, words: list[str], env: dict[str, str]) -> str:
        result = subprocess.run(
            words, cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{shlex.join(words)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def test_run_it_on_this_machine(self, baked: Any, tmp_path: Path) -> None:
        """`check`, `local --spec ... -- uvicorn`, then `invoke -d @request.json`, `client.py`.

        (`pip install` is this environment's; `pytest` is test_generated_tests_pass.)
        """
        project = baked({})
        commands = _readme_section(project, "Run it on this machine (no Docker, no GPU)")
        assert [words[0] for words in commands] == [
            "pip", "nvcf-helpers", "nvcf-helpers", "nvcf-helpers", "python", "pytest"
        ]  # fmt: skip
        _, check, local, invoke, client, _ = commands
        path = _with_venv_path()
        env = {**os.environ, **path}
        self._run(project, check, env)
        assert local[:2] == ["nvcf-helpers", "local"]
        with LocalNvcf(
            None, extra_args=local[2:], cwd=project, env=path, output=tmp_path / "out"
        ) as nvcf:
            nvcf.wait_for_status("ACTIVE")
            env["NVCF_BASE_URL"] = nvcf.base_url
            answers = [json.loads(self._run(project, words, env)) for words in (invoke, client)]
        assert answers == [{"values": [1.0, 2.0, 4.0]}] * 2

    def test_create_deploy_and_invoke(self, baked: Any, tmp_path: Path) -> None:
        """`local --image-command`, then `function create`, `deploy create --wait`, `invoke`."""
        project = baked({})
        commands = _readme_section(project, "Create, deploy and invoke it on the local NVCF")
        local, create, deploy, invoke = commands
        assert local[:3] == ["nvcf-helpers", "local", "--image-command"]
        path = _with_venv_path()
        with LocalNvcf(
            None, extra_args=local[2:], cwd=project, env=path, output=tmp_path / "out"
        ) as nvcf:
            env = {**os.environ, **path, "NVCF_BASE_URL": nvcf.base_url}
            created = self._run(project, create, env)
            ids = {
                "FUNCTION_ID": _id(created, "function id"),
                "VERSION_ID": _id(created, "version id"),
            }
            for words in (deploy, invoke):
                answer = self._run(project, [ids.get(word, word) for word in words], env)
        assert json.loads(answer) == {"values": [1.0, 2.0, 4.0]}


@pytest.mark.integration
@pytest.mark.parametrize("long_running", sorted(OWN_TESTS))
def test_generated_tests_pass(cookies: Any, long_running: str) -> None:
    """The project's own pytest run (local NVCF, uvicorn, check, SIGTERM) passes, skipping none."""
    project = bake_ok(cookies, TEMPLATE, long_running=long_running)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(rf"{OWN_TESTS[long_running]} passed in [\d.]+s", summary), summary
