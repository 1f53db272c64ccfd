"""``fit``: epochs of minibatch backprop with validation and callbacks; ``evaluate``.

For every batch (x, y) of the training loader, one step:

    L = loss_fn(model(x), y);   ∂L/∂θ by backprop;   θ ← the optimizer's update of θ

and after each epoch a record: the mean training loss Σ L_b·m_b / Σ m_b over the epoch's
batches b of m_b examples, the seconds it took, and with a validation loader the loss and
metrics on the whole validation set. Callbacks (``chainrule.training.callbacks``) add
what a run needs around this loop: a progress bar, checkpoints, a metrics file, a plot,
a clean stop on Ctrl-C. ``chainrule train`` is this loop with those callbacks.

A resumed run is exact: ``fit`` tells a loader with ``set_epoch`` (``cr.data.DataLoader``)
which epoch comes next, so epoch e's batches are the same whether or not the run stopped
before it; with the weights and optimizer state of a checkpoint
(``restore_checkpoint``) and ``initial_epoch``, training continues bit for bit.

Under MPI (``cr.distributed``) the same loop is data-parallel: give every rank a loader
with ``shard=(rank, world_size)`` and a ``DistributedOptimizer``. Each rank's mean loss is
weighted by its share of the global batch (a last batch may split unevenly, or leave a
rank none), so the averaged gradient is that of the global batch, and the record's
training loss is over all ranks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import distributed
from chainrule import metrics as _metrics
from chainrule.creation import tensor
from chainrule.mode import no_grad
from chainrule.nn import functional as F
from chainrule.nn.loss import CrossEntropyLoss, L1Loss, MSELoss, RMSELoss
from chainrule.nn.module import Module
from chainrule.training.callbacks import Callback, ProgressBar

__all__ = ["fit", "evaluate", "default_metrics", "FitState", "Interrupted"]

#: a metric: (outputs, targets) of a whole set, as ndarrays → a float
Metric = Callable[[np.ndarray, np.ndarray], float]


class Interrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C (a ``KeyboardInterrupt``) before its last epoch.

    Raised by ``fit`` after every callback's ``on_train_end`` has run (a progress bar is
    closed, a plot drawn). It is a ``KeyboardInterrupt``: uncaught, it ends a script as
    Ctrl-C does. A ``ModelCheckpoint`` holds the last finished epoch.

    Attributes:
        epoch: the finished epochs, counting ``initial_epoch``: what a per-epoch
            checkpoint holds, and the ``initial_epoch`` to resume with.
        history: the records of the epochs this ``fit`` call finished.
    """

    def __init__(self, epoch: int, history: list[dict[str, Any]]) -> None:
        super().__init__(f"training interrupted after epoch {epoch}")
        self.epoch = epoch
        self.history = history


@dataclass(eq=False)
class FitState:
    """What callbacks see of a running ``fit``: what is trained, and how far it has got.

    Attributes:
        model: ``fit``'s model (likewise ``loss_fn``, ``optimizer``, ``train_loader`` and
            ``val_loader``).
        epochs: the epoch to stop after (``fit``'s ``epochs``).
        epoch: finished epochs, counting ``initial_epoch``. While epoch e (1-based) runs
            it is e − 1; from ``on_epoch_end`` of epoch e on, it is e.
        batch: the index of the current batch in its epoch (0-based; -1 before the
            first).
        examples: examples trained on in the current epoch so far (after the epoch, under
            MPI: on all ranks together).
        loss_sum: Σ L_b·m_b over the epoch's batches so far; ``train_loss`` is its mean.
        history: one record per epoch finished in this ``fit`` call.
        stop_training: set it to True (in a callback) to stop after the current epoch.
        outcome: "running"; in ``on_train_end``, "finished" (all epochs, or stopped by
            ``stop_training``), "interrupted" (Ctrl-C) or "failed" (an exception).
    """

    model: Module
    loss_fn: Callable[[Any, Any], Any]
    optimizer: Any
    train_loader: Iterable[Any]
    val_loader: Iterable[Any] | None
    epochs: int
    epoch: int
    batch: int = -1
    examples: int = 0
    loss_sum: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_training: bool = False
    outcome: str = "running"

    @property
    def train_loss(self) -> float:
        """The mean training loss of the current epoch so far (0.0 before any example)."""
        return self.loss_sum / self.examples if self.examples else 0.0


def fit(
    model: Module,
    loss_fn: Callable[[Any, Any], Any],
    optimizer: Any,
    train_loader: Iterable[Any],
    epochs: int,
    *,
    val_loader: Iterable[Any] | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    initial_epoch: int = 0,
    metrics: Mapping[str, Metric] | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` by minibatch backprop for epochs ``initial_epoch + 1`` … ``epochs``.

    Each step is L = loss_fn(model(x), y), ``optimizer.zero_grad()``, ``L.backward()``,
    ``optimizer.step()``. After each epoch, ``history`` gets the record
    ``{"epoch": e, "train_loss": Σ L_b·m_b / Σ m_b, "seconds": …}`` plus, with a
    ``val_loader``, ``val_loss`` and ``val_METRIC`` for each metric (see ``evaluate``).

    Args:
        model: the ``nn.Module`` to train (set to ``train()`` mode for every epoch).
        loss_fn: (outputs, targets) → a scalar Tensor, e.g. ``nn.CrossEntropyLoss()``.
        optimizer: an ``Optimizer`` over the model's parameters.
        train_loader: yields (inputs, targets) batches, e.g. a ``cr.data.DataLoader``; if
            it has ``set_epoch`` it is told each epoch's number (0-based) first.
        epochs: the number of epochs to have trained at the end, counting
            ``initial_epoch`` (as ``chainrule train --epochs``).
        val_loader: (inputs, targets) batches evaluated after every epoch, or None.
        callbacks: ``Callback`` objects, called in order at each event.
        progress: show a tqdm progress bar (a ``ProgressBar`` first among the callbacks,
            unless they hold one already).
        initial_epoch: epochs already trained (a resumed run: see
            ``restore_checkpoint``); the first epoch run is ``initial_epoch + 1``.
        metrics: name → metric(outputs, targets) for validation; default
            ``default_metrics(loss_fn)`` (accuracy for cross-entropy; MAE, MSE, RMSE for
            the regression losses).

    Returns:
        The history: one record (a dict) per epoch trained by this call.

    Raises:
        Interrupted: Ctrl-C (any ``KeyboardInterrupt`` while training, or one raised by a
            callback such as ``StopOnInterrupt``), once the callbacks' ``on_train_end``
            have run.
        TypeError, ValueError: for bad arguments, before anything is trained: epochs
            below 1, an ``initial_epoch`` beyond ``epochs``, a loader without batches, a
            callback that is not a ``Callback``, a sharded loader without a
            ``distributed.DistributedOptimizer``.
    """
    _check_arguments(model, loss_fn, optimizer, epochs, initial_epoch)
    world = _check_loader("train_loader", train_loader, optimizer)
    if val_loader is not None:
        _check_loader("val_loader", val_loader, None)
    hooks = _hooks(callbacks, progress)
    chosen = default_metrics(loss_fn) if metrics is None else _check_metrics(metrics)
    state = FitState(model, loss_fn, optimizer, train_loader, val_loader, epochs, initial_epoch)
    try:
        for callback in hooks:
            callback.on_train_begin(state)
        while state.epoch < epochs and not state.stop_training:
            _epoch(state, hooks, world, chosen)
    except KeyboardInterrupt as error:
        state.outcome = "interrupted"
        for callback in hooks:
            callback.on_train_end(state)
        raise Interrupted(state.epoch, state.history) from error
    except BaseException:
        state.outcome = "failed"
        for callback in hooks:
            callback.on_train_end(state)
        raise
    state.outcome = "finished"
    for callback in hooks:
        callback.on_train_end(state)
    return state.history


def _epoch(state: FitState, hooks: list[Callback], world: int, chosen: dict[str, Metric]) -> None:
    """Train one epoch, evaluate, append the record and call ``on_epoch_end``."""
    started = time.perf_counter()
    state.batch, state.examples, state.loss_sum = -1, 0, 0.0
    set_epoch = getattr(state.train_loader, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(state.epoch)
    for callback in hooks:
        callback.on_epoch_begin(state)
    batch_hooks = [c for c in hooks if type(c).on_batch_end is not Callback.on_batch_end]
    if world == 1:
        train_loss = _train_batches(state, batch_hooks)
    else:
        train_loss = _train_shards(state, batch_hooks, world)
    if state.batch < 0:
        raise ValueError(f"fit: train_loader yielded no batches in epoch {state.epoch + 1}")
    seconds = time.perf_counter() - started
    state.epoch += 1
    record: dict[str, Any] = {"epoch": state.epoch, "train_loss": train_loss, "seconds": seconds}
    if state.val_loader is not None:
        figures = evaluate(state.model, state.val_loader, state.loss_fn, chosen)
        record.update({f"val_{name}": value for name, value in figures.items()})
    state.history.append(record)
    for callback in hooks:
        callback.on_epoch_end(state, record)


def _train_batches(state: FitState, batch_hooks: list[Callback]) -> float:
    """One process: L = loss_fn(model(x), y), zero_grad, backward, step, per batch; the
    epoch's mean loss."""
    model, loss_fn, optimizer = state.model, state.loss_fn, state.optimizer
    model.train()
    for step, batch in enumerate(state.train_loader):
        inputs, targets = _pair("train_loader", batch)
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        size = len(inputs)
        state.batch = step
        state.loss_sum += value * size
        state.examples += size
        for callback in batch_hooks:
            callback.on_batch_end(state, value)
    return state.train_loss


def _train_shards(state: FitState, batch_hooks: list[Callback], world: int) -> float:
    """One rank of ``world``: its share of each global batch, the optimizer averaging the
    gradients; the mean loss over every rank's examples."""
    model, loss_fn, optimizer = state.model, state.loss_fn, state.optimizer
    loader: Any = state.train_loader
    n, global_batch = len(loader.dataset), loader.batch_size * world
    model.train()
    for step, batch in enumerate(loader):
        inputs, targets = _pair("train_loader", batch)
        size = len(inputs)
        value = 0.0
        optimizer.zero_grad()
        if size:  # the last global batch may leave this rank no examples
            loss = loss_fn(model(inputs), targets)
            # The averaged gradient must be that of the mean over the global batch even
            # when the last one splits unevenly: weight each rank's mean by its share.
            weight = size * world / min(global_batch, n - step * global_batch)
            (loss if weight == 1 else loss * weight).backward()
            value = loss.item()
        optimizer.step()  # every rank takes part in the gradients' allreduce
        state.batch = step
        state.loss_sum += value * size
        state.examples += size
        for callback in batch_hooks:
            callback.on_batch_end(state, value)
    mean_sum, mean_count = distributed.allreduce_mean([state.loss_sum, state.examples])
    state.loss_sum, state.examples = mean_sum * world, int(round(mean_count * world))
    return mean_sum / mean_count if mean_count else 0.0


def evaluate(
    model: Module,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], Any] | None = None,
    metrics: Mapping[str, Metric] | None = None,
) -> dict[str, float]:
    """The loss and metrics of ``model`` on a whole set, in ``eval()`` mode, without a graph.

    The outputs of every batch are gathered first; then each figure is computed once on
    all of them: ``loss`` = loss_fn(outputs, targets) (for reduction "mean", the mean over
    every example, not a mean of batch means), and metric(outputs, targets) for each
    metric. The modules' training flags are restored afterwards.

    Args:
        model: the model.
        loader: yields (inputs, targets) batches, e.g. a ``DataLoader`` without shuffling.
        loss_fn: gives ``loss`` (left out when None, or when ``metrics`` has its own
            ``"loss"``: e.g. the loss in other units or precision).
        metrics: name → metric(outputs, targets) on ndarrays, a float; default
            ``default_metrics(loss_fn)``.

    Returns:
        ``{"loss": …, name: …}``: the loss first, then the metrics in their order.
    """
    chosen = default_metrics(loss_fn) if metrics is None else _check_metrics(metrics)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    outputs, targets = [], []
    try:
        with no_grad():
            for batch in loader:
                inputs, target = _pair("the evaluation loader", batch)
                outputs.append(np.asarray(model(inputs)))
                targets.append(np.asarray(target))
    finally:
        for module, training in modes:
            module.training = training
    if not outputs:
        raise ValueError("evaluate: the loader yielded no batches")
    output, target = np.concatenate(outputs), np.concatenate(targets)
    figures: dict[str, float] = {}
    if "loss" in chosen:
        figures["loss"] = float(chosen["loss"](output, target))
    elif loss_fn is not None:
        figures["loss"] = float(loss_fn(tensor(output), tensor(target)).item())
    for name, metric in chosen.items():
        if name != "loss":
            figures[name] = float(metric(output, target))
    return figures


def default_metrics(loss_fn: Any) -> dict[str, Metric]:
    """The metrics reported next to a loss: accuracy for cross-entropy (``CrossEntropyLoss``,
    ``F.cross_entropy``); the lecture's MAE, MSE and RMSE for ``MSELoss``, ``L1Loss`` and
    ``RMSELoss`` (and their ``F`` functions); none for any other loss."""
    if isinstance(loss_fn, CrossEntropyLoss) or loss_fn is F.cross_entropy:
        return {"accuracy": _metrics.accuracy}
    regression = (F.mse_loss, F.l1_loss, F.rmse_loss)
    if isinstance(loss_fn, (MSELoss, L1Loss, RMSELoss)) or loss_fn in regression:
        return {"mae": _metrics.mae, "mse": _metrics.mse, "rmse": _metrics.rmse}
    return {}


def _pair(where: str, batch: Any) -> tuple[Any, Any]:
    try:
        inputs, targets = batch
    except (TypeError, ValueError):
        shown = type(batch).__name__
        if isinstance(batch, (tuple, list)):
            shown = f"a {shown} of {len(batch)}"
        raise TypeError(f"{where} must yield (inputs, targets) pairs, got {shown}") from None
    return inputs, targets


def _check_arguments(
    model: Any, loss_fn: Any, optimizer: Any, epochs: Any, initial_epoch: Any
) -> None:
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be callable, got {type(loss_fn).__name__}")
    if not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(
            f"fit: optimizer must have step() and zero_grad() (a cr.optim optimizer), got "
            f"{type(optimizer).__name__}"
        )
    for name, value, low in (("epochs", epochs, 1), ("initial_epoch", initial_epoch, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"fit: {name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"fit: {name} must be at least {low}, got {value}")
    if initial_epoch > epochs:
        raise ValueError(
            f"fit: initial_epoch {initial_epoch} is beyond epochs {epochs}: epochs counts "
            "every epoch, those already trained included"
        )


def _check_loader(name: str, loader: Any, optimizer: Any) -> int:
    """The loader's world size (1 unless sharded); raises for a loader that cannot work."""
    if isinstance(loader, (str, bytes)) or not hasattr(loader, "__iter__"):
        raise TypeError(f"fit: {name} must be iterable, got {type(loader).__name__}")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError(f"fit: {name} yields no batches ({loader!r})")
    world = int(getattr(loader, "world_size", 1))
    if world > 1 and optimizer is not None:
        if not isinstance(optimizer, distributed.DistributedOptimizer):
            raise ValueError(
                f"fit: {name} is sharded over {world} ranks; wrap the optimizer in "
                "cr.distributed.DistributedOptimizer so that the ranks average gradients"
            )
    return world


def _hooks(callbacks: Sequence[Callback], progress: bool) -> list[Callback]:
    if isinstance(callbacks, Callback):
        raise TypeError("fit: callbacks must be a sequence of Callback objects; wrap it: [cb]")
    hooks = list(callbacks)
    for index, callback in enumerate(hooks):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"fit: callbacks[{index}] is a {type(callback).__name__}, not a "
                "cr.training.Callback"
            )
    if progress and not any(isinstance(c, ProgressBar) for c in hooks):
        hooks.insert(0, ProgressBar())
    return hooks


def _check_metrics(metrics: Mapping[str, Metric]) -> dict[str, Metric]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must map names to functions, got {type(metrics).__name__}")
    for name, metric in metrics.items():
        if not isinstance(name, str) or not callable(metric):
            raise TypeError(f"metrics: {name!r} must name a function, got {metric!r}")
    return dict(metrics)
