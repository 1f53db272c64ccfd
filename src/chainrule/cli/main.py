"""``chainrule``: train a network by backprop on real data, evaluate a saved run.

    chainrule train [--dataset digits|fashion-mnist|diabetes] [--model perceptron|mlp|cnn] ...
    chainrule train --resume DIR
    chainrule evaluate --checkpoint DIR
    chainrule explain [--layers 4,3,2] [--activation sigmoid] [--loss mse] [--graph FILE]
    chainrule export --checkpoint DIR --onnx FILE

Bad input gets a one-line message and exit status 2 (set CHAINRULE_DEBUG=1 for the
traceback); Ctrl-C exits with 130 after keeping the last checkpoint.

``mpiexec -n P chainrule train ...`` trains data-parallel on P ranks (``--batch-size`` is
the global batch; see ``chainrule.cli.trainer``). A failure on any rank stops them all.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

from chainrule.allocator import keep_freed_memory
from chainrule.cli import explain, export
from chainrule.cli.datasets import DATASETS, load_splits
from chainrule.cli.models import ACTIVATIONS
from chainrule.cli.rundir import RunDir, TrainConfig

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: per-dataset defaults for options the user did not give
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 20, "batch_size": 32},
    "fashion-mnist": {"epochs": 10, "batch_size": 128},
    "diabetes": {"epochs": 100, "batch_size": 32, "hidden": (64,)},
}
#: the CNN learns more per epoch from smaller batches (more steps): 5 epochs of LeNet-5 on
#: Fashion-MNIST gave 86.8% test accuracy at batch 128 and 87.5% at 64 (seed 0)
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"cnn": {"batch_size": 64}}
OPTIMIZER_LR = {"adam": 1e-3, "sgd": 0.05}


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden expects comma-separated positive integers like 256,128, got {text!r}"
        ) from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"--hidden expects comma-separated positive integers like 256,128, got {text!r}"
        )
    return sizes


def _positive_float(name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a number, got {text!r}") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a positive number, got {text}")
        return value

    return parse


def _positive_int(name: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects an integer, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description=__doc__.splitlines()[0].replace("``", ""))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train a model (digits by default)")
    train.add_argument("--dataset", choices=DATASETS, help="default: digits")
    train.add_argument(
        "--data-dir", help="folder of the Fashion-MNIST IDX files "
        "(default: /usr/share/datasets/fashion-mnist, from the Debian package "
        "dataset-fashion-mnist)",
    )  # fmt: skip
    train.add_argument("--model", choices=("perceptron", "mlp", "cnn"), help="default: mlp")
    train.add_argument("--hidden", type=_hidden, help="hidden widths of the mlp, e.g. 256,128")
    train.add_argument("--activation", choices=tuple(ACTIVATIONS), help="default: relu")
    train.add_argument(
        "--epochs", type=_positive_int("--epochs"),
        help="default: 20 (digits), 10 (fashion-mnist), 100 (diabetes)",
    )  # fmt: skip
    train.add_argument(
        "--batch-size", type=_positive_int("--batch-size"),
        help="default: 32 (digits, diabetes), 128 (fashion-mnist), 64 for the cnn",
    )  # fmt: skip
    train.add_argument(
        "--lr", type=_positive_float("--lr"), help="learning rate (default: adam 1e-3, sgd 0.05)"
    )
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="default: adam")
    train.add_argument("--seed", type=int, help="default: 0")
    train.add_argument("--out", help="run directory (default: runs/DATASET-MODEL-TIME)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    train.add_argument("--quiet", action="store_true", help="print only the final results")
    train.add_argument(
        "--no-malloc-tuning", action="store_true",
        help="leave glibc's allocator as it is (by default freed memory is kept for the next "
        "step: faster, at the price of resident memory staying at its peak)",
    )  # fmt: skip

    evaluate = commands.add_parser("evaluate", help="test-set metrics of a saved run")
    evaluate.add_argument("--checkpoint", required=True, metavar="DIR", help="a run directory")
    evaluate.add_argument("--data-dir", help="folder of the Fashion-MNIST IDX files")
    explain.add_parser(commands)
    export.add_parser(commands)
    return parser


_CONFIG_OPTIONS = ("dataset", "data_dir", "model", "hidden", "activation", "epochs",
                   "batch_size", "lr", "optimizer", "seed")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Options given on the command line, then per-dataset defaults, then the defaults."""
    given = {
        name: getattr(args, name) for name in _CONFIG_OPTIONS if getattr(args, name) is not None
    }
    dataset = given.get("dataset", "digits")
    model_defaults = MODEL_DEFAULTS.get(given.get("model", "mlp"), {})
    values = {"dataset": dataset, **DATASET_DEFAULTS[dataset], **model_defaults, **given}
    values.setdefault("lr", OPTIMIZER_LR[values.get("optimizer", "adam")])
    return TrainConfig(**values)


def _resume_config(args: argparse.Namespace, run: RunDir) -> TrainConfig:
    config = run.read_config()
    for name in _CONFIG_OPTIONS:
        value = getattr(args, name)
        if name in ("epochs", "data_dir") or value is None:
            continue
        if value != getattr(config, name):
            raise UsageError(
                f"--resume {run.path}: --{name.replace('_', '-')} {value} differs from the "
                f"run's {getattr(config, name)}; only --epochs and --data-dir may change"
            )
    changes = {k: getattr(args, k) for k in ("epochs", "data_dir") if getattr(args, k) is not None}
    return replace(config, **changes)


def _train(args: argparse.Namespace) -> int:
    from chainrule import distributed
    from chainrule.cli.trainer import Interrupted, Trainer, is_terminal

    if not args.no_malloc_tuning:
        keep_freed_memory()
    try:
        distributed.init()
    except ImportError as error:
        raise UsageError(str(error)) from None
    main_rank, world = distributed.is_main(), distributed.world_size()
    quiet = args.quiet or not main_rank  # only rank 0 prints progress
    say = (lambda line: None) if quiet else print
    config, path = _train_config(args) if main_rank else (None, None)
    config, path = distributed.broadcast_object((config, path))
    run = RunDir(path)
    splits = load_splits(config.dataset, config.data_dir, config.val_fraction)
    trainer = Trainer(config, splits, run, say, progress=is_terminal() and not quiet)
    ranks = f" on {world} ranks" if world > 1 else ""
    if args.resume:
        trainer.restore()
        say(f"resuming {run.path} after epoch {trainer.epoch} of {config.epochs}{ranks}")
    else:
        if main_rank:
            run.create(config)
        say(f"training a {config.model} on {config.dataset} "
            f"({len(splits.x_train)} training examples){ranks}; "
            f"run directory {run.path}")  # fmt: skip
    try:
        results = trainer.fit()
    except Interrupted:
        if main_rank:
            print(
                f"interrupted: the checkpoint after epoch {trainer.epoch} is saved in "
                f"{run.path}; continue with: chainrule train --resume {run.path}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    if main_rank:
        _print_results(results, config, run)
    return 0


def _train_config(args: argparse.Namespace) -> tuple[TrainConfig, str]:
    """The run's configuration and directory (read, under MPI, by rank 0 alone)."""
    if args.resume:
        run = RunDir(args.resume)
        return _resume_config(args, run), str(run.path)
    config = config_from_args(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = RunDir(args.out or f"runs/{config.dataset}-{config.model}-{stamp}")
    if (run.path / "config.json").exists():
        raise UsageError(
            f"{run.path} already holds a run: use --resume {run.path} or another --out"
        )
    return config, str(run.path)


def _print_results(results: dict[str, float], config: TrainConfig, run: RunDir) -> None:
    print(f"test results: {config.model} on {config.dataset}, {config.epochs} epochs")
    if "accuracy" in results:
        print(f"  accuracy  {100 * results['accuracy']:.2f}%")
        print(f"  loss      {results['loss']:.4f}")
    else:
        print(f"  MAE       {results['mae']:.4f}")
        print(f"  MSE       {results['mse']:.4f}")
        print(f"  RMSE      {results['rmse']:.4f}   (= √MSE)")
    print(f"run directory: {run.path} (checkpoint.safetensors, metrics.jsonl, curves.png)")


def _evaluate(args: argparse.Namespace) -> int:
    from chainrule.cli.models import load_trained
    from chainrule.cli.trainer import evaluate_model

    run = RunDir(args.checkpoint)
    config, splits, model, epoch = load_trained(run, args.data_dir)
    results = evaluate_model(model, splits, splits.x_test, splits.y_test)
    _print_results(results, replace(config, epochs=epoch), run)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "train":
            return _train(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "explain":
            return explain.run(args)
        if args.command == "export":
            return export.run(args)
        parser.print_help()
        return EXIT_USAGE
    except UsageError as error:
        _report(f"error: {error}")
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as error:
        if os.environ.get("CHAINRULE_DEBUG"):
            raise
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        _report("error: " + (" ".join(lines) if lines else repr(error)))
    except KeyboardInterrupt:
        _report("interrupted")
        return _stop_every_rank(EXIT_INTERRUPTED)
    return _stop_every_rank(EXIT_USAGE)


def _joined_world() -> tuple[int, int]:
    """(rank, size) of the MPI job this process has joined; (0, 1) before joining or alone."""
    from chainrule import distributed

    if not distributed.is_initialized():
        return 0, 1
    return distributed.rank(), distributed.world_size()


def _report(message: str) -> None:
    """``chainrule: MESSAGE`` on standard error, naming the rank under MPI.

    Before the ranks join (bad options, say) they all fail alike, so only the launcher's
    rank 0 speaks; after, a failure may be one rank's alone, so each says its own.
    """
    rank, world = _joined_world()
    launcher_rank = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or "0"
    if world == 1 and launcher_rank != "0":
        return
    where = f" (rank {rank} of {world})" if rank else ""
    print(f"chainrule{where}: {message}", file=sys.stderr)


def _stop_every_rank(status: int) -> int:
    """Under MPI, a failing rank stops the job: the others may be waiting in a collective."""
    from chainrule import distributed

    if _joined_world()[1] > 1:
        distributed.abort(status)
    return status
