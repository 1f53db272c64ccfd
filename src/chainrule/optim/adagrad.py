"""Adagrad: per-coordinate learning rates from the sum of all past squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, _at_least
from chainrule.tensor import Tensor

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """s <- s + g²;  w <- w − η_t·g / (√s + ε),  η_t = η / (1 + (t − 1)·δ).

    With g = ∇L(w) + λ·w (L2 weight decay), t the step count (from 1), δ the
    learning-rate decay, and s starting at ``initial_accumulator_value``. PyTorch's rule
    exactly (Duchi et al.'s Adagrad as ``torch.optim.Adagrad`` writes it): ε is added
    after the square root.

    Args:
        params: tensors that require grad, or parameter groups (see ``Optimizer``).
        lr: the learning rate η ≥ 0.
        lr_decay: δ ≥ 0.
        weight_decay: λ ≥ 0.
        initial_accumulator_value: the starting value ≥ 0 of every s.
        eps: ε ≥ 0, keeps the division finite.
    """

    _buffer_names = ("sum",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        _at_least(group, "lr_decay", 0.0)
        _at_least(group, "weight_decay", 0.0)
        _at_least(group, "initial_accumulator_value", 0.0)
        _at_least(group, "eps", 0.0)

    def _update(self, index: int, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        w = p.data
        state = self.state[index]
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(w, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            decayed = self._buffer(index, w, 1)
            np.multiply(w, group["weight_decay"], out=decayed)
            decayed += grad
            grad = decayed
        # a Python float: float32 parameters stay float32
        step_lr = group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"])
        total = state["sum"]
        tmp = self._buffer(index, w, 0)
        np.multiply(grad, grad, out=tmp)
        total += tmp
        np.sqrt(total, out=tmp)
        tmp += group["eps"]
        np.divide(grad, tmp, out=tmp)
        tmp *= step_lr
        w -= tmp
