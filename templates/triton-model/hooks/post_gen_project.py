"""Copy the helpers the model imports into its version directory."""

import json
import sys

from nvcf_helpers.scaffold.hooks import post_gen

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(post_gen("triton-model", CONTEXT))
