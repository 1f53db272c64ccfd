"""The ``chainrule`` command line: ``chainrule train``, ``chainrule evaluate``."""

from chainrule.cli.main import main

__all__ = ["main"]
