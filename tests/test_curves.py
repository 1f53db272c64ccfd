"""Learning curves (curves.png, ``cr.training.plot_curves``): whole epochs on the axis,
training and validation loss together, a title."""

import struct

import pytest

pytest.importorskip("matplotlib")
from matplotlib import pyplot as plt  # noqa: E402

from chainrule.training.curves import draw_curves, plot_curves  # noqa: E402


def records(n, task="classification"):
    rows = []
    for epoch in range(1, n + 1):
        row = {
            "epoch": epoch,
            "train_loss": 1.0 / epoch,
            "val_loss": 0.5 + 0.01 * (epoch - 3) ** 2,
        }
        row.update({"val_accuracy": 0.9} if task == "classification" else {"val_rmse": 50.0})
        rows.append(row)
    return rows


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.mark.parametrize("n", [0, 1, 7, 60])
def test_the_picture_is_written_for_any_number_of_epochs(tmp_path, n):
    path = tmp_path / "curves.png"
    plot_curves(records(n), path, "mlp on digits")
    assert png_size(path) == (1000, 400)
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_both_losses_integer_epochs_and_a_title(task):
    figure = draw_curves(records(7, task), "cnn on fashion-mnist")
    try:
        left, right = figure.axes
        labels = [line.get_label() for line in left.get_lines()]
        assert labels[:2] == ["training", "validation"]
        assert "lowest validation loss (epoch 3)" in labels[2]  # where over-fitting starts
        figure.canvas.draw()
        ticks = [t for t in left.get_xticks() if left.get_xlim()[0] <= t <= left.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert figure._suptitle.get_text() == "cnn on fashion-mnist: 7 epochs"
        expected = "validation accuracy" if task == "classification" else "validation RMSE"
        assert right.get_title() == expected
    finally:
        plt.close(figure)


def test_one_epoch_is_centred_not_a_degenerate_axis():
    figure = draw_curves(records(1), "mlp on digits")
    try:
        assert figure.axes[0].get_xlim() == (0, 2)
        assert figure._suptitle.get_text().endswith("1 epoch")
    finally:
        plt.close(figure)


def test_the_loss_axis_is_labelled_by_the_task_or_the_caller():
    for task, given, expected in [
        ("classification", None, "cross-entropy"),
        ("regression", None, "loss"),
        ("regression", "MSE (standardized targets)", "MSE (standardized targets)"),
    ]:
        figure = draw_curves(records(3, task), "t", loss_label=given)
        try:
            assert figure.axes[0].get_ylabel() == expected
        finally:
            plt.close(figure)
