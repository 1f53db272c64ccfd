"""``chainrule train`` and ``chainrule evaluate``: a run directory's life.

``train`` settles the configuration (options, then per-dataset defaults), checks every
path before any data is loaded, trains (``chainrule.cli.trainer``) and reports the test
metrics, which it also writes to the run directory as results.json. ``--resume DIR``
continues a run; ``--epochs`` may then raise its epoch count, and config.json is updated
to match. ``evaluate`` reports the test metrics of a saved run.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from chainrule import distributed
from chainrule.cli import paths
from chainrule.cli.datasets import DATASETS, data_dir_for, load_splits
from chainrule.cli.errors import UsageError, together
from chainrule.cli.models import load_trained
from chainrule.cli.options import non_negative_int, positive_float, positive_int, widths
from chainrule.cli.output import echo, plural, warn
from chainrule.cli.rundir import RunDir, TrainConfig
from chainrule.cli.trainer import Interrupted, Trainer, evaluate_model, is_terminal
from chainrule.models import ACTIVATIONS

__all__ = ["add_parsers", "run_train", "run_evaluate", "config_from_args", "EXIT_INTERRUPTED"]

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

TRAIN_HELP = """\
Train a model by backprop and write a run directory: config.json,
checkpoint.safetensors (after every epoch), metrics.jsonl, curves.png and, at
the end, results.json with the test metrics. Ctrl-C stops after the current
batch and keeps the last epoch's checkpoint; --resume DIR continues it and
ends with the same weights, bit for bit, as a run that was never stopped.
Under `mpiexec -n P` it trains data-parallel on P processes."""

EVALUATE_HELP = """\
Rebuild a run's model from its config.json, load its checkpoint and print the
test metrics (accuracy and loss, or MAE, MSE and RMSE)."""


def add_parsers(commands: Any) -> None:
    """Register ``train`` and ``evaluate`` on the ``chainrule`` subcommand parsers."""
    train = commands.add_parser(
        "train", help="train a model (an MLP on digits by default)", description=TRAIN_HELP
    )
    train.add_argument("--dataset", choices=DATASETS, help="default: digits")
    train.add_argument(
        "--data-dir", metavar="DIR", help="folder of the Fashion-MNIST IDX files "
        "(default: /usr/share/datasets/fashion-mnist, from the Debian package "
        "dataset-fashion-mnist); fashion-mnist only",
    )  # fmt: skip
    train.add_argument("--model", choices=("perceptron", "mlp", "cnn"), help="default: mlp")
    train.add_argument(
        "--hidden", type=widths("--hidden", "256,128"), metavar="N1,N2,...",
        help="hidden widths of the mlp (default: 256,128; 64 for diabetes)",
    )  # fmt: skip
    train.add_argument(
        "--activation", choices=tuple(ACTIVATIONS), help="of the mlp and cnn (default: relu)"
    )
    train.add_argument(
        "--epochs", type=positive_int("--epochs"),
        help="in all, counting those already trained by a resumed run "
        "(default: 20 digits, 10 fashion-mnist, 100 diabetes)",
    )  # fmt: skip
    train.add_argument(
        "--batch-size", type=positive_int("--batch-size"),
        help="default: 32 (digits, diabetes), 128 (fashion-mnist), 64 for the cnn",
    )  # fmt: skip
    train.add_argument(
        "--lr", type=positive_float("--lr"), help="learning rate (default: adam 1e-3, sgd 0.05)"
    )
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="default: adam")
    train.add_argument("--seed", type=non_negative_int("--seed"), help="default: 0")
    train.add_argument(
        "--out", metavar="DIR", help="the new run directory (default: runs/DATASET-MODEL-TIME)"
    )
    train.add_argument(
        "--resume", metavar="DIR",
        help="continue the run in DIR (or from DIR/checkpoint.safetensors); only --epochs "
        "and --data-dir may change",
    )  # fmt: skip
    train.add_argument("--quiet", action="store_true", help="print only the final results")

    evaluate = commands.add_parser(
        "evaluate", help="test-set metrics of a saved run", description=EVALUATE_HELP
    )
    evaluate.add_argument(
        "--checkpoint", required=True, metavar="PATH",
        help="a run directory, or the checkpoint.safetensors in one",
    )  # fmt: skip
    evaluate.add_argument(
        "--data-dir", metavar="DIR", help="folder of the Fashion-MNIST IDX files"
    )


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


def _check_combinations(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before anything is read."""
    if args.resume is not None and args.out is not None:
        raise UsageError(
            f"--out and --resume together: a resumed run stays in its own folder "
            f"({args.resume}); leave out --out"
        )
    if args.out is not None and not args.out.strip():
        raise UsageError("--out needs a folder name, got an empty one")


def _check_unused(args: argparse.Namespace, config: TrainConfig) -> None:
    """Refuse --hidden where there are no hidden widths; warn about an unused --activation."""
    if args.hidden is not None and config.model != "mlp":
        shape = "has no hidden layer" if config.model == "perceptron" else "has fixed layers"
        raise UsageError(f"--hidden sets the mlp's hidden widths; the {config.model} {shape}")
    if args.activation is not None and config.model == "perceptron":
        warn("--activation is ignored: the perceptron has no hidden layer to activate")


def _resume_config(args: argparse.Namespace, run: RunDir) -> TrainConfig:
    config = run.read_config()
    for name in _CONFIG_OPTIONS:
        value = getattr(args, name)
        if name in ("epochs", "data_dir") or value is None:
            continue
        if value != getattr(config, name):
            option = "--" + name.replace("_", "-")
            shown = ",".join(map(str, value)) if name == "hidden" else value
            raise UsageError(
                f"--resume {run.path}: {option} {shown} differs from the run's "
                f"{getattr(config, name)}; only --epochs and --data-dir may change"
            )
    epochs = config.epochs if args.epochs is None else args.epochs
    return replace(config, epochs=epochs)


def _default_run_dir(config: TrainConfig) -> str:
    """runs/DATASET-MODEL-TIME, with -2, -3, … when a run started in the same second."""
    base = f"runs/{config.dataset}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, number = base, 1
    while Path(candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _settle(args: argparse.Namespace) -> tuple[TrainConfig, str, str | None, int]:
    """(config, run directory, checkpoint file to resume from or None, finished epochs).

    Everything here reads at most config.json and a checkpoint's header: a mistake in the
    options or paths is reported before any dataset is loaded.
    """
    if args.resume is None:
        config = config_from_args(args)
        _check_unused(args, config)
        config = replace(config, data_dir=data_dir_for(config.dataset, args.data_dir))
        out = args.out or _default_run_dir(config)
        return config, str(paths.new_run_dir(out, "--out")), None, 0
    folder, checkpoint = paths.existing_run(args.resume, "--resume")
    run = RunDir(folder, checkpoint)
    config = _resume_config(args, run)
    _check_unused(args, config)
    config = replace(config, data_dir=data_dir_for(config.dataset, args.data_dir, config.data_dir))
    finished = run.finished_epochs()
    if config.epochs < finished:
        raise UsageError(
            f"--epochs {config.epochs}: the run in {folder} has already trained "
            f"{plural(finished, 'epoch')}; --epochs counts them all, so give more than "
            f"{finished} to train longer"
        )
    return config, str(folder), str(checkpoint), finished


def run_train(args: argparse.Namespace) -> int:
    """``chainrule train``: 0 when trained, 130 after a Ctrl-C (the checkpoint is kept)."""
    _check_combinations(args)
    try:
        distributed.init()
    except ImportError as error:
        raise UsageError(str(error)) from None
    main_rank, world = distributed.is_main(), distributed.world_size()
    quiet = args.quiet or not main_rank  # only rank 0 prints progress
    say = (lambda line: None) if quiet else echo
    settled = together(lambda: _settle(args) if main_rank else None)
    config, path, checkpoint, finished = distributed.broadcast_object(settled)
    run = RunDir(path, checkpoint)
    splits = together(lambda: load_splits(config.dataset, config.data_dir, config.val_fraction))
    progress = is_terminal() and not quiet
    trainer = together(lambda: Trainer(config, splits, run, say, progress=progress))
    ranks = f" on {world} ranks" if world > 1 else ""
    if checkpoint is not None:
        together(trainer.restore)
        if main_rank and run.read_config() != config:
            run.write_config(config)  # --epochs or --data-dir changed: config.json says so
        if finished >= config.epochs:
            say(f"nothing left to train: {run.path} has finished all its "
                f"{plural(finished, 'epoch')} (give --epochs above {finished} to train "
                "longer); its test results:")  # fmt: skip
        else:
            say(f"resuming {run.path} after epoch {finished} of {config.epochs}{ranks}")
    else:
        together(lambda: run.create(config) if main_rank else None)
        article = "an" if config.model == "mlp" else "a"
        say(f"training {article} {config.model} on {config.dataset} "
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
        run.write_results(_results_record(results, config, trainer.epoch))
        report(results, config, trainer.epoch, run, written=True)
    return 0


def _results_record(results: dict[str, float], config: TrainConfig, epochs: int) -> dict:
    return {"dataset": config.dataset, "model": config.model, "epochs": epochs, "test": results}


def report(
    results: dict[str, float], config: TrainConfig, epochs: int, run: RunDir, written: bool
) -> None:
    """Print the test metrics: accuracy and loss, or the lecture's MAE, MSE and RMSE."""
    echo(f"test results: {config.model} on {config.dataset} after {plural(epochs, 'epoch')}")
    if "accuracy" in results:
        echo(f"  accuracy  {100 * results['accuracy']:.2f}%")
        echo(f"  loss      {results['loss']:.4f}")
    else:
        echo(f"  MAE       {results['mae']:.4f}")
        echo(f"  MSE       {results['mse']:.4f}")
        echo(f"  RMSE      {results['rmse']:.4f}   (= √MSE; all three in the target's units)")
    files = "config.json, checkpoint.safetensors, metrics.jsonl, curves.png, results.json"
    echo(f"run directory: {run.path} ({files})" if written else f"run directory: {run.path}")


def run_evaluate(args: argparse.Namespace) -> int:
    """``chainrule evaluate``: print a saved run's test metrics."""
    folder, checkpoint = paths.existing_run(args.checkpoint, "--checkpoint")
    run = RunDir(folder, checkpoint)
    config, splits, model, epoch = load_trained(run, args.data_dir)
    results = evaluate_model(model, splits, splits.x_test, splits.y_test)
    report(results, config, epoch, run, written=False)
    return 0
