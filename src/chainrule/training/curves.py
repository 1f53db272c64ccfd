"""Learning curves: the per-epoch records of ``fit`` drawn as a PNG (matplotlib, Agg).

Left, the loss per epoch: the training loss (the mean over the epoch's batches) and the
validation loss (after the epoch) on one axis, so over-fitting shows as the two lines
parting; the epoch of the lowest validation loss is marked. Right, the validation metric:
accuracy for a classifier, RMSE in the target's units for a regression. Epochs are whole
numbers on the axis, and a one-epoch run is a pair of points, not an empty frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["plot_curves", "draw_curves"]


def plot_curves(
    records: list[dict[str, Any]],
    path: str | os.PathLike[str],
    title: str,
    loss_label: str | None = None,
) -> None:
    """Draw per-epoch records (``fit``'s history, or metrics.jsonl) to ``path`` (PNG, atomically).

    Args:
        records: one dict per finished epoch with ``epoch``, ``train_loss``, and with a
            validation set ``val_loss`` and ``val_accuracy`` (classification) or
            ``val_rmse`` (regression).
        path: the PNG to write.
        title: what was trained, e.g. "mlp on digits".
        loss_label: the loss axis's label (default "cross-entropy" for a classifier,
            "loss" otherwise).
    """
    from matplotlib import pyplot as plt

    path = Path(path)
    figure = draw_curves(records, title, loss_label)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    temporary.replace(path)


def draw_curves(records: list[dict[str, Any]], title: str, loss_label: str | None = None) -> Any:
    """The matplotlib Figure of ``plot_curves`` (Agg backend), left open for the caller."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in records]
    classification = bool(records) and "val_accuracy" in records[0]
    style = {"marker": "o" if len(epochs) <= 40 else None, "markersize": 4}
    left.plot(epochs, [r["train_loss"] for r in records], label="training", **style)
    if records and "val_loss" in records[0]:
        val_loss = [r["val_loss"] for r in records]
        left.plot(epochs, val_loss, label="validation", **style)
        best = epochs[min(range(len(val_loss)), key=val_loss.__getitem__)]
        left.axvline(best, color="grey", linestyle=":", linewidth=1,
                     label=f"lowest validation loss (epoch {best})")  # fmt: skip
    if loss_label is None:
        loss_label = "cross-entropy" if classification else "loss"
    left.set(title="loss", xlabel="epoch", ylabel=loss_label)
    if classification:
        right.plot(epochs, [100 * r["val_accuracy"] for r in records], color="C1", **style)
        right.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
    else:
        rmse = [r.get("val_rmse", float("nan")) for r in records]
        right.plot(epochs, rmse, color="C1", **style)
        right.set(title="validation RMSE", xlabel="epoch", ylabel="RMSE (target units)")
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if len(epochs) == 1:  # one point: centre it instead of a degenerate axis
            axes.set_xlim(epochs[0] - 1, epochs[0] + 1)
        if not records:
            axes.text(0.5, 0.5, "no epoch finished yet", ha="center", va="center",
                      transform=axes.transAxes, color="grey")  # fmt: skip
    if records:
        left.legend(fontsize="small")
    count = len(records)
    figure.suptitle(f"{title}: {count} epoch{'' if count == 1 else 's'}")
    figure.tight_layout()
    return figure
