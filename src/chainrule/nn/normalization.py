"""Batch normalisation: y = (x − μ_B)/√(σ²_B + ε) · γ + β per channel (axis 1); layer
normalisation: the same over each example's trailing axes (``LayerNorm``).

In training the batch statistics are used (and differentiated through: the engine derives
the gradient from the composition), and running estimates are updated as PyTorch does:
r ← (1 − momentum)·r + momentum·batch_statistic, with the unbiased variance n/(n − 1)·σ²_B
for the running variance. In ``eval()`` the running estimates replace the batch statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.mode import STATE
from chainrule.nn import functional as F
from chainrule.nn.module import Buffer, Module, Parameter
from chainrule.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; subclasses say which input ranks they take."""

    ranks: tuple[int, ...] = ()
    layout: str = ""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
    ) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"{type(self).__name__}: eps must be positive, got {eps}")
        self.num_features = int(num_features)
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        self.weight = self.bias = None
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=np.float32))
            self.bias = Parameter(np.zeros(self.num_features, dtype=np.float32))
        self.running_mean = Buffer(np.zeros(self.num_features, dtype=np.float32))
        self.running_var = Buffer(np.ones(self.num_features, dtype=np.float32))

    def _check(self, x: Tensor) -> None:
        name = type(self).__name__
        if x.ndim not in self.ranks:
            raise ValueError(f"{name}: expected input of shape {self.layout}, got {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: expected {self.num_features} channels (axis 1), got input of "
                f"shape {x.shape}"
            )

    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        self._check(x)
        axes = (0, *range(2, x.ndim))
        stats_shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        if self.training:
            count = x.size // self.num_features
            if count <= 1:
                raise ValueError(
                    f"{type(self).__name__}: training needs more than one value per channel "
                    f"to estimate a variance, got input of shape {x.shape}"
                )
            mean = x.mean(axis=axes, keepdims=True)
            centred = x - mean
            variance = (centred * centred).mean(axis=axes, keepdims=True)
            self._update_running(mean.data, variance.data, count)
            normalized = centred * (variance + self.eps) ** -0.5
        else:
            mean = self.running_mean.data.reshape(stats_shape)
            scale = (self.running_var.data + self.eps) ** -0.5
            normalized = (x - mean) * scale.reshape(stats_shape)
        if self.weight is None or self.bias is None:  # affine=False
            return normalized
        return normalized * self.weight.reshape(stats_shape) + self.bias.reshape(stats_shape)

    def _update_running(self, mean: np.ndarray, variance: np.ndarray, count: int) -> None:
        if STATE.trace is not None:  # cr.compile would not replay this update
            STATE.trace.refuse_update(f"{type(self).__name__} in training mode")
        m = self.momentum
        unbiased = variance.reshape(-1) * (count / (count - 1))
        running_mean, running_var = self.running_mean.data, self.running_var.data
        running_mean[...] = (1 - m) * running_mean + m * mean.reshape(-1)
        running_var[...] = (1 - m) * running_var + m * unbiased

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, per channel C."""

    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, per channel C."""

    ranks = (4,)
    layout = "(N, C, H, W)"


class LayerNorm(Module):
    """y = (x − μ)/√(σ² + ε) · γ + β, μ and σ² over the trailing ``normalized_shape`` axes.

    Each example is normalised by its own statistics, the same in training and in
    ``eval()`` (no running estimates). γ (``weight``, ones) and β (``bias``, zeros) have
    shape ``normalized_shape``; ``elementwise_affine=False`` leaves both out, ``bias=False``
    only β (PyTorch's arguments).
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        if not self.normalized_shape or min(self.normalized_shape) <= 0:
            raise ValueError(
                f"LayerNorm: normalized_shape must be non-empty and positive, got "
                f"{self.normalized_shape}"
            )
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))

    def forward(self, x: Any) -> Tensor:
        """y = (x − μ)/√(σ² + ε) · γ + β per example (see ``F.layer_norm``).

        Raises:
            ValueError: x does not end with ``normalized_shape``.
        """
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        """``normalized_shape, eps=…, elementwise_affine=…`` for ``repr(module)``."""
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}"
        )
