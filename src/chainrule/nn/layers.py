"""Layers: ``Linear`` (the lecture's f = Wᵀa), ``Flatten``, ``Dropout``, ``Identity`` and the
activation modules (ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, GELU, SiLU, LeakyReLU, ELU,
Softplus). Their gradients come from the autodiff engine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.ops.shape import reshape
from chainrule.tensor import Tensor

__all__ = [
    "Linear", "Flatten", "Dropout", "Identity", "ReLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus",
]  # fmt: skip


class Linear(Module):
    """f = Wᵀa + b, computed on a batch of rows as ``x @ weight + bias``.

    ``weight`` has shape (in_features, out_features): the lecture's W[l], inputs by outputs
    (PyTorch stores its transpose). Weight and bias start as U(−1/√in, 1/√in), PyTorch's
    default (kaiming_uniform_ with a = √5), drawn from ``generator`` or chainrule's default
    generator.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        shape = (self.in_features, self.out_features)
        self.weight = Parameter(np.empty(shape, dtype=np.float32))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5.0), generator=generator)
        self.bias = None
        if bias:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            self.bias = Parameter(np.empty(self.out_features, dtype=np.float32))
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Any) -> Tensor:
        """f = x W + b for a batch x of shape (m, in_features) → (m, out_features).

        Row by row this is the lecture's f = Wᵀa + b; ∂L/∂W = xᵀ δ, ∂L/∂b = Σ_rows δ.
        """
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        """``in_features=…, out_features=…, bias=…`` for ``repr(module)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Flatten(Module):
    """Merge axes start_axis..end_axis into one: (N, C, H, W) -> (N, C·H·W) by default.

    PyTorch's ``start_dim=`` and ``end_dim=`` are accepted as the same arguments (giving
    both names of one is an error).
    """

    def __init__(
        self,
        start_axis: int = 1,
        end_axis: int = -1,
        *,
        start_dim: int | None = None,
        end_dim: int | None = None,
    ) -> None:
        super().__init__()
        start_axis = _alias("start_axis", start_axis, 1, "start_dim", start_dim)
        end_axis = _alias("end_axis", end_axis, -1, "end_dim", end_dim)
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x: Any) -> Tensor:
        """x reshaped so that axes start_axis..end_axis become one; the gradient is reshaped
        back."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        start = self.start_axis % max(x.ndim, 1)
        end = self.end_axis % max(x.ndim, 1)
        if start > end:
            raise ValueError(
                f"Flatten: start_axis {self.start_axis} comes after end_axis {self.end_axis} "
                f"for an input of shape {x.shape}"
            )
        merged = math.prod(x.shape[start : end + 1])
        return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])

    def extra_repr(self) -> str:
        """``start_axis=…, end_axis=…`` for ``repr(module)``."""
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


def _alias(name: str, value: int, default: int, alias: str, alias_value: int | None) -> int:
    """``value``, or PyTorch's keyword ``alias`` in its place; both given is an error."""
    if alias_value is None:
        return value
    if value != default:
        raise TypeError(f"Flatten: give {name} or {alias} (its PyTorch name), not both")
    return alias_value


class Dropout(Module):
    """Inverted dropout with probability p while training; the identity in ``eval()``."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must satisfy 0 <= p < 1, got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Any) -> Tensor:
        """y = x ∘ mask / (1 − p), mask ~ Bernoulli(1 − p), in training; y = x in eval."""
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        """``p=…`` for ``repr(module)``."""
        return f"p={self.p}"


class Identity(Module):
    """y = x."""

    def forward(self, x: Any) -> Any:
        """y = x (the input itself, not a copy)."""
        return x


class ReLU(Module):
    """y = max(x, 0); relu'(0) = 0."""

    def forward(self, x: Any) -> Tensor:
        """y = max(x, 0) elementwise; dy/dx = 1 where x > 0, else 0 (0 at x = 0)."""
        return F.relu(x)


class Sigmoid(Module):
    """y = σ(x) = 1/(1 + e⁻ˣ)."""

    def forward(self, x: Any) -> Tensor:
        """y = σ(x) elementwise; dy/dx = y(1 − y)."""
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh x."""

    def forward(self, x: Any) -> Tensor:
        """y = tanh x elementwise; dy/dx = 1 − y²."""
        return F.tanh(x)


class Softmax(Module):
    """yᵢ = exp xᵢ / Σⱼ exp xⱼ along ``axis`` (the last by default)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        """yᵢ = exp xᵢ / Σⱼ exp xⱼ along ``axis``; ∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ)."""
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        """``axis=…`` for ``repr(module)``."""
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """yᵢ = xᵢ − log Σⱼ exp xⱼ along ``axis`` (the last by default), computed stably."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        """yᵢ = xᵢ − log Σⱼ exp xⱼ along ``axis``; ∂yᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ."""
        return F.log_softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        """``axis=…`` for ``repr(module)``."""
        return f"axis={self.axis}"


class GELU(Module):
    """y = x·Φ(x), Φ the standard normal CDF (exact, not the tanh approximation)."""

    def forward(self, x: Any) -> Tensor:
        """y = x·Φ(x) elementwise; dy/dx = Φ(x) + x·φ(x) (see ``F.gelu``)."""
        return F.gelu(x)


class SiLU(Module):
    """y = x·σ(x) (swish)."""

    def forward(self, x: Any) -> Tensor:
        """y = x·σ(x) elementwise; dy/dx = σ(x)(1 + x(1 − σ(x)))."""
        return F.silu(x)


class LeakyReLU(Module):
    """y = x for x > 0, else a·x (a = ``negative_slope``, 0.01 by default); y′(0) = a."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        """y = max(x, 0) + a·min(x, 0) elementwise; dy/dx = 1 for x > 0, else a."""
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        """``negative_slope=…`` for ``repr(module)``."""
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """y = x for x > 0, else α(eˣ − 1) (α = ``alpha``, 1 by default); y′(0) = α."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Any) -> Tensor:
        """y = x for x > 0, else α(eˣ − 1); dy/dx = 1 for x > 0, else α·eˣ."""
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        """``alpha=…`` for ``repr(module)``."""
        return f"alpha={self.alpha}"


class Softplus(Module):
    """y = (1/β) log(1 + e^(βx)), and y = x where βx > ``threshold`` (PyTorch's)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"Softplus: beta must be positive, got {beta}")
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Any) -> Tensor:
        """y = (1/β) log(1 + e^(βx)) (x above the threshold); dy/dx = σ(βx) (1 above)."""
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """``beta=…, threshold=…`` for ``repr(module)``."""
        return f"beta={self.beta}, threshold={self.threshold}"
