"""The same gradients by autodiff, and the comparison with the lecture's backprop.

``autodiff`` runs the network as chainrule tensors (the ``nn.Sequential`` itself when the
network came from one, so its modules are checked too) and asks the engine for ∂L/∂W[l],
∂L/∂b[l] and δ[l] = ∂L/∂f[l]. ``compare`` sets them side by side with ``backprop``'s
results, layer by layer: the largest absolute and relative differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import engine, ops
from chainrule.lecture.backprop import LOSSES, REDUCTIONS, Trace, backprop, targets
from chainrule.lecture.network import Network
from chainrule.nn.describe import describe
from chainrule.nn.loss import CrossEntropyLoss, MSELoss
from chainrule.nn.summary import children
from chainrule.notation import dims, to_ascii
from chainrule.tensor import Tensor

__all__ = ["Autodiff", "Difference", "Comparison", "autodiff", "compare", "as_network"]

_OPS = {"sigmoid": ops.sigmoid, "tanh": ops.tanh, "relu": ops.relu}
#: the nn loss modules the lecture's backprop knows, and its name for each
_LOSS_MODULES: dict[type, str] = {MSELoss: "mse", CrossEntropyLoss: "cross-entropy"}


def as_network(source: Any) -> Network:
    """A ``Network`` as is, or the lecture's view of an ``nn.Sequential``."""
    return source if isinstance(source, Network) else Network.from_sequential(source)


def _loss_spec(loss: Any, reduction: str) -> tuple[str, str, Any]:
    """(kind, reduction, loss module or None) from a name or an nn loss module."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}: choose mean or sum")
        return loss, reduction, None
    kind = next((k for cls, k in _LOSS_MODULES.items() if isinstance(loss, cls)), None)
    module_reduction = getattr(loss, "reduction", "mean")
    if kind is None or module_reduction not in REDUCTIONS:
        raise ValueError(
            f"the lecture's backprop knows MSELoss and CrossEntropyLoss with reduction mean "
            f"or sum, got {type(loss).__name__}(reduction={module_reduction!r})"
        )
    return kind, module_reduction, loss


@dataclass
class Autodiff:
    """The autodiff side: the loss tensor, named tensors of its graph, and the gradients
    ``grads["δ[l]"]``, ``grads["∂L/∂W[l]"]``, ``grads["∂L/∂b[l]"]`` shaped as in ``backprop``
    (columns for one example, rows for a batch)."""

    loss: Tensor
    output: np.ndarray
    tensors: dict[str, Tensor]
    grads: dict[str, np.ndarray]


def autodiff(source: Any, x: Any, y: Any, loss: Any = "mse", reduction: str = "mean") -> Autodiff:
    """L and its gradients by chainrule's autodiff, for the network or Sequential ``source``.

    Args:
        source: a ``Network`` or an ``nn.Sequential`` of Linear layers and activations.
        x, y, loss, reduction: as in ``backprop``; ``loss`` may also be an ``nn.MSELoss`` or
            ``nn.CrossEntropyLoss`` module (its own reduction is used).
    """
    network = as_network(source)
    kind, reduction, loss_module = _loss_spec(loss, reduction)
    x = np.asarray(x).astype(network.dtype, copy=False)
    single = x.ndim == 1
    h = Tensor(x.reshape(1, -1) if single else x)
    tensors: dict[str, Tensor] = {"x": h}
    weights, biases, fs = _run(network, h, tensors)
    out = tensors[f"a[{network.depth}]"]
    if single:
        target = targets(y, kind, out.data.T, "columns").T
    else:
        target = targets(y, kind, out.data, "rows")
    if loss_module is not None:
        value = loss_module(out, _module_target(y, kind, target, single))
    elif kind == "mse":
        diff = out - Tensor(target)
        value = (diff * diff).mean() if reduction == "mean" else (diff * diff).sum()
    else:
        nll = -(Tensor(target) * ops.log_softmax(out, axis=-1)).sum()
        value = nll / out.shape[0] if reduction == "mean" else nll
    params = [w for w in weights] + [b for b in biases if b is not None]
    # engine.grad gives every input a gradient (zeros where unused): never None here
    found = [g.data for g in engine.grad(value, params + fs, retain_graph=True) if g is not None]
    assert len(found) == len(params) + len(fs)
    grads: dict[str, np.ndarray] = {}
    by_param = dict(zip(map(id, params), found[: len(params)]))
    for l, (w, b, f_grad) in enumerate(zip(weights, biases, found[len(params) :]), 1):
        grads[f"∂L/∂W[{l}]"] = by_param[id(w)]
        delta = f_grad
        grads[f"δ[{l}]"] = delta.T if single else delta
        if b is not None:
            db = by_param[id(b)]
            grads[f"∂L/∂b[{l}]"] = db.reshape(-1, 1) if single else db
    output = out.data.T if single else out.data
    return Autodiff(value, output, tensors, grads)


def _run(
    network: Network, h: Tensor, tensors: dict[str, Tensor]
) -> tuple[list[Tensor], list[Tensor | None], list[Tensor]]:
    """The forward pass as tensors: the model's own modules, or chainrule ops on leaves."""
    weights: list[Tensor] = []
    biases: list[Tensor | None] = []
    fs: list[Tensor] = []
    if network.module is not None:
        l = 0
        for module in children(network.module):
            role = describe(module).lecture_role
            if role == "skip":
                continue
            h = module(h)
            if role == "linear":
                l += 1
                weights.append(module.weight)
                biases.append(getattr(module, "bias", None))
                fs.append(h)
                tensors[f"W[{l}]"] = module.weight
                if biases[-1] is not None:
                    tensors[f"b[{l}]"] = biases[-1]
                tensors[f"f[{l}]"] = h
            tensors[f"a[{l}]"] = h  # a[l] = f[l] until an activation replaces it
        return weights, biases, fs
    for l, (w, b, g) in enumerate(zip(network.weights, network.biases, network.activations), 1):
        weight = Tensor(w, requires_grad=True)
        bias = None if b is None else Tensor(b, requires_grad=True)
        f = h @ weight if bias is None else h @ weight + bias
        h = f if g == "identity" else _OPS[g](f)
        weights.append(weight)
        biases.append(bias)
        fs.append(f)
        tensors[f"W[{l}]"] = weight
        if bias is not None:
            tensors[f"b[{l}]"] = bias
        tensors[f"f[{l}]"] = f
        tensors[f"a[{l}]"] = h
    return weights, biases, fs


def _module_target(y: Any, kind: str, target: np.ndarray, single: bool) -> Tensor:
    """What an nn loss module takes: labels as given (one per row), else y shaped like ŷ."""
    y = np.asarray(y)
    if kind == "cross-entropy" and y.dtype.kind in "iub":
        return Tensor(y.reshape(-1).astype(np.int64))
    return Tensor(target)


@dataclass
class Difference:
    """max |manual − autodiff| of one quantity, and that over max |autodiff| (``scale``)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    scale: float

    def agrees(self, tol: float) -> bool:
        """max |manual − autodiff| ≤ tol · max(1, max |autodiff|): absolute near 0, relative
        for large values."""
        return self.max_abs <= tol * max(1.0, self.scale)


@dataclass
class Comparison:
    """The lecture's backprop next to autodiff: one ``Difference`` per quantity and layer."""

    trace: Trace
    autodiff: Autodiff
    differences: list[Difference] = field(default_factory=list)

    @property
    def max_abs(self) -> float:
        """The largest |manual − autodiff| over every quantity."""
        return max(d.max_abs for d in self.differences)

    @property
    def max_rel(self) -> float:
        """The largest |manual − autodiff| / max |autodiff| over every quantity."""
        return max(d.max_rel for d in self.differences)

    def agrees(self, tol: float = 1e-10) -> bool:
        """True when |manual − autodiff| ≤ tol · max(1, max |autodiff|) for every quantity."""
        return all(d.agrees(tol) for d in self.differences)

    def assert_agrees(self, tol: float = 1e-10) -> None:
        """Raise AssertionError, with the table, unless ``agrees(tol)``."""
        if not self.agrees(tol):
            raise AssertionError(
                f"backprop and autodiff differ by more than {tol:g}:\n{self.table(tol=tol)}"
            )

    def table(self, tol: float = 1e-10, ascii: bool = False) -> str:
        """One line per quantity: name (shape), max |Δ|, relative |Δ|, ✓ or ✗."""
        spell = to_ascii if ascii else str
        labels = [
            spell(f"{d.name} ({dims(d.shape)})" if d.shape else d.name) for d in self.differences
        ]
        width = max(len(label) for label in labels)
        lines = [spell(f"  {'quantity':<{width}}  max |manual − autodiff|  relative")]
        for label, d in zip(labels, self.differences):
            mark = spell("✓" if d.agrees(tol) else "✗")
            lines.append(f"  {label:<{width}}  {d.max_abs:>23.2e}  {d.max_rel:>8.2e}  {mark}")
        return "\n".join(lines)


def _difference(name: str, manual: np.ndarray, auto: np.ndarray) -> Difference:
    manual = np.asarray(manual, dtype=np.float64)
    auto = np.asarray(auto, dtype=np.float64).reshape(manual.shape)
    max_abs = float(np.max(np.abs(manual - auto), initial=0.0))
    scale = float(np.max(np.abs(auto), initial=0.0))
    if scale > 0:
        max_rel = max_abs / scale
    else:
        max_rel = 0.0 if max_abs == 0 else float("inf")
    return Difference(name, manual.shape, max_abs, max_rel, scale)


def compare(source: Any, x: Any, y: Any, loss: Any = "mse", reduction: str = "mean") -> Comparison:
    """The lecture's backprop versus autodiff on the same network, layer by layer.

    Compares the loss L, ŷ = a[L] and, for each layer l, δ[l], ∂L/∂W[l] and ∂L/∂b[l].
    In float64 they agree to about 1e-15; ``Comparison.agrees(1e-10)`` checks it.

    Args:
        source: a ``Network`` or an ``nn.Sequential`` of Linear layers and activations.
        x, y, loss, reduction: as in ``backprop`` (``loss`` may be an nn loss module).

    Returns:
        A ``Comparison`` (``.trace`` holds the lecture's quantities, ``.autodiff`` the
        loss tensor and its graph).
    """
    network = as_network(source)
    kind, reduction, _ = _loss_spec(loss, reduction)
    trace = backprop(network, x, y, kind, reduction)
    auto = autodiff(network, x, y, loss, reduction)
    rows = [
        _difference("L", np.asarray(trace.value), auto.loss.data),
        _difference(f"a[{network.depth}]", trace.output, auto.output),
    ]
    for layer in trace.layers:
        l = layer.l
        assert layer.delta is not None and layer.dW is not None  # backprop fills them
        rows.append(_difference(f"δ[{l}]", layer.delta, auto.grads[f"δ[{l}]"]))
        rows.append(_difference(f"∂L/∂W[{l}]", layer.dW, auto.grads[f"∂L/∂W[{l}]"]))
        if layer.db is not None:
            rows.append(_difference(f"∂L/∂b[{l}]", layer.db, auto.grads[f"∂L/∂b[{l}]"]))
    return Comparison(trace, auto, rows)
