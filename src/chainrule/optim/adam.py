"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, _at_least
from chainrule.tensor import Tensor

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """m <- β₁m + (1−β₁)g;  v <- β₂v + (1−β₂)g²;  w <- w − η·m̂ / (√v̂ + ε).

    With g = ∇L(w) + λ·w (L2 weight decay, as PyTorch's ``Adam``), t the step count,
    m̂ = m / (1 − β₁ᵗ) and √v̂ = √v / √(1 − β₂ᵗ): PyTorch's rule exactly, ε added after
    the square root.

    Args:
        params: tensors that require grad, or parameter groups (see ``Optimizer``).
        lr: the learning rate η ≥ 0.
        betas: (β₁, β₂), each in [0, 1): decay rates of the two moment estimates.
        eps: ε ≥ 0, keeps the division finite.
        weight_decay: λ ≥ 0.
    """

    _buffer_names = ("exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        _at_least(group, "eps", 0.0)
        _at_least(group, "weight_decay", 0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for number, beta in enumerate(betas, start=1):
            if isinstance(beta, bool) or not isinstance(beta, (int, float, np.number)):
                raise TypeError(f"beta{number} must be a number, got {type(beta).__name__}")
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta{number}: {beta} (must be in [0, 1))")
        group["betas"] = (float(betas[0]), float(betas[1]))

    def _update(self, index: int, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        w = p.data
        lr = group["lr"]
        decay = group["weight_decay"]
        beta1, beta2 = group["betas"]
        state = self.state[index]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(w)
            state["exp_avg_sq"] = np.zeros_like(w)
        state["step"] += 1
        step = state["step"]
        exp_avg = state["exp_avg"]
        exp_avg_sq = state["exp_avg_sq"]
        tmp = self._buffer(index, w, 0)
        if decay != 0:
            if self._decoupled:
                w *= 1.0 - lr * decay
            else:
                decayed = self._buffer(index, w, 1)
                np.multiply(w, decay, out=decayed)
                decayed += grad
                grad = decayed
        # m + (1 - β₁)(g - m) is how PyTorch's lerp rounds for β₁ > 0.5 (the usual case).
        np.subtract(grad, exp_avg, out=tmp)
        tmp *= 1.0 - beta1
        exp_avg += tmp
        exp_avg_sq *= beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - beta2
        exp_avg_sq += tmp
        # Bias corrections as Python floats: float32 parameters stay float32.
        step_size = lr / (1.0 - beta1**step)
        correction2_sqrt = math.sqrt(1.0 - beta2**step)
        np.sqrt(exp_avg_sq, out=tmp)
        tmp /= correction2_sqrt
        tmp += group["eps"]
        np.divide(exp_avg, tmp, out=tmp)
        tmp *= step_size
        w -= tmp


class AdamW(Adam):
    """w <- w·(1 − ηλ), then Adam's update with g = ∇L(w) (decoupled weight decay).

    Loshchilov & Hutter's AdamW, exactly as PyTorch's ``AdamW``: the decay shrinks the
    weights directly instead of entering the moment estimates.

    Args:
        params: tensors that require grad, or parameter groups (see ``Optimizer``).
        lr: the learning rate η ≥ 0.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε ≥ 0.
        weight_decay: λ ≥ 0 (default 1e-2, as PyTorch).
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
