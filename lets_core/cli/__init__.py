"""The ``lets`` command line (console script ``lets``, or ``python -m lets_core.cli``).

- ``program``: parse (with ``--config`` files), the OpenMP re-execution, one-line errors, ``main``
- ``config_file``: a ``--config`` JSON file turned into flags
- ``commands/``: one file per subcommand with its parser (``build``) and what it does (``run``);
  ``commands.COMMANDS`` is the table of them
- ``flags``: flag groups several subcommands share; ``types``: the flags' value types;
  ``choices``: every list of choices, read from the module that owns it
- ``inputs``: flags to the library's inputs (recipe, data, model configuration, teacher);
  ``fits``: the check that the data fits the model
"""

from .program import build_parser, main, parse

__all__ = ["build_parser", "main", "parse"]
