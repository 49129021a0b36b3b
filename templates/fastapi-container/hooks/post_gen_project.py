"""Write function.json and vendor the helpers app.py imports."""

import json
import sys

from nvcf_helpers.scaffold.hooks import post_gen

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(post_gen("fastapi-container", CONTEXT))
