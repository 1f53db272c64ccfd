"""``chainrule export``: a trained run's model as an ONNX file, checked under onnxruntime.

    chainrule export --checkpoint DIR --onnx FILE [--opset 17] [--data-dir DIR]

The model of the run directory DIR (written by ``chainrule train``; the checkpoint file
in it is accepted too) is rebuilt from its ``config.json``, loaded from its checkpoint
and written by ``chainrule.onnx.export`` with a dynamic batch axis. Its input is one
example's shape as the dataset gives it (digits: (batch, 1, 8, 8) in [0, 1]); a
classifier outputs logits, a regression model (diabetes) outputs predictions in the
target's units (the standardisation used for training is undone inside the ONNX graph).
When onnxruntime is installed, the file is run on the test split and must give
chainrule's outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.cli import paths
from chainrule.cli.datasets import Splits
from chainrule.cli.errors import UsageError
from chainrule.cli.models import load_trained
from chainrule.cli.output import echo
from chainrule.cli.rundir import RunDir
from chainrule.cli.trainer import predict
from chainrule.onnx import DEFAULT_OPSET, MIN_OPSET
from chainrule.onnx import export as export_onnx

__all__ = ["add_parser", "run", "TOLERANCE"]

DESCRIPTION = """\
Write a trained run's model as an ONNX file with a dynamic batch axis (pip
install 'chainrule[onnx]'), then run the file under onnxruntime on the test
split: it must give chainrule's outputs. A regression model's file predicts in
the target's own units."""

#: relative and absolute tolerance: float32 outputs whose operations run in another order
TOLERANCE = 1e-4
EXIT_MISMATCH = 1


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``export`` (and its options) on the ``chainrule`` subcommand parsers."""
    parser = subparsers.add_parser(
        "export",
        help="write a trained run's model as ONNX (checked under onnxruntime)",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--checkpoint", required=True, metavar="PATH",
        help="a run directory, or the checkpoint.safetensors in one",
    )  # fmt: skip
    parser.add_argument(
        "--onnx", required=True, metavar="FILE",
        help="the .onnx file to write (replaced if it exists; its folder must exist)",
    )  # fmt: skip
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET,
        help=f"ONNX opset version, at least {MIN_OPSET} (default: {DEFAULT_OPSET})",
    )  # fmt: skip
    parser.add_argument("--data-dir", metavar="DIR", help="folder of the Fashion-MNIST IDX files")
    return parser


def run(args: argparse.Namespace) -> int:
    """Export the run's model to ``args.onnx``; 0 on success, 1 if onnxruntime disagrees."""
    target = paths.output_file(args.onnx, "--onnx")
    folder, checkpoint = paths.existing_run(args.checkpoint, "--checkpoint")
    if args.opset < MIN_OPSET:
        raise UsageError(f"--opset {args.opset}: chainrule writes opset {MIN_OPSET} or later")
    try:
        import onnx  # noqa: F401  (the extra is checked before any data is loaded)
    except ImportError:
        raise UsageError(
            "chainrule export needs the onnx package: pip install 'chainrule[onnx]'"
        ) from None
    run_dir = RunDir(folder, checkpoint)
    config, splits, model, epoch = load_trained(run_dir, args.data_dir)
    paths.make_parent(target)

    try:
        onnx_model = export_onnx(model, splits.x_test[:1], target, opset=args.opset)
        if splits.task == "regression":
            _append_destandardize(onnx_model, target, splits)
    except ImportError as error:  # one line through main's handler, not a traceback
        raise UsageError(str(error)) from None
    outputs = "logits" if splits.task == "classification" else "predictions"
    echo(
        f"wrote {target}: the {config.model} of {run_dir.path} (epoch {epoch}, "
        f"{config.dataset}), input (batch, {', '.join(map(str, splits.input_shape))}) float32, "
        f"output (batch, {splits.n_outputs}) {outputs}, opset {args.opset}"
    )
    return _check(model, target, splits)


def _append_destandardize(onnx_model: Any, target: Path, splits: Splits) -> None:
    """ŷ = output·σ_y + μ_y inside the graph, so the file predicts in the target's units."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx_model.graph
    name = graph.output[0].name
    graph.node[-1].output[0] = "standardized"
    graph.initializer.extend([
        numpy_helper.from_array(np.array(splits.y_std, dtype=np.float32), "target.std"),
        numpy_helper.from_array(np.array(splits.y_mean, dtype=np.float32), "target.mean"),
    ])  # fmt: skip
    graph.node.extend([
        helper.make_node("Mul", ["standardized", "target.std"], ["scaled"], name="target.Mul"),
        helper.make_node("Add", ["scaled", "target.mean"], [name], name="target.Add"),
    ])  # fmt: skip
    onnx.checker.check_model(onnx_model, full_check=True)
    onnx.save(onnx_model, str(target))


def _check(model: Any, target: Path, splits: Splits) -> int:
    """Run the file under onnxruntime on the test split and compare with chainrule."""
    try:
        import onnxruntime
    except ImportError:
        echo("onnxruntime is not installed: the file was not run (pip install onnxruntime)")
        return 0
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    (exported,) = session.run(None, {input_name: splits.x_test})
    expected = predict(model, splits.x_test)
    if splits.task == "regression":
        expected = expected * splits.y_std + splits.y_mean
    difference = float(np.max(np.abs(exported - expected)))
    count = len(splits.x_test)
    if not np.allclose(exported, expected, rtol=TOLERANCE, atol=TOLERANCE):
        print(
            f"chainrule: error: onnxruntime's outputs differ from chainrule's by up to "
            f"{difference:.3g} (tolerance {TOLERANCE:g}, relative and absolute) on the "
            f"{count} test examples",
            file=sys.stderr,
        )
        return EXIT_MISMATCH
    agreement = ""
    if splits.task == "classification":
        same = int(np.sum(exported.argmax(axis=1) == expected.argmax(axis=1)))
        agreement = f", the same class for {same} of {count}"
    echo(
        f"onnxruntime agrees with chainrule on the {count} test examples (largest difference "
        f"{difference:.2g}{agreement})"
    )
    return 0
