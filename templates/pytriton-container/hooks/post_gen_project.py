"""Vendor the helpers run.py imports, and add client.py from the triton-model template."""

import json
import sys

from nvcf_helpers.scaffold.hooks import post_gen

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(post_gen("pytriton-container", CONTEXT))
