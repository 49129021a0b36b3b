"""Train the streaming example's language model: word trigrams with back-off.

The corpus is real English text that ships inside scikit-learn: the
descriptions of its bundled data sets (``sklearn/datasets/descr/*.rst``,
about 6,800 words; nothing is downloaded). The model counts which word follows
each pair of words, each word, and how often each word occurs; ``lm.py``
samples from those counts. Training is counting, so it is exact and
reproducible, and takes well under a second.

Usage::

    python train.py                 # writes lm.json beside this file
    python train.py --output x.json
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
from pathlib import Path

from lm import train

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "lm.json"


def corpus() -> str:
    """The text of scikit-learn's data set descriptions, in a fixed (sorted) order."""
    folder = importlib.resources.files("sklearn.datasets") / "descr"
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".rst"))
    return "\n".join((folder / name).read_text(encoding="utf-8") for name in names)


def main(argv: list[str] | None = None) -> int:
    """Count the corpus's n-grams and save them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the model (.json)"
    )
    args = parser.parse_args(argv)
    model = train(corpus())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(model, separators=(",", ":")), encoding="utf-8")
    print(
        f"counted {model['tokens']} tokens, {len(model['vocab'])} distinct; "
        f"model written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
