"""Per-op templates: an op's forward and backward as NumPy source, the same calls its
Function makes, so that the program reads like the lecture and runs without a Context.

A template writes exactly the expressions of its Function's ``forward`` and ``backward``
(the same NumPy calls, operands and order of evaluation), for the cases it ``accepts``;
anything else takes the generic call of the Function itself. ``tests/test_compile.py``
holds every op of the op table to bit-equality with the eager engine, so a template that
drifted from its rule fails there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.elementwise import Add, Div, Exp, Log, Mul, Neg, PowConst, Sigmoid, Sub, Tanh
from chainrule.ops.kernels import sigmoid_array
from chainrule.ops.linalg import Affine, MatMul
from chainrule.ops.piecewise import Relu
from chainrule.ops.reduction import Mean, Sum
from chainrule.ops.shape import BroadcastTo, Reshape, Transpose

__all__ = ["View", "Template", "TEMPLATES", "HELPERS", "LAYERS", "ACTIVATIONS"]


class View:
    """An op call as a template sees it: the source of each input (``args``), their values
    in the trace (``values``), the options, the output's trace value and needs_input_grad."""

    __slots__ = ("args", "values", "options", "out", "needs", "grad_shapes", "grad_is_ones")

    def __init__(
        self,
        args: list[str],
        values: list[Any],
        options: dict[str, Any],
        out: Any,
        needs: tuple[bool, ...],
        grad_shapes: list[tuple[int, ...]],
    ) -> None:
        self.args = args
        self.values = values
        self.options = options
        self.out = out
        self.needs = needs
        self.grad_shapes = grad_shapes  # of grad_out, in each backward of the op
        #: in a backward: grad_out is all ones (the seed, spread), so 1 · z = z exactly
        self.grad_is_ones = False

    def same_as_out(self, index: int) -> bool:
        """Input ``index`` is an array of the output's shape and dtype."""
        value = self.values[index]
        out = self.out
        return type(value) is np.ndarray and value.shape == out.shape and value.dtype == out.dtype

    def plain(self) -> bool:
        """Every backward gets a gradient shaped like the output (no batch of cotangents)."""
        return all(shape == self.out.shape for shape in self.grad_shapes)


class Template:
    """The source of one Function's forward and backward (subclasses, one per op)."""

    def accepts(self, view: View) -> bool:
        """Whether the template reproduces this call exactly."""
        return view.plain()

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        """Statements computing ``out``: (expression for ``out``, None) or (statement,
        names it writes)."""
        raise NotImplementedError

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        """One expression per input for ∂L/∂input given ``grad`` = ∂L/∂out."""
        raise NotImplementedError


def _dtype(dtype: Any) -> str:
    return f"np.{np.dtype(dtype).name}"


# ---------------------------------------------------------------------- arithmetic
class _Add(Template):
    """Add: a + b; both gradients are grad_out."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        a, b = view.args
        return [(f"{a} + {b}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [grad, grad]


class _Sub(Template):
    """Sub: a − b; gradients grad_out and −grad_out."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        a, b = view.args
        return [(f"{a} - {b}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [grad, f"-{grad}" if view.needs[1] else None]


class _Mul(Template):
    """Mul: a ∘ b; gradients grad_out ∘ b and grad_out ∘ a."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        a, b = view.args
        return [(f"{a} * {b}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        a, b = view.args
        grad_a = f"{grad} * {b}"
        grad_b = f"{grad} * {a}"
        if view.grad_is_ones:  # 1 · z = z, exactly (NaN, ±0 and infinities included)
            grad_a = b if view.same_as_out(1) else grad_a
            grad_b = a if view.same_as_out(0) else grad_b
        return [grad_a if view.needs[0] else None, grad_b if view.needs[1] else None]


class _Div(Template):
    """Div: a / b; gradients grad_out / b and −(grad_out / b) ∘ a / b."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        a, b = view.args
        return [(f"{a} / {b}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        a, b = view.args
        grad_a = f"{grad} / {b}"
        return [grad_a, f"-({grad_a}) * {a} / {b}" if view.needs[1] else None]


class _Neg(Template):
    """Neg: −x; gradient −grad_out."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"-{view.args[0]}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"-{grad}"]


class _PowConst(Template):
    """PowConst: x**p; gradient grad_out ∘ p x^(p−1) (p = 0, 1, 2 as the rule has them)."""

    def accepts(self, view: View) -> bool:
        return view.plain() and type(view.options["p"]) in (int, float)

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"{view.args[0]} ** {view.options['p']!r}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        x, p = view.args[0], view.options["p"]
        if p == 0:
            return [f"{grad} * 0"]
        if p == 2:
            return [f"{grad} * (2 * {x})"]
        if p == 1:
            return [grad]
        return [f"{grad} * ({p!r} * {x} ** ({p!r} - 1))"]


# ---------------------------------------------------------------------- activations
class _Tanh(Template):
    """Tanh: tanh x; gradient grad_out ∘ (1 − y²)."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"np.tanh({view.args[0]})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        if view.grad_is_ones:
            return [f"1 - {out} * {out}"]  # 1 · z = z; 1 − y² has y's dtype and shape
        return [f"{grad} * (1 - {out} * {out})"]


class _Relu(Template):
    """Relu: max(x, 0); gradient grad_out ∘ [y > 0]."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"np.maximum({view.args[0]}, 0)", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"{grad} * ({out} > 0)"]


class _Sigmoid(Template):
    """Sigmoid: σ(x) (the stable kernel); gradient grad_out ∘ y(1 − y)."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"sigmoid({view.args[0]})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"{grad} * ({out} * (1 - {out}))"]


class _Exp(Template):
    """Exp: eˣ; gradient grad_out ∘ y."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"np.exp({view.args[0]})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"{grad} * {out}"]


class _Log(Template):
    """Log: ln x; gradient grad_out / x."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"np.log({view.args[0]})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"{grad} / {view.args[0]}"]


# ---------------------------------------------------------------------- layers
class _Affine(Template):
    """Affine on matrices: f = x W (+ b, added in place); gradients G Wᵀ, xᵀ G, Σ_rows G."""

    def accepts(self, view: View) -> bool:
        x, w = view.values[:2]
        bias = view.values[2] if len(view.values) > 2 else None
        shapes_ok = x.ndim == 2 and w.ndim == 2 and (bias is None or np.ndim(bias) == 1)
        return shapes_ok and view.plain()

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        x, w = view.args[:2]
        lines: list[tuple[str, list[str] | None]] = [(f"{x} @ {w}", None)]
        if len(view.args) > 2 and view.values[2] is not None:
            lines.append((f"{out} += {view.args[2]}", [out]))
        return lines

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        x, w = view.args[:2]
        needs = view.needs
        grads = [f"{grad} @ {w}.T" if needs[0] else None, f"{x}.T @ {grad}" if needs[1] else None]
        if len(needs) == 3:
            grads.append(f"{grad}.sum(axis=-2)" if needs[2] else None)
        return grads


class _MatMul(_Affine):
    """MatMul of two matrices: A B; gradients G Bᵀ and Aᵀ G."""

    def accepts(self, view: View) -> bool:
        a, b = view.values
        return np.ndim(a) == 2 and np.ndim(b) == 2 and view.plain()


# ---------------------------------------------------------------------- reductions, shapes
def _total(view: View) -> str:
    """``reduction.accurate_sum``, the same call: np.add.reduce(x, axes, dtype, out,
    keepdims), accumulating narrower floats in float64."""
    x, axes, keep = view.args[0], view.options["axes"], view.options["keepdims"]
    dtype = view.values[0].dtype
    if dtype.itemsize < 8:
        extra = ", None, True" if keep else ""
        return f"np.array(np.add.reduce({x}, {axes!r}, np.float64{extra}), {_dtype(dtype)})"
    extra = ", None, None, True" if keep else ""
    return f"np.add.reduce({x}, {axes!r}{extra})"


def _spread(view: View, grad: str) -> str:
    """``reduction._spread``: a reduction's gradient broadcast back over the reduced axes."""
    x, axes, keep = view.values[0], view.options["axes"], view.options["keepdims"]
    if axes is None:  # one value spread everywhere
        return f"np.full({x.shape!r}, {grad}, {_dtype(view.out.dtype)})"
    kept = tuple(1 if i in _axes(axes, x.ndim) else n for i, n in enumerate(x.shape))
    spread = grad if keep else f"{grad}.reshape({kept!r})"
    return f"np.broadcast_to({spread}, {x.shape!r})"


class _Sum(Template):
    """Sum (accumulated in float64 for narrower floats); its gradient spread back."""

    def accepts(self, view: View) -> bool:
        return view.plain() and view.values[0].dtype.kind == "f"

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(_total(view), None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [_spread(view, grad)]


class _Mean(_Sum):
    """Mean: the sum divided by the count n; the gradient grad_out / n spread back."""

    def accepts(self, view: View) -> bool:
        return super().accepts(view) and _count(view) > 0

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"{_total(view)} / {_count(view)}", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [_spread(view, f"({grad} / {_count(view)})")]


def _count(view: View) -> int:
    shape, axes = view.values[0].shape, view.options["axes"]
    if axes is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in _as_tuple(axes)], dtype=np.int64))


def _as_tuple(axes: Any) -> tuple[int, ...]:
    return tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)


def _axes(axes: Any, ndim: int) -> set[int]:
    return {a % ndim for a in _as_tuple(axes)}


class _Reshape(Template):
    """Reshape: a view with another shape; the gradient reshaped back."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"{view.args[0]}.reshape({view.options['shape']!r})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [f"{grad}.reshape({view.values[0].shape!r})"]


class _Transpose(Template):
    """Transpose: axes permuted (a view); the gradient permuted back."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        x, axes = view.args[0], view.options["axes"]
        if view.values[0].ndim == 2 and axes in (None, (1, 0), [1, 0]):
            return [(f"{x}.T", None)]
        return [(f"np.transpose({x}, {axes!r})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        ndim, axes = view.values[0].ndim, view.options["axes"]
        order = tuple(range(ndim))[::-1] if axes is None else tuple(axes)
        inverse = tuple(int(i) for i in np.argsort(order))
        if ndim == 2 and inverse == (1, 0):
            return [f"{grad}.T"]
        return [f"{grad}.transpose({inverse!r})"]


class _BroadcastTo(Template):
    """BroadcastTo: a read-only view repeating x; the engine sums the gradient back."""

    def forward(self, view: View, out: str) -> list[tuple[str, list[str] | None]]:
        return [(f"np.broadcast_to({view.args[0]}, {view.options['shape']!r})", None)]

    def backward(self, view: View, out: str, grad: str) -> list[str | None]:
        return [grad]


#: the Functions that have a template, and the helpers the templates' source calls
TEMPLATES: dict[Any, Template] = {
    Add: _Add(), Sub: _Sub(), Mul: _Mul(), Div: _Div(), Neg: _Neg(), PowConst: _PowConst(),
    Tanh: _Tanh(), Relu: _Relu(), Sigmoid: _Sigmoid(), Exp: _Exp(), Log: _Log(),
    Affine: _Affine(), MatMul: _MatMul(), Sum: _Sum(), Mean: _Mean(), Reshape: _Reshape(),
    Transpose: _Transpose(), BroadcastTo: _BroadcastTo(),
}  # fmt: skip
HELPERS = {"sigmoid": sigmoid_array}
#: the ops whose result is a layer's pre-activation f[l], and its activations a[l] = g(f[l])
LAYERS = (Affine, MatMul)
ACTIVATIONS = (Tanh, Relu, Sigmoid)
