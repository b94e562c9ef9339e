"""``python -m lets_core.cli``: the ``lets`` command (training subcommands re-execute this way)."""

import sys

from .program import main

sys.exit(main())
