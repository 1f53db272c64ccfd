"""cr.training: fit's history and callbacks, bit-exact resumption, Ctrl-C, validation
metrics, the errors for bad arguments, and fit from Python against ``chainrule train``."""

import json
import math
import os
import signal

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, training
from chainrule.cli import main
from chainrule.cli.datasets import load_splits


def blobs(n=240, seed=0):
    """Three separable classes in 4 features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.standard_normal((n, 4)) + 3.0 * np.eye(3, 4)[y]).astype(np.float32)
    return x, y


def setup(seed=0, batch_size=32):
    x, y = blobs()
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(x[:200], y[:200]), batch_size=batch_size, shuffle=True, seed=7
    )
    val = cr.data.DataLoader(cr.data.TensorDataset(x[200:], y[200:]), batch_size=16)
    cr.manual_seed(seed)
    model = cr.models.mlp(4, 16, 3)
    optimizer = cr.optim.Adam(model.parameters(), lr=0.01)
    return model, nn.CrossEntropyLoss(), optimizer, loader, val


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


class Recorder(training.Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, state):
        self.events.append(("train_begin", state.epoch))

    def on_epoch_begin(self, state):
        self.events.append(("epoch_begin", state.epoch))

    def on_batch_end(self, state, loss):
        self.events.append(("batch_end", state.batch))

    def on_epoch_end(self, state, record):
        self.events.append(("epoch_end", state.epoch))

    def on_train_end(self, state):
        self.events.append(("train_end", state.outcome))


class InterruptAt(training.Callback):
    """Ctrl-C (a KeyboardInterrupt) after batch ``batch`` of epoch ``epoch`` (1-based)."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, state, loss):
        if state.epoch + 1 == self.epoch and state.batch == self.batch:
            raise KeyboardInterrupt


# ------------------------------------------------------------------------ the loop
def test_history_has_one_record_per_epoch_with_validation_figures():
    model, loss_fn, optimizer, loader, val = setup()
    history = training.fit(model, loss_fn, optimizer, loader, 5, val_loader=val, progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    for record in history:
        assert list(record) == ["epoch", "train_loss", "seconds", "val_loss", "val_accuracy"]
        assert record["seconds"] > 0 and 0 <= record["val_accuracy"] <= 1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_accuracy"] > 0.8
    assert model.training  # evaluation restored the mode it found


def test_fit_trains_exactly_like_the_loop_written_out():
    model, loss_fn, optimizer, loader, _ = setup()
    history = training.fit(model, loss_fn, optimizer, loader, 3, progress=False)
    by_hand, loss_fn, optimizer, loader, _ = setup()
    for _ in range(3):
        total = count = 0
        for xb, yb in loader:
            loss = loss_fn(by_hand(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
    assert_same_weights(model, by_hand)
    assert history[-1]["train_loss"] == total / count


def test_callbacks_see_every_event_in_order():
    model, loss_fn, optimizer, loader, _ = setup(batch_size=100)  # 2 batches per epoch
    recorder = Recorder()
    training.fit(model, loss_fn, optimizer, loader, 2, callbacks=[recorder], progress=False)
    assert recorder.events == [
        ("train_begin", 0),
        ("epoch_begin", 0), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 1),
        ("epoch_begin", 1), ("batch_end", 0), ("batch_end", 1), ("epoch_end", 2),
        ("train_end", "finished"),
    ]  # fmt: skip


def test_a_callback_can_stop_training_after_an_epoch():
    class StopAfterTwo(training.Callback):
        def on_epoch_end(self, state, record):
            state.stop_training = state.epoch == 2

    model, loss_fn, optimizer, loader, _ = setup()
    history = training.fit(
        model, loss_fn, optimizer, loader, 10, callbacks=[StopAfterTwo()], progress=False
    )
    assert len(history) == 2


def test_regression_reports_the_lectures_mae_mse_and_rmse():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((96, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.1).astype(np.float32)
    loader = cr.data.DataLoader(cr.data.TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)
    cr.manual_seed(0)
    model = cr.models.perceptron(3, 1)
    history = training.fit(
        model, nn.MSELoss(), cr.optim.SGD(model.parameters(), lr=0.05), loader, 3,
        val_loader=loader, progress=False,
    )  # fmt: skip
    last = history[-1]
    assert {"val_loss", "val_mae", "val_mse", "val_rmse"} <= set(last)
    assert math.isclose(last["val_rmse"], math.sqrt(last["val_mse"]), rel_tol=1e-12)
    assert math.isclose(last["val_loss"], last["val_mse"], rel_tol=1e-5)  # float32 vs 64


def test_evaluate_computes_each_figure_once_on_the_whole_set():
    model, loss_fn, _, _, val = setup()
    model.eval()
    x, y = blobs()
    logits = model(cr.tensor(x[200:])).numpy()
    figures = training.evaluate(model, val, loss_fn)
    assert list(figures) == ["loss", "accuracy"]
    assert figures["loss"] == nn.functional.cross_entropy(cr.tensor(logits), y[200:]).item()
    assert figures["accuracy"] == cr.metrics.accuracy(logits, y[200:])

    def top2(outputs, targets):
        return float(np.mean(np.argsort(outputs, axis=1)[:, -2:] == targets[:, None]) * 2)

    mine = training.evaluate(model, val, metrics={"loss": lambda o, t: 0.5, "top2": top2})
    assert mine == {"loss": 0.5, "top2": top2(logits, y[200:])}


def test_progress_shows_one_bar_per_epoch_on_stderr(capsys):
    model, loss_fn, optimizer, loader, val = setup()
    training.fit(model, loss_fn, optimizer, loader, 2, val_loader=val)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "val_accuracy" in err


# ------------------------------------------------------------------------ resuming, Ctrl-C
def test_an_interrupted_run_resumes_bit_for_bit(tmp_path):
    straight = setup()
    training.fit(*straight[:4], 4, progress=False)

    path = tmp_path / "checkpoint.safetensors"
    model, loss_fn, optimizer, loader, _ = setup()
    recorder = Recorder()
    callbacks = [training.ModelCheckpoint(path), recorder, InterruptAt(epoch=3, batch=2)]
    with pytest.raises(training.Interrupted) as stopped:
        training.fit(model, loss_fn, optimizer, loader, 4, callbacks=callbacks, progress=False)
    assert isinstance(stopped.value, KeyboardInterrupt)  # uncaught, it ends a script
    assert stopped.value.epoch == 2 and len(stopped.value.history) == 2
    assert recorder.events[-1] == ("train_end", "interrupted")
    assert training.checkpoint_epoch(path) == 2

    model, loss_fn, optimizer, loader, _ = setup(seed=99)  # fresh objects, other weights
    epoch = training.restore_checkpoint(path, model, optimizer)
    history = training.fit(
        model, loss_fn, optimizer, loader, 4, initial_epoch=epoch, progress=False,
        callbacks=[training.ModelCheckpoint(path)],
    )  # fmt: skip
    assert [r["epoch"] for r in history] == [3, 4]
    assert_same_weights(model, straight[0])
    model_state, _, epoch = training.load_checkpoint(path)
    assert epoch == 4
    for key, value in straight[0].state_dict().items():
        np.testing.assert_array_equal(model_state[key], value)


def test_the_first_ctrl_c_stops_after_the_batch_and_the_handler_is_restored(tmp_path):
    class SigintAt(training.Callback):
        def on_batch_end(self, state, loss):
            if state.epoch == 1 and state.batch == 1:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, during epoch 2

    model, loss_fn, optimizer, loader, _ = setup()
    recorder = Recorder()
    callbacks = [SigintAt(), recorder, training.StopOnInterrupt()]
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(training.Interrupted) as stopped:
        training.fit(model, loss_fn, optimizer, loader, 3, callbacks=callbacks, progress=False)
    assert stopped.value.epoch == 1
    # the batch in which the signal came was finished, and the recorder saw its end
    assert recorder.events[-2:] == [("batch_end", 1), ("train_end", "interrupted")]
    assert signal.getsignal(signal.SIGINT) is before


def test_files_of_a_run_metrics_lines_curves_and_checkpoint(tmp_path):
    model, loss_fn, optimizer, loader, val = setup()
    callbacks = [
        training.ModelCheckpoint(tmp_path / "c.safetensors"),
        training.MetricsLog(tmp_path / "m.jsonl"),
        training.LearningCurves(tmp_path / "curves.png", "mlp on blobs"),
    ]
    history = training.fit(
        model, loss_fn, optimizer, loader, 2, val_loader=val, callbacks=callbacks,
        progress=False,
    )  # fmt: skip
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert training.checkpoint_epoch(tmp_path / "c.safetensors") == 2


def test_a_failure_ends_the_callbacks_and_propagates_unchanged(tmp_path):
    def broken_loss(outputs, targets):
        raise RuntimeError("broken loss")

    model, _, optimizer, loader, _ = setup()
    recorder = Recorder()
    curves = training.LearningCurves(tmp_path / "curves.png", "t")
    with pytest.raises(RuntimeError, match="broken loss"):
        training.fit(
            model, broken_loss, optimizer, loader, 2, callbacks=[recorder, curves],
            progress=False,
        )  # fmt: skip
    assert recorder.events[-1] == ("train_end", "failed")
    assert not (tmp_path / "curves.png").exists()


# ------------------------------------------------------------------------ bad arguments
def _fit(**changes):
    model, loss_fn, optimizer, loader, _ = setup()
    arguments = dict(
        model=model, loss_fn=loss_fn, optimizer=optimizer, train_loader=loader, epochs=2
    )
    arguments.update(changes)
    return training.fit(**arguments, progress=False)


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs must be at least 1, got 0"),
        ({"epochs": 2.0}, TypeError, "epochs must be an int"),
        ({"initial_epoch": 3}, ValueError, "initial_epoch 3 is beyond epochs 2"),
        ({"initial_epoch": -1}, ValueError, "initial_epoch must be at least 0"),
        ({"model": lambda x: x}, TypeError, "model must be an nn.Module"),
        ({"optimizer": "adam"}, TypeError, "optimizer must have step"),
        ({"callbacks": [print]}, TypeError, r"callbacks\[0\] is a builtin_function_or_method"),
        ({"callbacks": training.MetricsLog("x")}, TypeError, "wrap it"),
        ({"train_loader": 5}, TypeError, "train_loader must be iterable"),
        ({"train_loader": cr.data.DataLoader(cr.data.TensorDataset(np.zeros((0, 4))))},
         ValueError, "train_loader yields no batches"),
        ({"train_loader": iter(())}, ValueError, "yielded no batches in epoch 1"),
        ({"train_loader": [(np.zeros((2, 4)),)]}, TypeError,
         r"\(inputs, targets\) pairs, got a tuple of 1"),
        ({"metrics": {"acc": 3}}, TypeError, "'acc' must name a function"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_before_training(changes, error, match):
    with pytest.raises(error, match=match):
        _fit(**changes)


def test_a_sharded_loader_needs_the_distributed_optimizer():
    x, y = blobs()
    sharded = cr.data.DataLoader(cr.data.TensorDataset(x, y), batch_size=8, shard=(0, 2))
    with pytest.raises(ValueError, match="DistributedOptimizer"):
        _fit(train_loader=sharded)


# ------------------------------------------------------------------------ the command line
def test_fit_from_python_gives_the_weights_and_metrics_of_chainrule_train(tmp_path, capsys):
    """The CLI is a shell over fit: the same seed and settings, the same run, bit for bit."""
    out = tmp_path / "run"
    argv = ["train", "--hidden", "32", "--batch-size", "64", "--epochs", "2", "--seed", "4"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()

    splits = load_splits("digits", None, 0.1)
    cr.manual_seed(4)
    model = cr.models.mlp(64, (32,), 10)
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    loader = cr.data.DataLoader(
        cr.data.TensorDataset(splits.x_train, splits.y_train), batch_size=64, shuffle=True,
        seed=4,
    )  # fmt: skip
    val = cr.data.DataLoader(cr.data.TensorDataset(splits.x_val, splits.y_val), batch_size=1024)
    history = training.fit(
        model, nn.CrossEntropyLoss(), optimizer, loader, 2, val_loader=val, progress=False
    )
    saved, _, epoch = training.load_checkpoint(out / "checkpoint.safetensors")
    assert epoch == 2
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for ours, theirs in zip(history, logged, strict=True):
        ours.pop("seconds"), theirs.pop("seconds")
        assert ours == theirs
