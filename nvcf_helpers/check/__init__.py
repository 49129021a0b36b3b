"""``nvcf-helpers check``: find deployment mistakes in seconds, before NVCF does.

One line per problem (``file:line: what is wrong; how to fix it``); exit 0
when clean, 1 on findings, 2 on a usage error. One module per kind of file:
``model_config``, ``dockerfile``, ``function_spec``, ``helm`` (a Helm chart).
The manual is the docs site's CLI reference.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nvcf_helpers.check.dockerfile import check_dockerfile, is_dockerfile, served_http_ports
from nvcf_helpers.check.finding import Finding
from nvcf_helpers.check.function_spec import check_function_spec
from nvcf_helpers.check.helm import CHART_FILE, chart_specs, check_chart, check_helm_definition
from nvcf_helpers.check.model_config import CONFIG_FILE, check_model_directory
from nvcf_helpers.errors import InvalidInputError

__all__ = [
    "CheckUsageError",
    "Finding",
    "Targets",
    "add_arguments",
    "check_paths",
    "collect",
    "run",
]

# Directories that never hold what a function deploys.
_SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})
_PYTRITON_MODEL_NAME = re.compile(
    r"""\b(?:model_name|MODEL_NAME)\s*[:=]\s*(?:str\s*=\s*)?["']([A-Za-z0-9_.-]+)["']"""
)


class CheckUsageError(InvalidInputError):
    """The path given to ``check`` does not exist or holds nothing it can check."""


@dataclass
class Targets:
    """The files found under the paths to check, by kind."""

    model_directories: list[Path] = field(default_factory=list)
    dockerfiles: list[Path] = field(default_factory=list)
    function_specs: list[Path] = field(default_factory=list)
    charts: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.model_directories)
            + len(self.dockerfiles)
            + len(self.function_specs)
            + len(self.charts)
        )


def _add_file(path: Path, targets: Targets, explicit: bool) -> None:
    if path.name == CONFIG_FILE:
        targets.model_directories.append(path.parent)
    elif path.name == CHART_FILE:
        targets.charts.append(path.parent)
    elif is_dockerfile(path):
        targets.dockerfiles.append(path)
    elif path.suffix == ".json" and (explicit or path.name.endswith("function.json")):
        targets.function_specs.append(path)
    elif explicit:
        raise CheckUsageError(
            f"{path} is not a config.pbtxt, Dockerfile or function.json (nor a Chart.yaml); "
            "give one of those, a model repository, a Helm chart or a project directory"
        )


def collect(paths: Iterable[str | os.PathLike[str]]) -> Targets:
    """Find what to check under each path.

    A file is checked by its name; a directory holding ``config.pbtxt`` is a
    model; any other directory is searched (hidden directories and virtual
    environments skipped) for model directories, Dockerfiles,
    ``function.json`` files and Helm charts (a directory holding ``Chart.yaml``,
    checked with the helm function definitions in it or beside it).

    Raises:
        CheckUsageError: a path does not exist or holds nothing to check.
    """
    targets = Targets()
    for raw in paths:
        path = Path(raw)
        before = len(targets)
        if path.is_file():
            _add_file(path, targets, explicit=True)
        elif not path.is_dir():
            raise CheckUsageError(
                f"{path} does not exist; give a model repository, a project, "
                "a Dockerfile or a function.json"
            )
        elif (path / CONFIG_FILE).is_file():
            targets.model_directories.append(path)
        else:
            for root, directories, files in os.walk(path):
                root_path = Path(root)
                if CONFIG_FILE in files:
                    targets.model_directories.append(root_path)
                    directories.clear()  # version directories hold code, not more models
                    continue
                if CHART_FILE in files:
                    directories.clear()  # templates and subcharts are the chart's own
                directories[:] = sorted(
                    d
                    for d in directories
                    # hidden, virtual environments, and unrendered template sources
                    if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES and "{{" not in d
                )
                for name in sorted(files):
                    _add_file(root_path / name, targets, explicit=False)
        if len(targets) == before:
            raise CheckUsageError(
                f"found nothing to check in {path}: expected a model repository "
                "(<model>/config.pbtxt), a Dockerfile, a function.json or a Helm chart"
            )
    _add_chart_specs(targets)
    return targets


def _add_chart_specs(targets: Targets) -> None:
    """Add the definitions that deploy each chart: a chart is checked with them."""
    known = {spec.resolve() for spec in targets.function_specs}
    for chart in targets.charts:
        for spec in chart_specs(chart):
            if spec.resolve() not in known:
                known.add(spec.resolve())
                targets.function_specs.append(spec)


def _models_beside(spec_path: Path, targets: Targets) -> set[str]:
    """Model names a function.json's project serves: model directories and PyTriton bindings."""
    project = spec_path.parent.resolve()
    names = {
        directory.name
        for directory in targets.model_directories
        if directory.resolve().is_relative_to(project)
    }
    for script in sorted(project.glob("*.py")):
        try:
            source = script.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "pytriton" in source:
            names.update(_PYTRITON_MODEL_NAME.findall(source))
    return names


def check_paths(
    paths: Iterable[str | os.PathLike[str]], *, hadolint: bool = True
) -> tuple[list[Finding], int]:
    """Check everything under ``paths``.

    Args:
        paths: files and directories, as for the command line.
        hadolint: run hadolint on Dockerfiles.

    Returns:
        The problems found (sorted by file and line) and how many files were checked.

    Raises:
        CheckUsageError: a path does not exist or holds nothing to check.
        HadolintNotFoundError: a Dockerfile is to be checked and hadolint is missing.
    """
    targets = collect(paths)
    findings: list[Finding] = []
    for directory in targets.model_directories:
        findings.extend(check_model_directory(directory))
    for dockerfile in targets.dockerfiles:
        findings.extend(check_dockerfile(dockerfile, hadolint=hadolint))
    for spec_path in targets.function_specs:
        dockerfiles = [
            d for d in targets.dockerfiles if d.parent.resolve() == spec_path.parent.resolve()
        ]
        ports = served_http_ports(dockerfiles[0]) if len(dockerfiles) == 1 else None
        _, spec_findings = check_function_spec(
            spec_path,
            known_models=_models_beside(spec_path, targets) or None,
            served_ports=ports or None,
        )
        findings.extend(spec_findings)
        findings.extend(check_helm_definition(spec_path))
    for chart in targets.charts:
        findings.extend(check_chart(chart, chart_specs(chart)))
    return sorted(set(findings), key=lambda f: (str(f.path), f.line, f.problem)), len(targets)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``check``'s arguments."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a model repository or model directory, a generated project, a Dockerfile, "
        "a function.json or a Helm chart",
    )
    parser.add_argument(
        "--no-hadolint",
        action="store_true",
        help="skip hadolint's rules (NVCF's own Dockerfile rules still apply)",
    )
    parser.epilog = (
        "Prints one line per problem (file:line: what is wrong; how to fix it). "
        "Exit status 0: no problem; 1: problems found; 2: usage error."
    )


def run(args: argparse.Namespace) -> int:
    """Run ``nvcf-helpers check``; the exit status follows the module docstring."""
    paths: Sequence[str] = args.paths
    try:
        findings, checked = check_paths(paths, hadolint=not args.no_hadolint)
    except CheckUsageError as exc:
        print(f"nvcf-helpers check: error: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    files = f"{checked} file{'s' if checked != 1 else ''}"
    if findings:
        count = len(findings)
        print(
            f"nvcf-helpers check: {count} problem{'s' if count != 1 else ''} in {files} checked",
            file=sys.stderr,
        )
        return 1
    print(f"nvcf-helpers check: {files} checked, no problems", file=sys.stderr)
    return 0
