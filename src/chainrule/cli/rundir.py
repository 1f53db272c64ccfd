"""A training run's directory: configuration, checkpoint, metrics and curves.

config.json            the exact configuration used (``--resume`` reads it back)
checkpoint.safetensors model weights, optimizer state and the epoch, written atomically
metrics.jsonl          one JSON object per finished epoch
curves.png             training and validation loss, and the validation metric, per epoch
results.json           the test metrics at the end of training

The checkpoint, metrics.jsonl and curves.png are written during training by the callbacks
of ``cr.training`` (``ModelCheckpoint``, ``MetricsLog``, ``LearningCurves``); this class
names the files and reads them back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from chainrule.training import checkpoint_epoch, load_checkpoint

__all__ = ["TrainConfig", "RunDir"]


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
        """The configuration as config.json holds it: sorted keys, ``hidden`` as a list."""
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        return json.dumps(values, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "config.json") -> TrainConfig:
        """The configuration written by ``to_json``.

        Raises:
            ValueError: naming ``source``, for text that is not JSON, not an object, or has
                unknown keys or values of the wrong type.
        """
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source} is not valid JSON ({error}); it is corrupt") from None
        if not isinstance(values, dict):
            raise ValueError(f"{source} holds {type(values).__name__}, not a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"{source} has unknown keys: {', '.join(sorted(unknown))}")
        defaults = cls()
        for name, value in values.items():
            expected = getattr(defaults, name)
            if not _same_kind(value, expected):
                raise ValueError(f"{source}: {name} is {value!r}, not a value like {expected!r}")
        values["hidden"] = tuple(values.get("hidden", ()))
        return cls(**values)


def _same_kind(value: Any, example: Any) -> bool:
    """Whether a JSON value can stand where the default ``example`` stands."""
    if example is None:  # data_dir: a path or nothing
        return value is None or isinstance(value, str)
    if isinstance(example, tuple):
        return isinstance(value, list) and all(
            isinstance(n, int) and not isinstance(n, bool) for n in value
        )
    if isinstance(example, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(example, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(example))


class RunDir:
    """Reads and writes the files of one run directory."""

    def __init__(
        self, path: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None
    ) -> None:
        """The run directory ``path``; ``checkpoint`` names another checkpoint file to read."""
        self.path = Path(path)
        self._checkpoint = None if checkpoint is None else Path(checkpoint)

    @property
    def config_path(self) -> Path:
        """config.json: the configuration, as ``TrainConfig.to_json`` writes it."""
        return self.path / "config.json"

    @property
    def checkpoint_path(self) -> Path:
        """checkpoint.safetensors (or the file given as ``checkpoint``)."""
        return self._checkpoint or self.path / "checkpoint.safetensors"

    @property
    def metrics_path(self) -> Path:
        """metrics.jsonl: one JSON object per finished epoch."""
        return self.path / "metrics.jsonl"

    @property
    def plot_path(self) -> Path:
        """curves.png: the learning curves."""
        return self.path / "curves.png"

    @property
    def results_path(self) -> Path:
        """results.json: the test metrics of the finished run."""
        return self.path / "results.json"

    def create(self, config: TrainConfig) -> None:
        """Make the folder (and its parents) and write config.json and an empty metrics.jsonl."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config)
        _atomic_write(self.metrics_path, "")

    def write_config(self, config: TrainConfig) -> None:
        """Replace config.json (atomically): a resumed run may train more epochs."""
        _atomic_write(self.config_path, config.to_json() + "\n")

    def read_config(self) -> TrainConfig:
        """The run's configuration; FileNotFoundError or a ValueError naming the file."""
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a run directory (no config.json)")
        return TrainConfig.from_json(self.config_path.read_text(), source=str(self.config_path))

    def write_results(self, results: dict[str, Any]) -> None:
        """Write results.json (atomically)."""
        _atomic_write(self.results_path, json.dumps(results, indent=2) + "\n")

    def load_checkpoint(self) -> tuple[dict, dict, int]:
        """(model state, optimizer state, finished epochs)."""
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint in {self.path}")
        return load_checkpoint(self.checkpoint_path)

    def finished_epochs(self) -> int:
        """The epoch the checkpoint holds, from its header alone (no arrays are read)."""
        if not self.checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint in {self.path}")
        return checkpoint_epoch(self.checkpoint_path)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl, in order (none if the file is missing)."""
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
