"""Training checkpoints: a model's weights, its optimizer's state and the epoch, in one file.

A checkpoint is a safetensors file (``cr.save``, written atomically): the weights as
``model.NAME`` arrays, the optimizer's arrays (Adam's moments, momentum buffers) as
``optimizer.…`` arrays, and in the header's metadata the format, the number of finished
epochs and the rest of the optimizer's state (step counts, hyper-parameters) as JSON. It
is what ``chainrule train`` writes after every epoch, and it holds everything that
training depends on besides the configuration: with the data loader's ``set_epoch``
(``fit`` calls it) a resumed run ends with the same weights, bit for bit, as one that
never stopped.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from chainrule.nn.module import Module
from chainrule.serialization import load, load_metadata, save

__all__ = [
    "FORMAT", "save_checkpoint", "load_checkpoint", "restore_checkpoint", "checkpoint_epoch",
]  # fmt: skip

#: the format name in a checkpoint's metadata
FORMAT = "chainrule.run/1"


def save_checkpoint(
    path: str | os.PathLike[str], model: Module, optimizer: Any, epoch: int
) -> None:
    """Write ``model.state_dict()``, ``optimizer.state_dict()`` and ``epoch`` to ``path``.

    The file is replaced atomically: a crash while writing leaves the previous checkpoint.

    Args:
        path: the ``.safetensors`` file.
        model: the model (its parameters and buffers are saved).
        optimizer: an ``Optimizer`` (anything with ``state_dict()`` of nested dicts and
            lists of ndarrays and JSON numbers).
        epoch: the number of finished epochs.
    """
    arrays: dict[str, np.ndarray] = {
        f"model.{k}": np.asarray(v) for k, v in model.state_dict().items()
    }
    skeleton = _pack(optimizer.state_dict(), "optimizer", arrays)
    metadata = {"format": FORMAT, "epoch": str(int(epoch)), "optimizer": json.dumps(skeleton)}
    save(arrays, path, metadata=metadata)


def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """Read what ``save_checkpoint`` wrote: (model state, optimizer state, finished epochs).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is not such a checkpoint (``cr.CheckpointError`` for one
            that is not safetensors at all).
    """
    arrays, metadata = load(path, with_metadata=True)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a chainrule run checkpoint")
    model_state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
    optimizer_state = _unpack(json.loads(metadata["optimizer"]), arrays)
    return model_state, optimizer_state, int(metadata["epoch"])


def restore_checkpoint(path: str | os.PathLike[str], model: Module, optimizer: Any = None) -> int:
    """Load a checkpoint into ``model`` (and ``optimizer``); returns the finished epochs.

    Pass the result as ``fit``'s ``initial_epoch`` to continue the run::

        epoch = restore_checkpoint(path, model, optimizer)
        fit(model, loss_fn, optimizer, loader, epochs, initial_epoch=epoch,
            callbacks=[ModelCheckpoint(path)])

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is not such a checkpoint, or a model or optimizer that
            does not fit it (their strict ``load_state_dict`` errors).
    """
    model_state, optimizer_state, epoch = load_checkpoint(path)
    model.load_state_dict(model_state)
    if optimizer is not None:
        optimizer.load_state_dict(optimizer_state)
    return epoch


def checkpoint_epoch(path: str | os.PathLike[str]) -> int:
    """The finished epochs a checkpoint holds, read from its header alone (no arrays).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is not a checkpoint of ``save_checkpoint``.
    """
    metadata = load_metadata(path)
    if metadata.get("format") != FORMAT or not metadata.get("epoch", "").isdigit():
        raise ValueError(f"{path} is not a chainrule run checkpoint")
    return int(metadata["epoch"])


def _pack(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able skeleton of ``tree`` whose ndarrays are moved into ``arrays``."""
    if isinstance(tree, dict):
        return {str(k): _pack(v, f"{prefix}.{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_pack(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.ndarray):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _unpack(skeleton: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of ``_pack``."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__array__"}:
            return arrays[skeleton["__array__"]]
        return {k: _unpack(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_unpack(v, arrays) for v in skeleton]
    return skeleton
