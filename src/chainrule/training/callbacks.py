"""Callbacks: what a training run adds around ``fit``'s loop, one object per concern.

``fit`` calls every callback, in the order given, at five events::

    on_train_begin(state)
        on_epoch_begin(state)
            on_batch_end(state, loss)          after each optimizer step
        on_epoch_end(state, record)            the epoch's record is in state.history
    on_train_end(state)                        always: finished, interrupted or failed

``state`` is the ``FitState`` of the run (model, optimizer, epoch, history, …). The
ready-made callbacks are what ``chainrule train`` uses: ``ProgressBar`` (tqdm),
``ModelCheckpoint`` (weights, optimizer state and epoch after every epoch, atomically),
``MetricsLog`` (one JSON line per epoch), ``LearningCurves`` (curves.png) and
``StopOnInterrupt`` (Ctrl-C stops after the current batch). Write your own by
subclassing ``Callback`` and overriding the events you need.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chainrule import distributed
from chainrule.training.checkpoint import save_checkpoint
from chainrule.training.curves import plot_curves

if TYPE_CHECKING:
    from chainrule.training.loop import FitState

__all__ = [
    "Callback", "ProgressBar", "ModelCheckpoint", "MetricsLog", "LearningCurves",
    "StopOnInterrupt",
]  # fmt: skip


class Callback:
    """The base of every callback: each event does nothing until a subclass overrides it.

    A callback may read and change ``state`` (``state.stop_training = True`` ends training
    after the epoch) and may raise ``KeyboardInterrupt`` to stop at once (``fit`` then
    raises ``Interrupted``).
    """

    def on_train_begin(self, state: FitState) -> None:
        """Before the first epoch (``state.epoch`` is ``initial_epoch``)."""

    def on_epoch_begin(self, state: FitState) -> None:
        """Before epoch ``state.epoch + 1`` (its data order is already set)."""

    def on_batch_end(self, state: FitState, loss: float) -> None:
        """After each optimizer step; ``loss`` is the batch's loss (``state.batch``: its
        index)."""

    def on_epoch_end(self, state: FitState, record: dict[str, Any]) -> None:
        """After epoch ``state.epoch`` and its validation; ``record`` is its history entry."""

    def on_train_end(self, state: FitState) -> None:
        """When training ends, however it ends: ``state.outcome`` says how."""


class ProgressBar(Callback):
    """A tqdm bar per epoch: batches done, speed and the running mean training loss.

    Args:
        leave: keep each epoch's finished bar on screen, with its validation figures (the
            default); False erases it (``chainrule train`` prints its own line instead).
    """

    def __init__(self, leave: bool = True) -> None:
        self.leave = leave
        self._bar: Any = None

    def on_epoch_begin(self, state: FitState) -> None:
        """Open the epoch's bar."""
        from tqdm import tqdm

        loader: Any = state.train_loader
        total = len(loader) if hasattr(loader, "__len__") else None
        self._bar = tqdm(
            total=total, desc=f"epoch {state.epoch + 1}/{state.epochs}", leave=self.leave,
            unit="batch", dynamic_ncols=True,
        )  # fmt: skip

    def on_batch_end(self, state: FitState, loss: float) -> None:
        """Advance the bar; show the running mean loss every 10 batches."""
        self._bar.update(1)
        if state.batch % 10 == 0 and state.examples:
            self._bar.set_postfix(loss=f"{state.train_loss:.4f}")

    def on_epoch_end(self, state: FitState, record: dict[str, Any]) -> None:
        """Show the epoch's figures (when the bar stays), then close it."""
        if self.leave:
            shown = {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")}
            self._bar.set_postfix(shown)
        self._close()

    def on_train_end(self, state: FitState) -> None:
        """Close a bar left open by an interruption."""
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class ModelCheckpoint(Callback):
    """Save the weights, the optimizer state and the epoch after every epoch (atomically).

    The file is ``save_checkpoint``'s: ``restore_checkpoint`` and ``fit(...,
    initial_epoch=…)`` continue the run bit for bit. A crash while writing leaves the
    previous checkpoint, and a run stopped mid-epoch keeps the last finished one.

    Args:
        path: the ``.safetensors`` file, replaced after every epoch.
        save_initial: also save before the first epoch of a fresh run (``initial_epoch``
            0), so that even a run stopped in epoch 1 can be resumed.
    """

    def __init__(self, path: str | os.PathLike[str], save_initial: bool = True) -> None:
        self.path = path
        self.save_initial = save_initial

    def on_train_begin(self, state: FitState) -> None:
        """Save the starting point of a fresh run."""
        if self.save_initial and state.epoch == 0:
            save_checkpoint(self.path, state.model, state.optimizer, state.epoch)

    def on_epoch_end(self, state: FitState, record: dict[str, Any]) -> None:
        """Save the finished epoch."""
        save_checkpoint(self.path, state.model, state.optimizer, state.epoch)


class MetricsLog(Callback):
    """Append each epoch's record to a JSON-lines file: one JSON object per line.

    Args:
        path: the file (created if missing; earlier lines are kept).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def on_epoch_end(self, state: FitState, record: dict[str, Any]) -> None:
        """Append ``record`` as one line."""
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


class LearningCurves(Callback):
    """Draw the learning curves (``plot_curves``) when training ends or is interrupted.

    Args:
        path: the PNG, replaced atomically.
        title: what is trained, e.g. "mlp on digits".
        earlier: records of epochs trained before this ``fit`` (a resumed run's first
            epochs), drawn before ``state.history``.
        loss_label: the loss axis's label (default: "cross-entropy" for a classifier,
            "loss" otherwise).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        title: str,
        earlier: Sequence[dict[str, Any]] = (),
        loss_label: str | None = None,
    ) -> None:
        self.path, self.title, self.loss_label = path, title, loss_label
        self.earlier = list(earlier)

    def on_train_end(self, state: FitState) -> None:
        """Draw every finished epoch (not after a failure)."""
        if state.outcome != "failed":
            plot_curves(self.earlier + state.history, self.path, self.title, self.loss_label)


class StopOnInterrupt(Callback):
    """Ctrl-C stops training cleanly: after the current batch, not in the middle of a step.

    The first SIGINT only sets a flag; at the next batch's (or epoch's) end this callback
    raises ``KeyboardInterrupt``, and ``fit`` raises ``Interrupted`` once the other
    callbacks have ended (the curves are drawn, a ``ModelCheckpoint`` holds the last
    finished epoch). A second SIGINT raises ``KeyboardInterrupt`` at once. Put it last, so
    that the epoch's other callbacks (the checkpoint) run before it stops.

    The handler is installed for the duration of ``fit``; used as a context manager
    (``with stop: fit(...); report()``) it stays installed until the ``with`` block ends,
    so that a Ctrl-C after the last epoch does not cut the caller's own reporting short.
    Signals can be handled only in the main thread: elsewhere this callback does nothing.
    Under MPI, give it on every rank: the ranks agree at every batch (an allreduce) and
    stop together.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False
        self._held = False  # installed by __enter__: fit leaves it in place

    def __enter__(self) -> StopOnInterrupt:
        self._install()
        self._held = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._held = False
        self._uninstall()

    def on_train_begin(self, state: FitState) -> None:
        """Install the SIGINT handler (unless the ``with`` block did)."""
        self._install()

    def on_batch_end(self, state: FitState, loss: float) -> None:
        """Stop here after a Ctrl-C."""
        if self._stopping():
            raise KeyboardInterrupt

    def on_epoch_end(self, state: FitState, record: dict[str, Any]) -> None:
        """Stop here after a Ctrl-C during the epoch's validation or callbacks."""
        if self._stopping():
            raise KeyboardInterrupt

    def on_train_end(self, state: FitState) -> None:
        """Restore the previous handler (unless the ``with`` block holds it)."""
        if not self._held:
            self._uninstall()

    def _install(self) -> None:
        if self._installed:
            return
        self.requested = False
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            return
        self._installed = True

    def _uninstall(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _stopping(self) -> bool:
        """Whether to stop: under MPI, whether any rank saw a Ctrl-C (a Ctrl-C may reach
        the ranks at different batches, and one rank stopping alone would leave the others
        waiting)."""
        if distributed.world_size() == 1:
            return self.requested
        return bool(distributed.allreduce_mean(float(self.requested)) > 0)
