"""The models the command line trains: the lecture's perceptron, an MLP and a small CNN."""

from __future__ import annotations

from dataclasses import replace

from chainrule import nn
from chainrule.cli.datasets import Splits, data_dir_for, load_splits
from chainrule.cli.rundir import RunDir, TrainConfig

__all__ = ["build_model", "load_trained", "ACTIVATIONS"]

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def build_model(
    kind: str,
    input_shape: tuple[int, ...],
    n_outputs: int,
    hidden: tuple[int, ...],
    activation: str,
) -> nn.Module:
    """A freshly initialised model (from chainrule's seeded generator).

    Args:
        kind: "perceptron" (one Linear layer: ŷ = Wᵀx + b), "mlp" (Linear layers with
            ``hidden`` widths and ``activation`` between them) or "cnn" (LeNet-5 style for
            28×28 images, a smaller conv net for 8×8 ones).
        input_shape: one example's shape: (n,) for features, (C, H, W) for images.
        n_outputs: classes (logits) or 1 for regression.
    """
    n_inputs = 1
    for size in input_shape:
        n_inputs *= size
    if kind == "perceptron":
        return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_outputs))
    if kind == "mlp":
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        return nn.Sequential(*layers)
    if kind == "cnn":
        return _cnn(input_shape, n_outputs, ACTIVATIONS[activation])
    raise ValueError(f"unknown model {kind!r}: choose perceptron, mlp or cnn")


def _cnn(input_shape: tuple[int, ...], n_outputs: int, act: type[nn.Module]) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(
            f"the cnn model needs image data (channels, height, width); this dataset's "
            f"examples have shape {input_shape}"
        )
    channels, height, width = input_shape
    if height >= 28 and width >= 28:  # LeNet-5: 6@5×5 pad 2, pool, 16@5×5, pool, 120, 84
        flat = 16 * (((height // 2) - 4) // 2) * (((width // 2) - 4) // 2)
        return nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=2), act(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(flat, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, n_outputs),
        )  # fmt: skip
    if height < 4 or width < 4:
        raise ValueError(f"the cnn model needs images of at least 4×4, got {height}×{width}")
    flat = 32 * (height // 4) * (width // 4)  # small images (digits' 8×8): two 3×3 stages
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 64), act(),
        nn.Linear(64, n_outputs),
    )  # fmt: skip


def load_trained(
    run: RunDir, data_dir: str | None = None
) -> tuple[TrainConfig, Splits, nn.Module, int]:
    """A run directory's model rebuilt from its config.json and loaded from its checkpoint.

    Returns (config, the dataset's splits, the model in eval mode, finished epochs).
    ``data_dir`` (``--data-dir``) overrides the run's Fashion-MNIST folder. A checkpoint
    that does not fit the configuration raises the model's strict ``load_state_dict`` error.
    """
    config = run.read_config()
    config = replace(config, data_dir=data_dir_for(config.dataset, data_dir, config.data_dir))
    run.finished_epochs()  # a corrupt checkpoint is reported before the data is loaded
    splits = load_splits(config.dataset, config.data_dir, config.val_fraction)
    model = build_model(
        config.model, splits.input_shape, splits.n_outputs, config.hidden, config.activation
    )
    model_state, _, epoch = run.load_checkpoint()
    model.load_state_dict(model_state)
    model.eval()
    return config, splits, model, epoch
