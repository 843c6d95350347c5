"""``python -m latentgeo.cli``: the same command line as ``latentgeo``."""

import sys

from latentgeo.cli import main

sys.exit(main())
