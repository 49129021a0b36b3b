"""``python -m nvcf_helpers.local``: the ``local`` command alone, as LocalNvcf starts it."""

from __future__ import annotations

import argparse
import sys

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local import add_arguments, run


def main() -> int:
    """Parse the ``nvcf-helpers local`` options and run it."""
    parser = argparse.ArgumentParser(
        prog="nvcf-helpers local", description="run a function behind a local NVCF"
    )
    add_arguments(parser)
    args = parser.parse_args()
    try:
        return run(args)
    except NvcfHelperError as exc:
        print(f"nvcf-helpers local: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
