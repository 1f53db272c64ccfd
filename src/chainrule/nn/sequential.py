"""``Sequential``: modules applied one after the other, the lecture's a[l] = g(f[l]) chain."""

from __future__ import annotations

from typing import Any

from chainrule.nn.module import Module, ModuleList
from chainrule.nn.summary import check, summary
from chainrule.notation import width_error

__all__ = ["Sequential"]


class Sequential(ModuleList):
    """Modules applied one after the other: ``Sequential(f, g)(x) = g(f(x))``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        """a[l] = module_l(a[l−1]) for each module in order, from a[0] = x."""
        for index, module in enumerate(self._modules):
            try:
                x = module(x)
            except ValueError as error:
                width = getattr(module, "in_features", None)
                if width is None or getattr(x, "shape", (width,))[-1:] == (width,):
                    raise
                # the error in the lecture's words; looked for only once a layer failed
                layer = sum(hasattr(m, "in_features") for m in self._modules[: index + 1])
                raise width_error(layer, width, x.shape[-1]) from error
        return x

    def check(self, input_shape: tuple[int, ...]) -> Any:
        """Find a width mismatch before computing anything (``chainrule.nn.summary.check``)."""
        return check(self, input_shape)

    def summary(self, input_shape: tuple[int, ...]) -> Any:
        """A table of layers, output shapes and parameter counts (``chainrule.nn.summary``)."""
        return summary(self, input_shape)
