"""Shapes through a model without computing anything: ``check`` and ``summary``.

``check(model, (784,))`` follows one example's shape through an ``nn.Sequential`` and stops
at the first layer whose input does not fit, in the lecture's words; ``summary`` is the
table users know from Keras and torchinfo (layer, the lecture's symbol, output shape,
parameters). What each layer does to a shape comes from its description
(``chainrule.nn.describe``), so a registered layer of your own is shown like the built-ins.
``Sequential.check`` and ``Sequential.summary`` call these; ``chainrule.viz`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrule.nn.describe import _shape, describe
from chainrule.nn.module import Module, ModuleList
from chainrule.notation import to_ascii

__all__ = ["check", "summary", "Summary", "children"]


def children(model: Any) -> list[Any]:
    """The modules of a Sequential, in order (or a plain list of modules)."""
    if isinstance(model, (list, tuple)):
        return list(model)
    try:
        return list(iter(model))
    except TypeError:
        raise TypeError(
            f"expected an nn.Sequential (or a list of modules), got {type(model).__name__}"
        ) from None


def _applies_in_order(module: Any) -> bool:
    """A container whose forward applies its modules in order (``Sequential``; a bare
    ``ModuleList`` is not callable)."""
    return isinstance(module, ModuleList) and type(module).forward is not Module.forward


@dataclass
class _Row:
    index: str
    kind: str
    symbol: str
    shape: tuple[Any, ...]
    params: int
    trainable: int


class _Walker:
    """Follows one example's shape through a Sequential, counting the lecture's layers.

    What each layer does to the shape, and its symbol, come from its description
    (``chainrule.nn.describe``): a layer of your own that is registered there is shown
    like the built-in ones.
    """

    def __init__(self) -> None:
        self.layer = 0  # l: the last layer with weights
        self.rows: list[_Row] = []

    def walk(self, model: Any, shape: tuple[Any, ...], prefix: str = "") -> tuple[Any, ...]:
        for index, module in enumerate(children(model)):
            name = f"{prefix}{index}"
            if _applies_in_order(module):
                shape = self.walk(module, shape, prefix=f"{name}.")
                continue
            description = describe(module)
            try:
                shape = description.output_shape(module, shape, self.layer)
            except ValueError as error:
                raise _located(error, name, module) from None
            symbol = description.symbol(self.layer)
            if description.weighted:
                self.layer += 1
            total = sum(int(p.size) for p in module.parameters())
            trainable = sum(int(p.size) for p in module.parameters() if p.requires_grad)
            self.rows.append(_Row(name, type(module).__name__, symbol, shape, total, trainable))
        return shape


def _located(error: ValueError, name: str, module: Any) -> ValueError:
    return ValueError(f"{error} (Sequential item {name}: {type(module).__name__})")


def check(model: Any, input_shape: tuple[int, ...]) -> tuple[Any, ...]:
    """Follow the shapes through a Sequential without computing anything.

    Args:
        model: an ``nn.Sequential`` (nested ones are followed).
        input_shape: one example's shape, e.g. (784,) or (1, 28, 28).

    Returns:
        The output shape, with "m" for the batch dimension, e.g. ("m", 10).

    Raises:
        ValueError: at the first layer whose input does not fit, in the lecture's words:
            "layer 2: f[2] = W[2]ᵀ a[1] needs a[1] with 256 features, got 128".
    """
    return _Walker().walk(model, ("m", *(int(n) for n in input_shape)))


@dataclass
class Summary:
    """A model summary: one row per module, then the parameter totals."""

    rows: list[_Row]
    input_shape: tuple[Any, ...]
    output_shape: tuple[Any, ...]
    total: int
    trainable: int

    def table(self, ascii: bool = False) -> str:
        """The table as text (``ascii=True``: no Unicode, e.g. W[1]^T for W[1]ᵀ)."""
        spell = to_ascii if ascii else str
        heads = ("#", "Layer (type)", "Lecture", "Output shape", "Param #")
        body = [("", "input", "a[0] = x", _shape(self.input_shape), "")]
        body += [
            (r.index, r.kind, spell(r.symbol), _shape(r.shape), f"{r.params:,}") for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [heads, *body]) for i in range(5)]

        def line(row: tuple[str, ...]) -> str:
            cells = [f"{row[i]:<{widths[i]}}" for i in range(4)]
            return "  ".join(cells + [f"{row[4]:>{widths[4]}}"]).rstrip()

        rule = ("-" if ascii else "─") * (sum(widths) + 8)
        lines = [line(heads), rule, *(line(row) for row in body), rule]
        lines += [
            f"Total params: {self.total:,}",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.total - self.trainable:,}",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def summary(model: Any, input_shape: tuple[int, ...]) -> Summary:
    """The model summary users know from Keras and torchinfo: layer, output shape, params.

    Shapes are followed as in ``check`` (nothing is computed for the known layers); the
    batch dimension is shown as "m". ``print(summary(model, (784,)))`` prints the table.
    """
    walker = _Walker()
    start = ("m", *(int(n) for n in input_shape))
    output = walker.walk(model, start)
    seen = {id(p): p for p in _all_parameters(model)}
    total = sum(int(p.size) for p in seen.values())
    trainable = sum(int(p.size) for p in seen.values() if p.requires_grad)
    return Summary(walker.rows, start, output, total, trainable)


def _all_parameters(model: Any) -> list[Any]:
    """Every parameter once (a shared weight is counted once, as torchinfo does)."""
    if hasattr(model, "parameters"):
        return list(model.parameters())
    return [p for module in model for p in module.parameters()]
