"""The models ``--model`` names, built by ``cr.models``: perceptron, mlp and cnn.

``cnn`` is LeNet-5 (``cr.models.lenet5``) for images of 28×28 and more, and
``cr.models.small_cnn``'s two 3×3 stages for smaller ones (digits' 8×8).
"""

from __future__ import annotations

import math
from dataclasses import replace

from chainrule import models, nn
from chainrule.cli.datasets import Splits, data_dir_for, load_splits
from chainrule.cli.rundir import RunDir, TrainConfig

__all__ = ["build_model", "load_trained"]


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
            ``hidden`` widths and ``activation`` between them) or "cnn" (LeNet-5 for
            28×28 images, a smaller conv net for 8×8 ones).
        input_shape: one example's shape: (n,) for features, (C, H, W) for images.
        n_outputs: classes (logits) or 1 for regression.
        hidden: the mlp's hidden widths.
        activation: g of the mlp and the cnn.
    """
    n_inputs = math.prod(input_shape)
    if kind == "perceptron":
        return models.perceptron(n_inputs, n_outputs)
    if kind == "mlp":
        return models.mlp(n_inputs, hidden, n_outputs, activation)
    if kind == "cnn":
        return _cnn(input_shape, n_outputs, activation)
    raise ValueError(f"unknown model {kind!r}: choose perceptron, mlp or cnn")


def _cnn(input_shape: tuple[int, ...], n_outputs: int, activation: str) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(
            f"the cnn model needs image data (channels, height, width); this dataset's "
            f"examples have shape {input_shape}"
        )
    channels, height, width = input_shape
    size = (height, width)
    if height >= 28 and width >= 28:
        return models.lenet5(channels, n_outputs, activation=activation, input_size=size)
    if height < 4 or width < 4:
        raise ValueError(f"the cnn model needs images of at least 4×4, got {height}×{width}")
    return models.small_cnn(channels, n_outputs, activation=activation, input_size=size)


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
