import sys

from nvcf_helpers.cli import main

sys.exit(main())
