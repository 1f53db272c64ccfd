"""The training loop of ``chainrule train``: epochs of minibatch backprop, with progress,
per-epoch checkpoints and metrics, a clean stop on Ctrl-C and exact resumption.

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

import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import distributed, metrics, nn, optim
from chainrule.cli.curves import plot_curves
from chainrule.cli.datasets import Splits
from chainrule.cli.models import build_model
from chainrule.cli.rundir import RunDir, TrainConfig

__all__ = ["Trainer", "Interrupted", "evaluate_model"]


class Interrupted(Exception):
    """Training was stopped by SIGINT after its last checkpoint was saved."""


def make_optimizer(config: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """Adam, or SGD with momentum 0.9, over the model's parameters at ``config.lr``."""
    if config.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=config.lr)
    if config.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    raise ValueError(f"unknown optimizer {config.optimizer!r}: choose sgd or adam")


def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for every row of x, in eval mode and without a graph."""
    model.eval()
    outputs = []
    with cr.no_grad():
        for start in range(0, len(x), batch_size):
            outputs.append(model(cr.tensor(x[start : start + batch_size])).numpy())
    return np.concatenate(outputs)


def evaluate_model(
    model: nn.Module, splits: Splits, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """The training loss on (x, y), and accuracy or the lecture's MAE, MSE, RMSE.

    ``loss`` is what training minimises: the cross-entropy of the logits (classification)
    or the MSE of the standardized targets (regression), so it compares with the training
    loss. ``mae``, ``mse`` and ``rmse`` are in the target's own units.
    """
    outputs = predict(model, x)
    if splits.task == "classification":
        loss = nn.functional.cross_entropy(cr.tensor(outputs), cr.tensor(y)).item()
        return {"loss": loss, "accuracy": metrics.accuracy(outputs, y)}
    y_hat = outputs * splits.y_std + splits.y_mean  # back to the target's units
    return {
        "loss": metrics.mse(outputs, (y - splits.y_mean) / splits.y_std),
        "mae": metrics.mae(y_hat, y),
        "mse": metrics.mse(y_hat, y),
        "rmse": metrics.rmse(y_hat, y),
    }


class _StopFlag:
    """Turns the first SIGINT into a flag checked between batches; a second one aborts."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread: leave signals alone
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Trains one run: ``Trainer(config, splits, run_dir, say).fit(resume=False)``."""

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
        if splits.task == "classification":
            self.loss_fn: nn.Module = nn.CrossEntropyLoss()
            y_fit = splits.y_train
        else:
            self.loss_fn = nn.MSELoss()
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

    def _save(self) -> None:
        if self.is_main:
            self.run.save_checkpoint(
                self.model.state_dict(), self.optimizer.state_dict(), self.epoch
            )

    def _batches(self) -> Iterator[tuple[cr.Tensor, ...]]:
        self.loader.set_epoch(self.epoch)
        if not self.progress:
            yield from self.loader
            return
        from tqdm import tqdm

        bar = tqdm(
            self.loader, desc=f"epoch {self.epoch + 1}/{self.config.epochs}", leave=False,
            unit="batch", dynamic_ncols=True,
        )  # fmt: skip
        self._bar = bar
        yield from bar

    def _train_epoch(self, stop: _StopFlag) -> tuple[float, int]:
        if self.world > 1:
            return self._train_epoch_distributed(stop)
        self.model.train()
        total, count = 0.0, 0
        for step, (xb, yb) in enumerate(self._batches()):
            loss = self.loss_fn(self.model(xb), yb)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(xb)
            count += len(xb)
            if self.progress and step % 10 == 0:
                self._bar.set_postfix(loss=f"{total / count:.4f}")
            if stop.raised:
                raise Interrupted
        return total / max(count, 1), count

    def _train_epoch_distributed(self, stop: _StopFlag) -> tuple[float, int]:
        """One epoch on this rank's shards; returns the loss and example count of all ranks."""
        self.model.train()
        total, count = 0.0, 0
        n, batch = len(self.loader.dataset), self.config.batch_size
        for step, (xb, yb) in enumerate(self._batches()):
            self.optimizer.zero_grad()
            if len(xb):  # the last global batch may leave a rank with no examples
                loss = self.loss_fn(self.model(xb), yb)
                # The averaged gradient must be that of the mean over the global batch even
                # when the last one splits unevenly: weight each rank's mean by its share.
                weight = len(xb) * self.world / min(batch, n - step * batch)
                (loss if weight == 1 else loss * weight).backward()
                total += loss.item() * len(xb)
                count += len(xb)
            self.optimizer.step()
            if self.progress and step % 10 == 0 and count:
                self._bar.set_postfix(loss=f"{total / count:.4f}")
            if self._stopping(stop):
                raise Interrupted
        mean_total, mean_count = distributed.allreduce_mean([total, count])
        loss = mean_total / mean_count if mean_count else 0.0
        return loss, int(round(mean_count * self.world))

    def _stopping(self, stop: _StopFlag) -> bool:
        """Whether to stop: under MPI, the ranks agree (a Ctrl-C may reach them at
        different batches, and one rank stopping alone would leave the others waiting)."""
        if self.world == 1:
            return stop.raised
        return distributed.allreduce_mean(float(stop.raised)) > 0

    def fit(self) -> dict[str, float]:
        """Train the remaining epochs; returns the test metrics (an empty dict off rank 0).

        Raises:
            Interrupted: after a Ctrl-C, once the last finished epoch's checkpoint and the
                curves so far are written.
        """
        if self.epoch == 0:
            self._save()  # a resumable starting point, even if stopped in epoch 1
        with _StopFlag() as stop:
            try:
                while self.epoch < self.config.epochs:
                    started = time.perf_counter()
                    train_loss, seen = self._train_epoch(stop)
                    seconds = time.perf_counter() - started
                    self.epoch += 1
                    if self.is_main:
                        self._end_epoch(train_loss, seen, seconds)
                    if self._stopping(stop):
                        raise Interrupted
            except Interrupted:
                self.plot()
                raise
            # still under the flag: a Ctrl-C after the last epoch lets the finished run
            # report its results instead of dying in the middle of the plot
            if not self.is_main:
                return {}
            self.plot()
            return evaluate_model(self.model, self.splits, self.splits.x_test, self.splits.y_test)

    def plot(self) -> None:
        """Draw curves.png from the run's metrics (rank 0 only)."""
        if self.is_main:
            title = f"{self.config.model} on {self.config.dataset}"
            plot_curves(self.run.read_metrics(), self.run.plot_path, title)

    def _end_epoch(self, train_loss: float, seen: int, seconds: float) -> None:
        val = evaluate_model(self.model, self.splits, self.splits.x_val, self.splits.y_val)
        record = {"epoch": self.epoch, "train_loss": train_loss, "seconds": seconds}
        record.update({f"val_{k}": v for k, v in val.items()})
        self._save()
        self.run.append_metrics(record)
        self.say(_epoch_line(record, self.config.epochs, seen / seconds))


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
