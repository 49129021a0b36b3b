"""``nvcf-helpers new``: generate an NVCF function project from a template.

The templates ship inside the wheel (``nvcf_helpers/_templates``) and, in a
checkout, in ``templates/``. A refused variable is reported in one line and
nothing is left on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nvcf_helpers
from nvcf_helpers.errors import InvalidInputError, NvcfHelperError

__all__ = [
    "ScaffoldError",
    "TemplateNotFoundError",
    "add_arguments",
    "generate",
    "list_templates",
    "run",
    "template_path",
    "templates_root",
]


class ScaffoldError(NvcfHelperError):
    """A project could not be generated."""


class TemplateNotFoundError(ScaffoldError, InvalidInputError):
    """The named template does not exist."""


def templates_root() -> Path:
    """The directory holding the templates: inside the installed package, else the checkout's.

    Raises:
        ScaffoldError: neither exists (a broken install).
    """
    package = Path(nvcf_helpers.__file__).resolve().parent
    for candidate in (package / "_templates", package.parent / "templates"):
        if candidate.is_dir() and any(candidate.glob("*/cookiecutter.json")):
            return candidate
    raise ScaffoldError(
        f"no templates found beside {package}: reinstall nvcf-helpers "
        "(pip install --force-reinstall 'nvcf-helpers[templates]')"
    )


def list_templates() -> list[str]:
    """The names of the templates that ship with the package, sorted."""
    try:
        root = templates_root()
    except ScaffoldError:
        return []
    return sorted(path.parent.name for path in root.glob("*/cookiecutter.json"))


def template_path(name: str) -> Path:
    """The directory of template ``name``.

    Raises:
        TemplateNotFoundError: there is no such template.
    """
    path = templates_root() / name
    if not (path / "cookiecutter.json").is_file():
        raise TemplateNotFoundError(
            f"there is no template {name!r}: choose one of {', '.join(list_templates())}"
        )
    return path


def _variables(template: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((template / "cookiecutter.json").read_text("utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def parse_assignments(items: Sequence[str], variables: Mapping[str, Any]) -> dict[str, str]:
    """Turn ``KEY=VALUE`` words into cookiecutter's extra context.

    Raises:
        InvalidInputError: a word is not ``KEY=VALUE``, or names no variable of the template.
    """
    known = ", ".join(variables)
    extra: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"{item!r} is not KEY=VALUE: write e.g. model_name=detector")
        if key not in variables:
            raise InvalidInputError(f"the template has no variable {key!r}: use one of {known}")
        choices = variables[key]
        if isinstance(choices, list) and value not in [str(c) for c in choices]:
            raise InvalidInputError(
                f"{key} {value!r} is not valid: use one of {', '.join(str(c) for c in choices)}"
            )
        extra[key] = value
    return extra


@contextlib.contextmanager
def _quiet_cookiecutter() -> Iterator[None]:
    """Keep cookiecutter's own logging (tracebacks on hook failure) off the terminal."""
    logger = logging.getLogger("cookiecutter")
    previous = logger.propagate, logger.level
    handler = logging.NullHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = previous


def generate(
    template: str,
    output_dir: str | os.PathLike[str] = ".",
    *,
    no_input: bool = False,
    extra_context: Mapping[str, str] | None = None,
) -> Path:
    """Generate a project from one of the package's templates.

    Args:
        template: ``triton-model``, ``triton-container``, ``pytriton-container`` or
            ``fastapi-container``.
        output_dir: where the project directory is created.
        no_input: take defaults instead of prompting for what ``extra_context`` lacks.
        extra_context: variable values (e.g. ``{"model_name": "detector"}``).

    Returns:
        The generated project's directory.

    Raises:
        TemplateNotFoundError: no such template.
        InvalidInputError: a value was refused; the message says why.
        ScaffoldError: the project directory already exists, or generation failed.
    """
    from cookiecutter.exceptions import (
        CookiecutterException,
        FailedHookException,
        OutputDirExistsException,
    )
    from cookiecutter.main import cookiecutter

    from nvcf_helpers.scaffold.hooks import ERRORS_FILE_ENV

    path = template_path(template)
    extra = parse_assignments(
        [f"{k}={v}" for k, v in (extra_context or {}).items()], _variables(path)
    )
    with tempfile.TemporaryDirectory(prefix="nvcf-new-") as scratch:
        # A private cookiecutter config: no replay files or clones in the user's home.
        config = Path(scratch) / "config.yaml"
        config.write_text(
            f"replay_dir: {json.dumps(str(Path(scratch) / 'replay'))}\n"
            f"cookiecutters_dir: {json.dumps(str(Path(scratch) / 'clones'))}\n",
            encoding="utf-8",
        )
        errors = Path(scratch) / "errors.txt"
        previous = os.environ.get(ERRORS_FILE_ENV)
        os.environ[ERRORS_FILE_ENV] = str(errors)
        try:
            with _quiet_cookiecutter():
                project = cookiecutter(
                    str(path),
                    no_input=no_input,
                    extra_context=extra,
                    output_dir=str(output_dir),
                    config_file=str(config),
                )
        except OutputDirExistsException as exc:
            raise ScaffoldError(
                f"{exc}: choose another name (project_name=...) or output directory (-o), "
                "or remove the existing one"
            ) from None
        except FailedHookException:
            reported = errors.read_text("utf-8").strip() if errors.is_file() else ""
            message = reported.splitlines()[0] if reported else f"the {template} template failed"
            raise InvalidInputError(message) from None
        except CookiecutterException as exc:
            raise ScaffoldError(f"the {template} template failed: {exc}") from None
        finally:
            if previous is None:
                os.environ.pop(ERRORS_FILE_ENV, None)
            else:
                os.environ[ERRORS_FILE_ENV] = previous
    return Path(project)


_NEXT_STEPS = {
    "triton-model": (
        "nvcf-helpers serve model_repository   # then, in another terminal:\n  python client.py"
    ),
    "triton-container": (
        "nvcf-helpers serve model_repository   # run it here; docker build . for NVCF\n"
        "  python client.py"
    ),
    "pytriton-container": "python run.py   # then, in another terminal:\n  python client.py",
    "helm-function": (
        "nvcf-helpers check .   # the chart and function.json, as NVCF checks them\n"
        "  helm package chart    # then push it to NGC: see README.md"
    ),
    "fastapi-container": (
        "nvcf-helpers local --spec function.json -- python -m uvicorn app:app --port {port}\n"
        "  python client.py   # in another terminal"
    ),
}


class _IntermixedParser(argparse.ArgumentParser):
    """A parser whose ``parse_known_args`` accepts positionals between options."""

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``new``'s arguments."""
    names = list_templates()
    parser.add_argument("template", metavar="TEMPLATE", choices=names, help=", ".join(names))
    parser.add_argument(
        "-o", "--output-dir", default=".", metavar="DIR", help="where to create the project"
    )
    parser.add_argument(
        "--no-input", action="store_true", help="take the defaults instead of prompting"
    )
    parser.add_argument(
        "assignments",
        nargs="*",
        metavar="KEY=VALUE",
        help="template variables, e.g. model_name=detector max_batch_size=0",
    )
    # argparse cannot take positionals after options ("new triton-model -o out
    # model_name=x") unless it parses intermixed arguments; the top-level parser
    # is shared, so only this sub-command's parser is switched.
    parser.__class__ = _IntermixedParser


def run(args: argparse.Namespace) -> int:
    """Generate the project and say what to run next."""
    variables = _variables(template_path(args.template))
    extra = parse_assignments(args.assignments, variables)
    project = generate(args.template, args.output_dir, no_input=args.no_input, extra_context=extra)
    print(f"created {project}")
    print(f"next:\n  cd {project}\n  {_NEXT_STEPS.get(args.template, '')}")
    sys.stdout.flush()
    return 0
