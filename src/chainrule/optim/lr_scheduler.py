"""Learning-rate schedules: ``StepLR`` and ``CosineAnnealingLR`` (``cr.optim.lr_scheduler``).

Call ``scheduler.step()`` once per epoch, after ``optimizer.step()``. Both schedules are
computed in closed form from the epoch count, so a resumed run (``load_state_dict``) gets
exactly the learning rates of an uninterrupted one; they equal PyTorch's recursive
sequences up to rounding (about 1e-16 relative).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from chainrule.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class: sets ``group["lr"]`` of every parameter group from the epoch count.

    Args:
        optimizer: the optimizer whose learning rates are scheduled. Each group's current
            ``lr`` becomes its base learning rate (stored as ``initial_lr``).
        last_epoch: the index of the last finished epoch; -1 starts a fresh schedule.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"expected an Optimizer, got {type(optimizer).__name__}")
        _check_int("last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        for number, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(
                    f"param group {number} has no 'initial_lr': resuming with last_epoch="
                    f"{last_epoch} needs an optimizer that was scheduled before"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """The learning rate of a group with ``base_lr`` at ``epoch`` (subclasses)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new learning rates into the optimizer."""
        self.last_epoch += 1
        lrs = [self.lr_at(self.last_epoch, base) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step``, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and lists (JSON-ready); the optimizer is not included."""
        return {
            key: (list(value) if isinstance(value, list) else value)
            for key, value in vars(self).items()
            if key != "optimizer"
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``; its keys must be this scheduler's."""
        expected = set(vars(self)) - {"optimizer"}
        if set(state_dict) != expected:
            raise ValueError(
                f"{type(self).__name__} state dict keys {sorted(state_dict)} differ from "
                f"{sorted(expected)}"
            )
        if len(state_dict["base_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(
                f"state dict has {len(state_dict['base_lrs'])} base learning rates, the "
                f"optimizer has {len(self.optimizer.param_groups)} parameter groups"
            )
        for key, value in state_dict.items():
            setattr(self, key, list(value) if isinstance(value, list) else value)


class StepLR(LRScheduler):
    """η_t = η₀ · γ^⌊t / step_size⌋: multiply the learning rate by γ every step_size epochs.

    Args:
        optimizer: the optimizer to schedule.
        step_size: epochs between decays (a positive int).
        gamma: the decay factor γ ≥ 0.
        last_epoch: -1 for a fresh schedule.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        _check_int("step_size", step_size, 1)
        if not gamma >= 0:
            raise ValueError(f"invalid gamma: {gamma} (must be >= 0)")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """η_e = η₀ · γ^⌊e / step_size⌋."""
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """η_t = η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2.

    The learning rate falls from η₀ to η_min over T_max epochs; past T_max it follows the
    same cosine back up (as PyTorch's does without restarts).

    Args:
        optimizer: the optimizer to schedule.
        T_max: the number of epochs of the descent (a positive int).
        eta_min: the final learning rate η_min ≥ 0.
        last_epoch: -1 for a fresh schedule.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        _check_int("T_max", T_max, 1)
        if not eta_min >= 0:
            raise ValueError(f"invalid eta_min: {eta_min} (must be >= 0)")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """η_e = η_min + (η₀ − η_min)(1 + cos(π e / T_max)) / 2."""
        cosine = (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0
        return self.eta_min + (base_lr - self.eta_min) * cosine


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"invalid {name}: {value} (must be >= {low})")
