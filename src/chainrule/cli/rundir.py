"""A training run's directory: configuration, checkpoint, metrics and curves.

config.json            the exact configuration used (``--resume`` reads it back)
checkpoint.safetensors model weights, optimizer state and the epoch, written atomically
metrics.jsonl          one JSON object per finished epoch
curves.png             training loss and validation metric per epoch
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.checkpoint import load, save

__all__ = ["TrainConfig", "RunDir", "pack", "unpack"]

FORMAT = "chainrule.run/1"


@dataclass
class TrainConfig:
    """Everything that determines a training run (and so its result, bit for bit)."""

    dataset: str = "digits"
    data_dir: str | None = None
    model: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    val_fraction: float = 0.1

    def to_json(self) -> str:
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        return json.dumps(values, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"config.json has unknown keys: {', '.join(sorted(unknown))}")
        values["hidden"] = tuple(values.get("hidden", ()))
        return cls(**values)


def pack(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able skeleton of ``tree`` whose ndarrays are moved into ``arrays``."""
    if isinstance(tree, dict):
        return {str(k): pack(v, f"{prefix}.{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [pack(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.ndarray):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def unpack(skeleton: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of ``pack``."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__array__"}:
            return arrays[skeleton["__array__"]]
        return {k: unpack(v, arrays) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unpack(v, arrays) for v in skeleton]
    return skeleton


class RunDir:
    """Reads and writes the files of one run directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def plot_path(self) -> Path:
        return self.path / "curves.png"

    def create(self, config: TrainConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / "config.json", config.to_json() + "\n")
        _atomic_write(self.metrics_path, "")

    def read_config(self) -> TrainConfig:
        config_path = self.path / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory (no config.json)")
        return TrainConfig.from_json(config_path.read_text())

    def save_checkpoint(self, model_state: dict, optimizer_state: dict, epoch: int) -> None:
        arrays: dict[str, np.ndarray] = {
            f"model.{k}": np.asarray(v) for k, v in model_state.items()
        }
        skeleton = pack(optimizer_state, "optimizer", arrays)
        metadata = {"format": FORMAT, "epoch": str(epoch), "optimizer": json.dumps(skeleton)}
        save(arrays, self.checkpoint_path, metadata=metadata)

    def load_checkpoint(self) -> tuple[dict, dict, int]:
        """(model state, optimizer state, finished epochs)."""
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint in {self.path}")
        arrays, metadata = load(self.checkpoint_path, with_metadata=True)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{self.checkpoint_path} is not a chainrule run checkpoint")
        model_state = {k[len("model.") :]: v for k, v in arrays.items() if k.startswith("model.")}
        optimizer_state = unpack(json.loads(metadata["optimizer"]), arrays)
        return model_state, optimizer_state, int(metadata["epoch"])

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        lines = self.metrics_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def truncate_metrics(self, epochs: int) -> None:
        """Keep the records of the first ``epochs`` epochs (those the checkpoint holds)."""
        kept = [r for r in self.read_metrics() if r["epoch"] <= epochs]
        _atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
