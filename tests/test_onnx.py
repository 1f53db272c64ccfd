"""ONNX export: outputs under onnxruntime equal chainrule's, for any batch size, from code
and from ``chainrule export``; unsupported layers and bad input are clear errors."""

import argparse
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule import onnx as cr_onnx
from chainrule.cli import export as export_cli
from chainrule.cli import main
from chainrule.cli.datasets import load_splits
from chainrule.cli.errors import UsageError
from chainrule.cli.models import build_model
from chainrule.cli.rundir import RunDir

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ATOL = 1e-5


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: np.asarray(x)})
    return output


def reference(model, x):
    training = model.training
    model.eval()
    with cr.no_grad():
        y = model(cr.tensor(x)).numpy()
    model.train(training)
    return y


def mlp():
    cr.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Dropout(0.5),
        nn.Linear(8, 4), nn.Sigmoid(), nn.Linear(4, 3), nn.Softmax(axis=1),
    )  # fmt: skip


def cnn(rng):
    cr.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.3),
        nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0)), nn.Tanh(),
        nn.AvgPool2d(2, stride=1), nn.Identity(),
        nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(),
        nn.Linear(5, 3), nn.LogSoftmax(axis=-1),
    )  # fmt: skip
    # running statistics and affine parameters away from their initial 0/1, so an export
    # that used the batch statistics or skipped γ, β would differ
    for _ in range(3):
        model(cr.tensor(rng.standard_normal((16, 2, 8, 6)) * 2 + 1))
    for bn in (model[1], model[11]):
        bn.weight.data[...] = rng.uniform(0.5, 2.0, bn.num_features)
        bn.bias.data[...] = rng.standard_normal(bn.num_features)
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_mlp_matches_chainrule_at_the_example_batch_size(tmp_path, rng):
    model = mlp()
    x = rng.standard_normal((5, 6)).astype(np.float32)
    cr_onnx.export(model, x, tmp_path / "mlp.onnx")
    out = run_onnx(tmp_path / "mlp.onnx", x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference(model, x), atol=ATOL, rtol=0)


def test_cnn_with_batchnorm_pooling_and_dropout_matches_chainrule(tmp_path, rng):
    model = cnn(rng)
    x = rng.standard_normal((4, 2, 8, 6)).astype(np.float32)
    cr_onnx.export(model, cr.tensor(x), tmp_path / "cnn.onnx")
    expected = reference(model, x)
    np.testing.assert_allclose(run_onnx(tmp_path / "cnn.onnx", x), expected, atol=ATOL, rtol=0)
    # eval mode is what was exported: the training-mode output (batch statistics, dropout)
    # is a different function
    with cr.no_grad():
        assert not np.allclose(model(cr.tensor(x)).numpy(), expected, atol=1e-3)


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_batch_axis_is_dynamic(tmp_path, rng, batch):
    for name, model, shape in [("mlp", mlp(), (6,)), ("cnn", cnn(rng), (2, 8, 6))]:
        path = tmp_path / f"{name}.onnx"
        cr_onnx.export(model, rng.standard_normal((2, *shape)).astype(np.float32), path)
        graph = onnx.load(path).graph
        for value in (graph.input[0], graph.output[0]):
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        out = run_onnx(path, x)
        assert out.shape == (batch, 3)
        np.testing.assert_allclose(out, reference(model, x), atol=ATOL, rtol=0)


def test_export_restores_training_mode_and_leaves_the_model_unchanged(tmp_path, rng):
    model = cnn(rng)
    model[3].eval()  # a mixed state must come back as it was
    modes = [m.training for m in model.modules()]
    state = {k: v.copy() for k, v in model.state_dict().items()}
    cr_onnx.export(model, rng.standard_normal((3, 2, 8, 6)), tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_linear_weight_is_stored_in_our_in_by_out_layout(tmp_path, rng):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))
    proto = cr_onnx.export(model, rng.standard_normal((2, 4)), tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"), full_check=True)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert set(weights) == set(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(weights[key], value, err_msg=key)
    gemms = [node for node in proto.graph.node if node.op_type == "Gemm"]
    assert len(gemms) == 2
    for node in gemms:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes.get("transB", 0) == 0


def test_nested_sequential_higher_rank_linear_and_partial_flatten(tmp_path, rng):
    cr.manual_seed(2)
    model = nn.Sequential(
        nn.Flatten(1, 2),  # (N, 2, 3, 4) -> (N, 6, 4): a Reshape keeping the batch dynamic
        nn.Sequential(nn.Linear(4, 5), nn.Tanh()),  # Linear on rank 3: MatMul + Add
        nn.Softmax(axis=1),
        nn.Sequential(nn.Identity(), nn.Sequential(nn.Linear(5, 2, bias=False))),
        nn.LogSoftmax(axis=1),
    )
    path = tmp_path / "m.onnx"
    cr_onnx.export(model, rng.standard_normal((3, 2, 3, 4)).astype(np.float32), path)
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert ops == ["Reshape", "MatMul", "Add", "Tanh", "Softmax", "MatMul", "LogSoftmax"]
    for batch in (1, 4):
        x = rng.standard_normal((batch, 2, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(run_onnx(path, x), reference(model, x), atol=ATOL, rtol=0)


def test_identity_only_model_and_single_layer(tmp_path, rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    cr_onnx.export(nn.Sequential(nn.Dropout(0.2), nn.Identity()), x, tmp_path / "id.onnx")
    np.testing.assert_array_equal(run_onnx(tmp_path / "id.onnx", x), x)
    layer = nn.Linear(3, 2)
    cr_onnx.export(layer, x, tmp_path / "linear.onnx")
    np.testing.assert_allclose(
        run_onnx(tmp_path / "linear.onnx", x), reference(layer, x), atol=ATOL, rtol=0
    )


def test_float64_models_export_as_double(tmp_path, rng):
    model = mlp().double()
    x = rng.standard_normal((4, 6))
    cr_onnx.export(model, x, tmp_path / "m.onnx")
    out = run_onnx(tmp_path / "m.onnx", x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, reference(model, x), atol=1e-12, rtol=0)


def test_matches_pytorch_oracle_on_the_same_weights(tmp_path, rng):
    """chainrule's own forward could be wrong in the same way as the export: cross-check
    the ONNX output against PyTorch on the very same parameters."""
    torch = pytest.importorskip("torch")
    model = cnn(rng)
    x = rng.standard_normal((5, 2, 8, 6)).astype(np.float32)
    cr_onnx.export(model, x, tmp_path / "m.onnx")
    state = {k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}
    oracle = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Dropout(0.3),
        torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0)), torch.nn.Tanh(),
        torch.nn.AvgPool2d(2, stride=1), torch.nn.Identity(),
        torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(),
        torch.nn.Linear(5, 3), torch.nn.LogSoftmax(dim=-1),
    )  # fmt: skip
    for key in ("10.weight", "13.weight"):  # torch stores Linear weights as (out, in)
        state[key] = state[key].T.contiguous()
    oracle.load_state_dict(state, strict=False)
    oracle.eval()
    with torch.no_grad():
        expected = oracle(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), expected, atol=ATOL, rtol=0)


class Swish(nn.Module):
    def forward(self, x):
        return x * cr.sigmoid(x)


@pytest.mark.parametrize(
    "model, where",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Swish(), nn.Linear(4, 2)), "layer 2 (Swish)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Sequential(Swish())), "layer 1.0 (Swish)"),
        (Swish(), "layer Swish (Swish)"),
        (nn.Sequential(nn.Linear(3, 2), nn.MSELoss()), "layer 1 (MSELoss)"),
    ],
)
def test_unsupported_layer_is_named(tmp_path, model, where):
    path = tmp_path / "m.onnx"
    with pytest.raises(cr_onnx.ExportError) as error:
        cr_onnx.export(model, np.zeros((2, 3), dtype=np.float32), path)
    assert where in str(error.value)
    assert "not supported" in str(error.value) and "Linear" in str(error.value)
    assert not path.exists()


def test_bad_arguments_are_clear_errors(tmp_path):
    path = tmp_path / "m.onnx"
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(cr_onnx.ExportError, match="opset must be an integer >= 13, got 11"):
        cr_onnx.export(model, np.zeros((1, 3), np.float32), path, opset=11)
    with pytest.raises(cr_onnx.ExportError, match="float16, float32 or float64, got int64"):
        cr_onnx.export(model, np.zeros((1, 3), np.int64), path)
    with pytest.raises(cr_onnx.ExportError, match=r"a batch \(N, ...\).*got shape \(\)"):
        cr_onnx.export(model, np.float32(1.0), path)
    with pytest.raises(cr_onnx.ExportError, match="must be an nn.Module, got function"):
        cr_onnx.export(lambda x: x, np.zeros((1, 3), np.float32), path)
    flat_all = nn.Sequential(nn.Flatten(0, -1))
    with pytest.raises(cr_onnx.ExportError, match=r"layer 0 \(Flatten\) merges the batch"):
        cr_onnx.export(flat_all, np.zeros((2, 3), np.float32), path)
    # the example does not fit the model: the layer is named with the shapes
    with pytest.raises(cr_onnx.ExportError, match=r"layer 0 \(Linear\) fails on .* \(1, 4\)"):
        cr_onnx.export(model, np.zeros((1, 4), np.float32), path)
    assert not path.exists()


def test_missing_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[onnx\]'"):
        cr_onnx.export(nn.Linear(3, 2), np.zeros((1, 3), np.float32), tmp_path / "m.onnx")


# ----------------------------------------------------------------------- the command line
def export_command(argv):
    """``chainrule export ...`` through main(), as a user runs it."""
    return main(["export", *argv])


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """An MLP and a CNN trained by ``chainrule train`` for one epoch on digits."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for kind in ("mlp", "cnn"):
        out = root / kind
        argv = ["train", "--model", kind, "--epochs", "1", "--quiet"]
        hidden = ["--hidden", "32"] if kind == "mlp" else []  # the cnn's layers are fixed
        assert main([*argv, *hidden, "--out", str(out)]) == 0
        runs[kind] = out
    return runs


def _chainrule_outputs(run, splits):
    config = RunDir(run).read_config()
    model = build_model(
        config.model, splits.input_shape, splits.n_outputs, config.hidden, config.activation
    )
    model.load_state_dict(RunDir(run).load_checkpoint()[0])
    return reference(model, splits.x_test)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trained_run_exports_through_the_cli_with_the_same_predictions(
    trained_runs, tmp_path, capsys, kind
):
    path = tmp_path / f"{kind}.onnx"
    assert export_command(["--checkpoint", str(trained_runs[kind]), "--onnx", str(path)]) == 0
    stdout = capsys.readouterr().out
    assert f"wrote {path}" in stdout and "onnxruntime agrees" in stdout
    splits = load_splits("digits", None, 0.1)
    expected = _chainrule_outputs(trained_runs[kind], splits)
    exported = run_onnx(path, splits.x_test)
    np.testing.assert_allclose(exported, expected, atol=ATOL, rtol=0)
    np.testing.assert_array_equal(exported.argmax(axis=1), expected.argmax(axis=1))
    # any batch size, the first axis is dynamic
    np.testing.assert_allclose(run_onnx(path, splits.x_test[:7]), expected[:7], atol=ATOL)


def test_regression_run_exports_predictions_in_the_targets_units(tmp_path, capsys):
    run = tmp_path / "diabetes"
    argv = ["train", "--dataset", "diabetes", "--epochs", "1", "--hidden", "16", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    path = tmp_path / "diabetes.onnx"
    assert export_command(["--checkpoint", str(run), "--onnx", str(path)]) == 0
    capsys.readouterr()
    splits = load_splits("diabetes", None, 0.1)
    standardized = _chainrule_outputs(run, splits)
    expected = standardized * splits.y_std + splits.y_mean
    assert splits.y_std != 1.0 and splits.y_mean != 0.0  # otherwise the check says nothing
    np.testing.assert_allclose(run_onnx(path, splits.x_test), expected, rtol=1e-5, atol=1e-4)


def test_cli_reports_a_mismatch_under_onnxruntime(trained_runs, tmp_path, capsys, monkeypatch):
    """The CLI's own check must be able to fail: corrupt the file right after writing it."""
    real_export = export_cli.export_onnx

    def corrupting_export(model, example, path, opset):
        proto = real_export(model, example, path, opset=opset)
        weight = proto.graph.initializer[0]
        array = onnx.numpy_helper.to_array(weight) + 0.5
        weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
        onnx.save(proto, str(path))
        return proto

    monkeypatch.setattr(export_cli, "export_onnx", corrupting_export)
    path = tmp_path / "bad.onnx"
    status = export_command(["--checkpoint", str(trained_runs["mlp"]), "--onnx", str(path)])
    assert status == 1
    assert "onnxruntime's outputs differ from chainrule's" in capsys.readouterr().err


def test_cli_refuses_a_file_for_a_folder_and_a_non_run_directory(trained_runs, tmp_path):
    (tmp_path / "no").write_text("a file, not a folder")
    missing = tmp_path / "no" / "such" / "m.onnx"
    with pytest.raises(UsageError, match="is a file, not a folder"):
        export_cli.run(
            argparse.Namespace(
                checkpoint=str(trained_runs["mlp"]), onnx=str(missing), opset=17, data_dir=None
            )
        )
    with pytest.raises(UsageError, match="not a run directory"):
        export_cli.run(
            argparse.Namespace(
                checkpoint=str(tmp_path), onnx=str(tmp_path / "m.onnx"), opset=17, data_dir=None
            )
        )


def test_main_runs_export_and_reports_errors_in_one_line(trained_runs, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(trained_runs["mlp"]), "--onnx", str(path)]) == 0
    assert path.is_file()
    capsys.readouterr()
    (tmp_path / "none").write_text("a file, not a folder")
    missing = str(tmp_path / "none" / "m.onnx")
    assert main(["export", "--checkpoint", str(trained_runs["mlp"]), "--onnx", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error:") and err.count("\n") == 1
