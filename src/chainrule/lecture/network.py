"""The lecture's network: W[l] of shape (n[l−1], n[l]), biases b[l], activations g[l].

A ``Network`` is plain data (NumPy arrays and activation names), so the lecture's
equations can be run on it without autodiff. It is built from lists, at random, or from an
``nn.Sequential`` of ``Linear`` layers and element-wise activations (whose parameter arrays
it shares, without copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.nn.describe import describe
from chainrule.nn.summary import children
from chainrule.notation import width_error

__all__ = [
    "ACTIVATIONS", "Network", "activate", "derivative", "softmax", "width_error",
]  # fmt: skip

#: the element-wise activations g the lecture uses ("identity": a layer without one)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")


def activate(name: str, f: np.ndarray) -> np.ndarray:
    """a = g(f) for the activation called ``name``, element-wise."""
    if name == "sigmoid":
        # σ(f) = exp(−log(1 + e^(−f))): no overflow for large |f|
        return np.exp(-np.logaddexp(0, -f))
    if name == "tanh":
        return np.tanh(f)
    if name == "relu":
        return np.maximum(f, 0)
    if name == "identity":
        return f.copy()
    raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")


def derivative(name: str, f: np.ndarray, a: np.ndarray) -> np.ndarray:
    """g′(f), element-wise, from f and a = g(f): σ′ = a(1 − a), tanh′ = 1 − a², relu′ = [f > 0].

    relu′(0) = 0, the convention of chainrule's ``relu`` (and PyTorch's).
    """
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    if name == "relu":
        return (f > 0).astype(f.dtype)
    if name == "identity":
        return np.ones_like(f)
    raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")


def softmax(z: np.ndarray, axis: int) -> np.ndarray:
    """softmax(z)ᵢ = exp zᵢ / Σⱼ exp zⱼ along ``axis`` (shifted by the max: no overflow)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class Network:
    """L layers: a[l] = g[l](f[l]), f[l] = (W[l])ᵀ a[l−1] + b[l], with a[0] = x, ŷ = a[L].

    Args:
        weights: W[1] … W[L], W[l] of shape (n[l−1], n[l]): inputs by outputs.
        biases: b[1] … b[L], each of shape (n[l],) or None (no bias).
        activations: g[1] … g[L], names from ``ACTIVATIONS``.

    Raises:
        ValueError: when the widths do not chain (in the lecture's words), or a bias or an
            activation does not fit.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    activations: list[str]
    module: Any = field(default=None, repr=False)  # the nn.Sequential it came from, if any

    def __post_init__(self) -> None:
        self.weights = [np.asarray(w) for w in self.weights]
        self.biases = [None if b is None else np.asarray(b) for b in self.biases]
        self.activations = list(self.activations)
        depth = len(self.weights)
        if depth == 0:
            raise ValueError("a network needs at least one layer (one weight matrix W[1])")
        if len(self.biases) != depth or len(self.activations) != depth:
            raise ValueError(
                f"{depth} weight matrices need {depth} biases (or None) and {depth} "
                f"activations, got {len(self.biases)} and {len(self.activations)}"
            )
        for l, (w, b, g) in enumerate(zip(self.weights, self.biases, self.activations), 1):
            if w.ndim != 2 or w.dtype.kind != "f":
                raise ValueError(
                    f"layer {l}: W[{l}] must be a 2-D float array (n[{l - 1}], n[{l}]), "
                    f"got shape {w.shape} and dtype {w.dtype}"
                )
            if l > 1 and w.shape[0] != self.weights[l - 2].shape[1]:
                raise width_error(l, w.shape[0], self.weights[l - 2].shape[1])
            if b is not None and b.shape != (w.shape[1],):
                raise ValueError(
                    f"layer {l}: b[{l}] must have shape ({w.shape[1]},) like f[{l}], got {b.shape}"
                )
            if g not in ACTIVATIONS:
                raise ValueError(
                    f"layer {l}: unknown activation {g!r}: choose one of {', '.join(ACTIVATIONS)}"
                )

    @property
    def depth(self) -> int:
        """L, the number of layers (weight matrices)."""
        return len(self.weights)

    @property
    def widths(self) -> list[int]:
        """[n[0], n[1], …, n[L]]: the input width, then each layer's width."""
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @property
    def dtype(self) -> np.dtype:
        """The weights' dtype (float64 for the checks to 1e-10)."""
        return self.weights[0].dtype

    @classmethod
    def random(
        cls,
        widths: Sequence[int],
        activation: str = "sigmoid",
        output: str | None = None,
        seed: int = 0,
        bias: bool = True,
        dtype: Any = np.float64,
    ) -> Network:
        """A network with widths n[0], …, n[L] and Glorot-normal weights from ``seed``.

        Args:
            widths: [n[0], …, n[L]], at least two positive integers.
            activation: g[l] of the hidden layers.
            output: g[L] (default: ``activation``; "identity" gives logits, as the
                cross-entropy loss expects).
            seed: seeds the weights and biases (``np.random.default_rng(seed)``).
            bias: whether the layers have biases.
            dtype: the float dtype of W[l] and b[l].
        """
        widths = [int(n) for n in widths]
        if len(widths) < 2 or any(n <= 0 for n in widths):
            raise ValueError(
                f"widths must be at least two positive integers n[0], …, n[L], got {widths}"
            )
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            std = np.sqrt(2.0 / (n_in + n_out))
            weights.append((rng.standard_normal((n_in, n_out)) * std).astype(dtype))
            biases.append((0.1 * rng.standard_normal(n_out)).astype(dtype) if bias else None)
        depth = len(weights)
        activations = [activation] * (depth - 1) + [activation if output is None else output]
        return cls(weights, biases, activations)

    @classmethod
    def from_sequential(cls, model: Any) -> Network:
        """The lecture's view of an ``nn.Sequential`` of ``Linear`` layers, each optionally
        followed by ``ReLU``, ``Sigmoid`` or ``Tanh`` (``Identity`` modules are skipped).

        The arrays are shared with the model's parameters: no copies. Each module's role
        comes from its description (``chainrule.nn.describe``: ``lecture_role``), so a
        layer of your own registered there as "linear", "activation" or "skip" takes part.

        Raises:
            ValueError: for any other module, two activations in a row, an activation
                before the first Linear layer, or widths that do not chain.
        """
        weights: list[np.ndarray] = []
        biases: list[np.ndarray | None] = []
        activations: list[str] = []
        for index, module in enumerate(children(model)):
            description = describe(module)
            role = description.lecture_role
            if role == "skip":
                continue
            if role == "linear":
                bias = getattr(module, "bias", None)
                weights.append(module.weight.data)
                biases.append(None if bias is None else bias.data)
                activations.append("identity")
            elif role == "activation" and weights and activations[-1] == "identity":
                activations[-1] = str(description.activation)
            else:
                where = "before the first Linear layer" if not weights else "after an activation"
                if role != "activation":
                    where = "not a Linear layer or an element-wise activation"
                raise ValueError(
                    f"item {index} of the Sequential ({type(module).__name__}) is {where}: the "
                    "lecture's network alternates Linear layers and ReLU/Sigmoid/Tanh activations"
                )
        if not weights:
            raise ValueError("the Sequential holds no Linear layer")
        return cls(weights, biases, activations, module=model)
