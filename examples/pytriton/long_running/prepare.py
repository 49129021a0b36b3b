"""Write the job's input asset: scikit-learn's 8x8 digits as ``dataset.npz``.

Usage::

    python prepare.py                  # writes dataset.npz beside this file
    python prepare.py --output x.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Save the whole digits data set (1,797 labelled images) as an .npz."""
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "dataset.npz")
    args = parser.parse_args(argv)
    digits = load_digits()
    images = digits.images.astype(np.float32)
    labels = digits.target.astype(np.int64)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.output, images=images, labels=labels)
    print(f"wrote {len(images)} labelled images to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
