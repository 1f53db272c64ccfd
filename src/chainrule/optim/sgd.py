"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, _at_least
from chainrule.tensor import Tensor

__all__ = ["SGD"]


class SGD(Optimizer):
    """g <- ∇L(w) + λ·w;  v <- μ·v + (1 − τ)·g;  w <- w − η·(g + μ·v if Nesterov else v).

    PyTorch's rule exactly: on the first step the velocity is v = g (no dampening), and
    with ``momentum=0`` the update is plain w <- w − η·g.

    Args:
        params: tensors that require grad, or parameter groups (see ``Optimizer``).
        lr: the learning rate η ≥ 0.
        momentum: μ ≥ 0.
        dampening: τ ≥ 0, the share of the gradient left out of the velocity.
        weight_decay: λ ≥ 0, an L2 penalty (λ/2)·‖w‖² added to the loss.
        nesterov: look ahead along the velocity; needs ``momentum > 0`` and
            ``dampening == 0``.
    """

    _buffer_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check_hyper(self, group: dict[str, Any]) -> None:
        super()._check_hyper(group)
        _at_least(group, "momentum", 0.0)
        _at_least(group, "dampening", 0.0)
        _at_least(group, "weight_decay", 0.0)
        group["nesterov"] = bool(group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum needs momentum > 0 and dampening == 0, got momentum="
                f"{group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, index: int, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        w = p.data
        momentum = group["momentum"]
        out = self._buffer(index, w, 0)
        step = grad
        if group["weight_decay"] != 0:
            step = self._buffer(index, w, 1)
            np.multiply(w, group["weight_decay"], out=step)
            step += grad
        if momentum != 0:
            state = self.state[index]
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = state["momentum_buffer"] = step.copy()
            else:
                velocity *= momentum
                if group["dampening"] == 0:
                    velocity += step
                else:
                    np.multiply(step, 1.0 - group["dampening"], out=out)
                    velocity += out
            if group["nesterov"]:
                np.multiply(velocity, momentum, out=out)
                out += step
                step = out
            else:
                step = velocity
        np.multiply(step, group["lr"], out=out)
        w -= out
