"""`python -m mbasr`: the same command line as `mbasr` (mbasr.cli)."""

import sys

from mbasr.cli import main

sys.exit(main())
