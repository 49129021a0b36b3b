"""Add the model repository, client and model tests, made by the triton-model template."""

import json
import sys

from nvcf_helpers.scaffold.hooks import post_gen

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(post_gen("triton-container", CONTEXT))
