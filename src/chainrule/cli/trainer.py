"""The training of ``chainrule train``: ``cr.training.fit`` on a run's configuration, with
the callbacks that write its run directory (checkpoint, metrics.jsonl, curves.png), print
a line per epoch and stop cleanly on Ctrl-C.

Resuming is exact because everything random is a function of the configuration: the
initial weights come from ``--seed`` and the order of epoch e's batches from (seed, e).
A Ctrl-C stops at the end of the current batch and keeps the checkpoint of the last
finished epoch; ``--resume`` reruns the interrupted epoch from its start.

Under ``mpiexec -n p`` the same loop is data-parallel: ``--batch-size`` stays the global
batch B, each rank takes its B/p share of every batch (``DataLoader(shard=...)``) and a
``DistributedOptimizer`` averages the gradients, so a run gives the same weights on any
number of ranks (up to rounding) and can be resumed on another one. Rank 0 alone
evaluates, writes the run directory and prints; on a resume it loads the checkpoint and
broadcasts it. The ranks agree on a Ctrl-C at every batch, so they stop together.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import distributed, metrics, nn, optim, training
from chainrule.cli.datasets import Splits
from chainrule.cli.models import build_model
from chainrule.cli.rundir import RunDir, TrainConfig
from chainrule.training import Interrupted
from chainrule.training.loop import Metric

__all__ = ["Trainer", "Interrupted", "evaluate_model", "task_metrics", "predict"]

#: examples per forward pass when evaluating (no graph is kept, so large batches are cheap)
EVAL_BATCH = 1024


def make_optimizer(config: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """Adam, or SGD with momentum 0.9, over the model's parameters at ``config.lr``."""
    if config.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=config.lr)
    if config.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: choose sgd or adam")


def predict(model: nn.Module, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The model's outputs for every row of x, in eval mode and without a graph."""
    model.eval()
    outputs = []
    with cr.no_grad():
        for start in range(0, len(x), batch_size):
            outputs.append(model(cr.tensor(x[start : start + batch_size])).numpy())
    return np.concatenate(outputs)


def task_metrics(splits: Splits) -> dict[str, Metric] | None:
    """What the command line reports besides the loss: None (accuracy, ``fit``'s default for
    cross-entropy) for a classifier; for a regression, whose network learns standardized
    targets, ``loss``, the MSE of the standardized targets (what training minimises), and
    the lecture's MAE, MSE and RMSE in the target's own units."""
    if splits.task == "classification":
        return None
    mean, std = splits.y_mean, splits.y_std

    def standardized_mse(outputs: np.ndarray, y: np.ndarray) -> float:
        return metrics.mse(outputs, (y - mean) / std)

    def in_units(metric: Callable[[Any, Any], float]) -> Metric:
        def figure(outputs: np.ndarray, y: np.ndarray) -> float:
            return metric(outputs * std + mean, y)  # back to the target's units

        return figure

    return {
        "loss": standardized_mse,
        "mae": in_units(metrics.mae),
        "mse": in_units(metrics.mse),
        "rmse": in_units(metrics.rmse),
    }


def loss_for(splits: Splits) -> nn.Module:
    """The training loss: cross-entropy of the logits, or MSE of standardized targets."""
    return nn.CrossEntropyLoss() if splits.task == "classification" else nn.MSELoss()


def evaluate_model(
    model: nn.Module, splits: Splits, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """The training loss on (x, y), and accuracy or the lecture's MAE, MSE, RMSE.

    ``loss`` is what training minimises: the cross-entropy of the logits (classification)
    or the MSE of the standardized targets (regression), so it compares with the training
    loss. ``mae``, ``mse`` and ``rmse`` are in the target's own units.
    """
    return training.evaluate(model, _in_order(x, y), loss_for(splits), task_metrics(splits))


def _in_order(x: np.ndarray, y: np.ndarray) -> cr.data.DataLoader:
    return cr.data.DataLoader(cr.data.TensorDataset(x, y), batch_size=EVAL_BATCH)


class _EpochLines(training.Callback):
    """One printed line per epoch (``_epoch_line``)."""

    def __init__(self, say: Callable[[str], None], epochs: int) -> None:
        self.say, self.epochs = say, epochs

    def on_epoch_end(self, state: training.FitState, record: dict[str, Any]) -> None:
        """Print the epoch's line."""
        self.say(_epoch_line(record, self.epochs, state.examples / record["seconds"]))


class Trainer:
    """Trains one run: ``Trainer(config, splits, run, say, progress).fit()``, after
    ``restore()`` to continue the run's checkpoint."""

    def __init__(
        self,
        config: TrainConfig,
        splits: Splits,
        run: RunDir,
        say: Callable[[str], None],
        progress: bool,
    ) -> None:
        self.config, self.splits, self.run, self.say, self.progress = (
            config, splits, run, say, progress,
        )  # fmt: skip
        self.world, self.rank = distributed.world_size(), distributed.rank()
        if config.batch_size % self.world:
            raise ValueError(
                f"--batch-size {config.batch_size} is the global batch: it must be divisible "
                f"by the {self.world} ranks"
            )
        cr.manual_seed(config.seed)
        self.model = build_model(
            config.model, splits.input_shape, splits.n_outputs, config.hidden, config.activation
        )
        self.optimizer = make_optimizer(config, self.model)
        if self.world > 1:
            distributed.broadcast_parameters(self.model)
            self.optimizer = distributed.DistributedOptimizer(self.optimizer)
        self.loss_fn = loss_for(splits)
        if splits.task == "classification":
            y_fit = splits.y_train
        else:
            y_fit = ((splits.y_train - splits.y_mean) / splits.y_std).astype(np.float32)
        self.loader = cr.data.DataLoader(
            cr.data.TensorDataset(splits.x_train, y_fit),
            batch_size=config.batch_size // self.world,
            shuffle=True,
            seed=config.seed,
            shard=(self.rank, self.world),
        )
        self.epoch = 0

    @property
    def is_main(self) -> bool:
        """True on the rank that evaluates, writes the run directory and prints."""
        return self.rank == 0

    def restore(self) -> None:
        """Continue from the run directory's checkpoint (read by rank 0, sent to the rest)."""
        if self.is_main:
            model_state, optimizer_state, epoch = self.run.load_checkpoint()
            self.model.load_state_dict(model_state)
            self.optimizer.load_state_dict(optimizer_state)
            self.epoch = epoch
            self.run.truncate_metrics(epoch)
        if self.world > 1:
            self.epoch = distributed.broadcast_object(self.epoch)
            distributed.broadcast_parameters(self.model)
            distributed.broadcast_optimizer_state(self.optimizer)

    def callbacks(self, stop: training.StopOnInterrupt) -> list[training.Callback]:
        """Progress bar, then (rank 0) checkpoint, metrics.jsonl, the epoch's line and
        curves.png, then the Ctrl-C handling, which must come last."""
        found: list[training.Callback] = []
        if self.progress:
            found.append(training.ProgressBar(leave=False))
        if self.is_main:
            run, config = self.run, self.config
            regression = self.splits.task == "regression"
            found += [
                training.ModelCheckpoint(run.checkpoint_path),
                training.MetricsLog(run.metrics_path),
                _EpochLines(self.say, config.epochs),
                training.LearningCurves(
                    run.plot_path, f"{config.model} on {config.dataset}", run.read_metrics(),
                    loss_label="MSE (standardized targets)" if regression else None,
                ),
            ]  # fmt: skip
        return [*found, stop]

    def fit(self) -> dict[str, float]:
        """Train the remaining epochs; returns the test metrics (an empty dict off rank 0).

        Raises:
            Interrupted: after a Ctrl-C, once the last finished epoch's checkpoint and the
                curves so far are written.
        """
        splits = self.splits
        val = _in_order(splits.x_val, splits.y_val) if self.is_main else None
        # the handler stays installed after the last epoch: a Ctrl-C then lets the
        # finished run report its results instead of dying in the middle of them
        with training.StopOnInterrupt() as stop:
            try:
                history = training.fit(
                    self.model, self.loss_fn, self.optimizer, self.loader, self.config.epochs,
                    val_loader=val, callbacks=self.callbacks(stop), progress=False,
                    initial_epoch=self.epoch, metrics=task_metrics(splits),
                )  # fmt: skip
            except Interrupted as stopped:
                self.epoch = stopped.epoch
                raise
            self.epoch += len(history)
            if not self.is_main:
                return {}
            return evaluate_model(self.model, splits, splits.x_test, splits.y_test)


def _epoch_line(record: dict[str, Any], epochs: int, throughput: float) -> str:
    """One epoch in one line; a regression says which figures are in which units."""
    parts = [f"epoch {record['epoch']:>3}/{epochs}"]
    if "val_accuracy" in record:
        parts.append(f"train loss {record['train_loss']:.4f}")
        parts.append(f"val loss {record['val_loss']:.4f}")
        parts.append(f"val accuracy {100 * record['val_accuracy']:.2f}%")
    else:
        parts.append(f"train MSE {record['train_loss']:.4f}")
        parts.append(f"val MSE {record['val_loss']:.4f} (standardized targets)")
        parts.append(f"val RMSE {record['val_rmse']:.3f} (target units)")
    seconds = record["seconds"]
    shown = f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"  # not "0.0 s"
    parts.append(f"{shown} ({throughput:,.0f} examples/s)")
    return "  ".join(parts)


def is_terminal() -> bool:
    """Whether standard output is a terminal (then a progress bar is shown)."""
    return sys.stdout.isatty()
