"""NVCF's names are spelled once, in ``nvcf_helpers.names``, and read from there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nvcf_helpers import names

PACKAGE = Path(names.__file__).parent

# Header names and the forward pattern match in any case; environment names as written.
HEADER_NAMES = sorted(
    {
        value
        for key, value in vars(names).items()
        if key.isupper() and isinstance(value, str) and value.lower().startswith(("nvcf-", "x-amz"))
    }
    | set(names.CONTEXT_HEADERS.values()),
    key=len,
    reverse=True,
)
ENVIRONMENT_NAMES = sorted(names.CONTEXT_ENVIRONMENT.values())


def _spelled(text: str) -> list[str]:
    found = [name for name in HEADER_NAMES if name.lower() in text.lower()]
    return found + [name for name in ENVIRONMENT_NAMES if re.search(rf"\b{name}\b", text)]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(id(value))
    return found


def _literals(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module that is not a docstring, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


class TestOneSpelling:
    """A header, environment or forward-pattern name is a literal in ``names.py`` only."""

    def test_the_names_are_there(self) -> None:
        """The list this test searches for is not empty (the test can fail)."""
        assert _spelled("read nvcf-reqid") == [names.REQUEST_ID]
        assert _spelled("NVCF_FUNCTION_ID=1") == ["NVCF_FUNCTION_ID"]
        assert names.HEADER_FORWARD_PATTERN in HEADER_NAMES

    @pytest.mark.parametrize(
        "module",
        sorted(
            str(path.relative_to(PACKAGE))
            for path in PACKAGE.rglob("*.py")
            if path.name != "names.py" and "_templates" not in path.parts
        ),
    )
    def test_no_module_spells_a_name_again(self, module: str) -> None:
        """Code reads every NVCF name from ``nvcf_helpers.names``."""
        offences = [
            f"{module}:{line}: {text!r} spells {name}"
            for line, text in _literals(PACKAGE / module)
            for name in _spelled(text)
        ]
        assert not offences, "\n".join(offences)

    def test_response_member(self) -> None:
        """The zip member of an inline response is ``<reqid>.response``."""
        assert names.response_member("abc") == "abc.response"
