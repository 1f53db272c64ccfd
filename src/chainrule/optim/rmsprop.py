"""RMSprop: divide the gradient by a running root mean square of its recent values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, _at_least
from chainrule.tensor import Tensor

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """v <- αv + (1−α)g²;  w <- w − η·g / (√v + ε).

    With g = ∇L(w) + λ·w (L2 weight decay). Centered, the running mean of the gradient
    ḡ <- ḡ + (1−α)(g − ḡ) is subtracted: the denominator is √(v − ḡ²) + ε (an estimate
    of the standard deviation). With momentum μ > 0 the step goes through a buffer:
    b <- μb + g / (√v + ε);  w <- w − η·b. PyTorch's rule exactly (Hinton's RMSprop as
    ``torch.optim.RMSprop`` writes it): ε is added after the square root, and the
    learning rate multiplies the buffer, not the gradient.

    Args:
        params: tensors that require grad, or parameter groups (see ``Optimizer``).
        lr: the learning rate η ≥ 0.
        alpha: α ≥ 0, the smoothing constant of the running averages.
        eps: ε ≥ 0, keeps the division finite.
        weight_decay: λ ≥ 0.
        momentum: μ ≥ 0.
        centered: divide by the estimated standard deviation rather than the root mean
            square.
    """

    _buffer_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        _at_least(group, "alpha", 0.0)
        _at_least(group, "eps", 0.0)
        _at_least(group, "weight_decay", 0.0)
        _at_least(group, "momentum", 0.0)
        group["centered"] = bool(group["centered"])

    def _update(self, index: int, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        w = p.data
        alpha = group["alpha"]
        state = self.state[index]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(w)
        state["step"] += 1
        if group["weight_decay"] != 0:
            decayed = self._buffer(index, w, 1)
            np.multiply(w, group["weight_decay"], out=decayed)
            decayed += grad
            grad = decayed
        tmp = self._buffer(index, w, 0)
        square_avg = state["square_avg"]
        square_avg *= alpha
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - alpha
        square_avg += tmp
        avg = self._buffer(index, w, 2)
        if group["centered"]:
            grad_avg = state.get("grad_avg")
            if grad_avg is None:
                grad_avg = state["grad_avg"] = np.zeros_like(w)
            # ḡ + (1 − α)(g − ḡ): how PyTorch's lerp rounds for α > 0.5 (the usual case)
            np.subtract(grad, grad_avg, out=tmp)
            tmp *= 1.0 - alpha
            grad_avg += tmp
            np.multiply(grad_avg, grad_avg, out=avg)
            np.subtract(square_avg, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(square_avg, out=avg)
        avg += group["eps"]
        np.divide(grad, avg, out=tmp)
        if group["momentum"] > 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = np.zeros_like(w)
            buffer *= group["momentum"]
            buffer += tmp
            np.multiply(buffer, group["lr"], out=tmp)
        else:
            tmp *= group["lr"]
        w -= tmp
