"""A Griffe extension: the reStructuredText bits of our docstrings, as Markdown.

The package's docstrings are Google style, with two habits from Sphinx that
Markdown does not understand:

- cross-reference roles (``:func:`serve```, ``:class:`~nvcf_helpers.RequestContext```)
  become mkdocstrings cross-references. A name the package defines links to its
  documentation when it is documented and shows as code otherwise; a name of
  the package that no longer exists stays a required reference, so the strict
  build fails and the stale docstring gets fixed. Names from other libraries
  are shown as code.
- literal blocks introduced by ``::`` become fenced code blocks (Python when
  the block parses as Python).

Only the documentation build uses this file (``mkdocs.yml``: mkdocstrings'
``extensions``); the docstrings themselves stay as they are.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import griffe

_PACKAGE = "nvcf_helpers"
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(?P<text>[^`]+)`")
_EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")


def _exists(root: griffe.Module, path: str) -> bool:
    """Whether ``path`` (``nvcf_helpers.x.y``) names an object of the package."""
    parts = path.split(".")
    if parts[0] != root.name:
        return False
    try:
        root[".".join(parts[1:])] if len(parts) > 1 else root
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def _resolve(obj: griffe.Object, root: griffe.Module, target: str) -> str | None:
    """The full path of ``target`` as written in ``obj``'s docstring, if it is the package's."""
    if target.split(".", maxsplit=1)[0] == root.name:
        return target
    head, _, rest = target.partition(".")
    try:
        base = obj.resolve(head)
    except griffe.NameResolutionError:
        return None
    return f"{base}.{rest}" if rest else base


def _role(obj: griffe.Object, root: griffe.Module, match: re.Match[str]) -> str:
    text = match["text"].strip()
    explicit = _EXPLICIT_TITLE.match(text)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = text.lstrip("~")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    target = target.lstrip("~.")
    path = _resolve(obj, root, target)
    if path is None:
        if "." in target:  # another library's name, e.g. importlib.util.find_spec
            return f"`{title}`"
        return f"[`{title}`][{target}]"  # unknown: a required reference fails the build
    if path.split(".", maxsplit=1)[0] != root.name:
        return f"`{title}`"
    if not _exists(root, path):
        return f"[`{title}`][{path}]"  # stale: a required reference fails the build
    return f'<autoref identifier="{path}" optional>`{title}`</autoref>'


def _language(code: str) -> str:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "text"
    # `tool --flag` parses as a subtraction; no real example is a bare operation.
    operations = (ast.BinOp, ast.UnaryOp, ast.Compare)
    if any(isinstance(s, ast.Expr) and isinstance(s.value, operations) for s in tree.body):
        return "text"
    return "python"


def _literal_blocks(text: str) -> str:
    """``Intro::`` followed by an indented block becomes ``Intro:`` and a fenced block."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.rstrip()
        if not stripped.endswith("::"):
            out.append(line)
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        end = index + 1
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
        ):
            end += 1
        block = lines[index + 1 : end]
        while block and not block[-1].strip():
            block.pop()
        if not any(item.strip() for item in block):
            out.append(line)
            index += 1
            continue
        intro = stripped[:-2].rstrip()
        if intro.strip():
            out.append(intro if stripped[-3] == " " else f"{intro}:")
        code = textwrap.dedent("\n".join(block)).strip("\n")
        pad = " " * indent
        out.append("")
        out.append(f"{pad}```{_language(code)}")
        out.extend(f"{pad}{item}" if item else "" for item in code.split("\n"))
        out.append(f"{pad}```")
        out.append("")
        index = end
    return "\n".join(out)


def _convert(obj: griffe.Object, root: griffe.Module) -> None:
    if obj.docstring is not None:
        value = _literal_blocks(obj.docstring.value)
        obj.docstring.value = _ROLE.sub(lambda match: _role(obj, root, match), value)
    for member in obj.members.values():
        if not member.is_alias:
            _convert(member, root)  # type: ignore[arg-type]


class SphinxMarkup(griffe.Extension):
    """Rewrites the package's docstrings once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name == _PACKAGE:
            _convert(pkg, pkg)
