"""`python -m tinyllm` runs the `tinyllm` command."""

import sys

from .cli import main

sys.exit(main())
