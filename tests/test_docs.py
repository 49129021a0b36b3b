"""The documentation site's sources: they keep up with the code they describe.

``make docs`` builds the site strictly (CI runs it); these tests catch the
same drift sooner, without a build: a header, a command or a README section
the pages lost track of, and what the build-time hooks do to docstrings.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from nvcf_helpers import names
from nvcf_helpers.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _hook(name: str) -> ModuleType:
    """A module of ``docs/_hooks`` (not a package: MkDocs loads them by path)."""
    spec = importlib.util.spec_from_file_location(
        f"docs_hook_{name}", DOCS / "_hooks" / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestContractPage:
    """docs/contract.md describes every header the library reads."""

    def test_every_context_header_is_in_the_table(self) -> None:
        """Each header RequestContext reads has a row naming its field."""
        page = (DOCS / "contract.md").read_text(encoding="utf-8")
        for field, header in names.CONTEXT_HEADERS.items():
            assert f"| `{header}` | `{field}` |" in page, header


class TestCliPage:
    """docs/cli.md asks for the help of every command the parser has."""

    def test_every_command_has_a_section(self) -> None:
        """A new subcommand needs its own section and help marker."""
        page = (DOCS / "cli.md").read_text(encoding="utf-8")
        marked = set(re.findall(r"^<!-- cli-help: *([\w-]*) *-->$", page, re.MULTILINE))
        (subparsers,) = [
            action
            for action in build_parser()._actions
            if isinstance(action, argparse._SubParsersAction)
        ]
        commands = set(subparsers.choices)
        assert commands
        assert marked == commands | {""}
        for command in commands:
            assert f"## nvcf-helpers {command}\n" in page

    def test_help_is_rendered_from_the_parser(self) -> None:
        """The marker becomes the command's --help, in a text block."""
        pytest.importorskip("mkdocs")
        hook = _hook("cli_reference")
        page = type("Page", (), {"file": type("File", (), {"src_uri": "cli.md"})()})()
        markdown = hook.on_page_markdown("<!-- cli-help: check -->\n", page, None, None)
        assert markdown.startswith("```text\nusage: nvcf-helpers check")
        assert "--no-hadolint" in markdown


class TestReadmeMarkers:
    """The README sections docs pages include exist and hold code."""

    def test_every_included_section_has_code(self) -> None:
        """getting-started.md shows README's own commands, never a copy."""
        pytest.importorskip("mkdocs")
        hook = _hook("readme")
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
        headings = re.findall(r"^<!-- readme-code: *(.+?) *-->$", pages, re.MULTILINE)
        assert headings
        for heading in headings:
            blocks = hook._section_code(readme, heading)
            assert all(block.startswith("```") for block in blocks)


class TestSphinxMarkup:
    """The Griffe extension turns reST habits in docstrings into Markdown."""

    @pytest.fixture
    def converted(self, tmp_path: Path) -> dict[str, str]:
        griffe = pytest.importorskip("griffe")
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text('"""Package."""\nfrom pkg.mod import run\n')
        (package / "mod.py").write_text(
            textwrap.dedent(
                '''
                """Module.

                Call :func:`run`, see :class:`~pkg.mod.Thing`, :func:`gone`,
                :func:`pkg.mod.missing` and :func:`importlib.util.find_spec`.

                Usage::

                    run()
                    x = 1

                Command line::

                    pkg --help
                """


                class Thing:
                    """A thing."""


                def run() -> None:
                    """Runs."""
                '''
            )
        )
        loaded = griffe.load("pkg", search_paths=[str(tmp_path)])
        _hook("sphinx_markup")._convert(loaded, loaded)
        return {"mod": loaded["mod"].docstring.value}

    def test_known_names_become_optional_references(self, converted: dict[str, str]) -> None:
        """A name the package defines links when documented, shows as code otherwise."""
        text = converted["mod"]
        assert '<autoref identifier="pkg.mod.run" optional>`run`</autoref>' in text
        assert '<autoref identifier="pkg.mod.Thing" optional>`Thing`</autoref>' in text

    def test_stale_names_stay_required(self, converted: dict[str, str]) -> None:
        """A name that no longer exists fails the strict build instead of vanishing."""
        assert "[`gone`][gone]" in converted["mod"]
        assert "[`pkg.mod.missing`][pkg.mod.missing]" in converted["mod"]

    def test_other_libraries_are_code(self, converted: dict[str, str]) -> None:
        """Names outside the package are shown as code, without a link."""
        assert "and `importlib.util.find_spec`." in converted["mod"]

    def test_literal_blocks_become_fences(self, converted: dict[str, str]) -> None:
        """``Usage::`` and its indented block become ``Usage:`` and a fenced block."""
        text = converted["mod"]
        assert "Usage:\n\n```python\nrun()\nx = 1\n```" in text
        assert "Command line:\n\n```text\npkg --help\n```" in text
