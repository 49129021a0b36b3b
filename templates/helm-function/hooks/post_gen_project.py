"""Write function.json: the helm function that deploys the chart."""

import json
import sys

from nvcf_helpers.scaffold.hooks import post_gen

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(post_gen("helm-function", CONTEXT))
