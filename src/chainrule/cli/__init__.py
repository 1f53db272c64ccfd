"""The ``chainrule`` command line: ``train``, ``evaluate``, ``explain`` and ``export``."""

from chainrule.cli.main import main

__all__ = ["main"]
