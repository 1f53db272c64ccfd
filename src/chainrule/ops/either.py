"""Deprecated: the rule helpers are ``chainrule.ops.rules`` now; this alias will go.

``from chainrule.ops import either`` was the documented way to write twice-differentiable
rules (``either.exp``, ``log``, ``broadcast_to``, ``scatter_add``, ``einsum``); the same
functions, and more, are in ``chainrule.ops.rules``.
"""

from __future__ import annotations

import warnings

from chainrule.ops.rules import broadcast_to, einsum, exp, log, scatter_add

__all__ = ["exp", "log", "broadcast_to", "scatter_add", "einsum"]

warnings.warn(
    "chainrule.ops.either is deprecated: import chainrule.ops.rules instead (the same "
    "helpers, and more)",
    DeprecationWarning,
    stacklevel=2,
)
