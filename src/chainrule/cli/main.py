"""``chainrule``: the command line's parser, its dispatch and how it fails.

    chainrule train [--dataset digits|fashion-mnist|diabetes] [--model perceptron|mlp|cnn] ...
    chainrule train --resume DIR
    chainrule evaluate --checkpoint DIR
    chainrule explain [--layers 4,3,2] [--activation sigmoid] [--loss mse] [--graph FILE]
    chainrule export --checkpoint DIR --onnx FILE

Bad input gets a one-line message and exit status 2 (set CHAINRULE_DEBUG=1 for the
traceback); Ctrl-C exits with 130 after keeping the last checkpoint; a reader that closes
the pipe (``chainrule train | head -1``) ends the output, not the work.

``mpiexec -n P chainrule train ...`` trains data-parallel on P ranks (``--batch-size`` is
the global batch; see ``chainrule.cli.trainer``). A failure on any rank stops them all,
with one message from the rank that failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from chainrule import distributed
from chainrule.cli import explain, export, train
from chainrule.cli.errors import USER_ERRORS, UsageError, describe, reporting_rank
from chainrule.cli.output import discard_stdout

__all__ = ["main", "build_parser", "UsageError"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = train.EXIT_INTERRUPTED

DESCRIPTION = """\
chainrule: backpropagation and automatic differentiation over NumPy, from the
command line. Train a perceptron, an MLP or a CNN on real data, evaluate or
export the result, and see the lecture's backprop worked out on a network,
every shape shown."""

EPILOG = """\
examples:
  chainrule train                      an MLP on digits, in a few seconds
  chainrule train --model cnn --epochs 2 --out runs/digits-cnn
  chainrule explain --layers 4,3,2     backprop, symbol by symbol
  chainrule COMMAND --help             the options of one command

Bad input gets one line on standard error and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become UsageError: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _version() -> str:
    try:
        return metadata.version("chainrule")
    except metadata.PackageNotFoundError:  # imported from a source tree, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The ``chainrule`` parser with its subcommands train, evaluate, explain and export."""
    parser = _Parser(
        prog="chainrule",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"chainrule {_version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, title="commands"
    )
    train.add_parsers(commands)
    explain.add_parser(commands)
    export.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "train":
            return train.run_train(args)
        if args.command == "evaluate":
            return train.run_evaluate(args)
        if args.command == "explain":
            return explain.run(args)
        if args.command == "export":
            return export.run(args)
        parser.print_help()
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away: nothing more to say, nothing wrong
        discard_stdout()
        return 0
    except USER_ERRORS as error:
        if os.environ.get("CHAINRULE_DEBUG"):
            raise
        agreed = reporting_rank(error)
        if agreed is None:
            _report(f"error: {describe(error)}")
            return _stop_every_rank(EXIT_USAGE)
        if agreed == _joined_world()[0]:  # the ranks agreed: one message, no MPI_Abort
            _report(f"error: {describe(error)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _report("interrupted")
        return _stop_every_rank(EXIT_INTERRUPTED)


def _joined_world() -> tuple[int, int]:
    """(rank, size) of the MPI job this process has joined; (0, 1) before joining or alone."""
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
    print(f"chainrule{where}: {message}", file=sys.stderr, flush=True)


def _stop_every_rank(status: int) -> int:
    """Under MPI, a failing rank stops the job: the others may be waiting in a collective."""
    if _joined_world()[1] > 1:
        distributed.abort(status)
    return status
