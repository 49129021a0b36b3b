"""Refuse bad variables with one line, before any file is generated."""

import json
import sys

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

try:
    from nvcf_helpers.scaffold.hooks import pre_gen
except ImportError:
    sys.exit(
        "ERROR: this template needs nvcf-helpers in the Python that runs cookiecutter: "
        "pip install 'nvcf-helpers[templates]', or use `nvcf-helpers new`"
    )

sys.exit(pre_gen("fastapi-container", CONTEXT))
