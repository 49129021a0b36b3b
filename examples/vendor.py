"""Copy the ``nvcf_helpers`` modules each example imports into the example.

An example's code imports ``nvcf_helpers``, and where it runs nothing of this
project is installed: a BYOM model runs on NVCF's stock Triton, a PyTriton
image is built from the example's directory alone. Like ``nvcf-helpers new``
does for a generated project, this copies the modules the code imports (and
the modules those import; the core is standard library only) next to it:

- a BYOM example: into each model's version directory
  (``model_repository/<model>/1/nvcf_helpers/``), which the Python backend
  puts on the model's import path;
- a PyTriton example: beside ``run.py`` (``nvcf_helpers/``), which its
  ``Dockerfile`` copies into the image.

The copies are not committed (``examples/.gitignore``): they are made from
the nvcf-helpers you have installed, so they never drift from it.

Usage::

    python vendor.py                    # every example
    python vendor.py byom/digits        # some examples (paths under examples/, or any path)
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

from nvcf_helpers.scaffold.hooks import vendor_helpers

EXAMPLES = Path(__file__).resolve().parent


def imported_helpers(sources: Iterable[Path]) -> set[str]:
    """The ``nvcf_helpers`` modules the given Python files import directly."""
    found: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                if parts[0] == "nvcf_helpers":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def destinations(example: Path) -> list[tuple[Path, list[Path]]]:
    """Where an example's helpers go, each with the Python files that import them."""
    repository = example / "model_repository"
    if repository.is_dir():
        return [
            (model_py.parent, [model_py])
            for model_py in sorted(repository.glob("*/[0-9]*/model.py"))
        ]
    sources = sorted(p for p in example.glob("*.py") if p.name not in ("client.py", "train.py"))
    return [(example, sources)]


def vendor(example: Path) -> list[Path]:
    """Vendor the helpers into one example; returns the directories written."""
    written = []
    for destination, sources in destinations(example):
        roots = imported_helpers(sources)
        if not roots:
            continue
        names = vendor_helpers(destination, sorted(roots))
        written.append(destination / "nvcf_helpers")
        print(f"{destination / 'nvcf_helpers'}: {', '.join(names)}")
    return written


def main(argv: list[str] | None = None) -> int:
    """Vendor the helpers into the examples named (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", type=Path, help="example directories")
    args = parser.parse_args(argv)
    chosen = args.examples or [
        path.parent.parent if path.parent.name == "model_repository" else path.parent
        for path in sorted(EXAMPLES.glob("*/*/function.json"))
    ]
    for example in chosen:
        directory = example if example.is_dir() else EXAMPLES / example
        if not directory.is_dir():
            print(f"vendor.py: error: {example} is not an example directory", file=sys.stderr)
            return 2
        vendor(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
