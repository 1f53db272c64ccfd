"""The models ``chainrule train`` trains, as ``nn.Sequential``s a Python user can build too.

    model = cr.models.lenet5()                       # 1×28×28 images, 10 classes
    model = cr.models.mlp(784, (256, 128), 10)       # 784-256-128-10, ReLU between
    model = cr.models.perceptron(64, 10)             # ŷ = Wᵀx + b

Each function creates its layers in order, and each layer draws its initial weights from
chainrule's default generator as it is created: after ``cr.manual_seed(s)`` the same call
gives the same weights, bit for bit, as the command line with ``--seed s``. The perceptron
and the MLP start with ``nn.Flatten()``, so they take (m, C, H, W) images as well as
(m, n) rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from chainrule import nn

__all__ = ["ACTIVATIONS", "perceptron", "mlp", "lenet5", "small_cnn"]

#: the activations g the models take by name
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def perceptron(n_in: int, n_out: int) -> nn.Sequential:
    """ŷ = Wᵀx + b: the lecture's perceptron, one ``Linear`` layer on the flattened input.

    Args:
        n_in: features per example (C·H·W for images).
        n_out: outputs: classes (logits) or targets.

    Returns:
        ``Sequential(Flatten(), Linear(n_in, n_out))``.
    """
    return nn.Sequential(nn.Flatten(), nn.Linear(_width("n_in", n_in), _width("n_out", n_out)))


def mlp(
    n_in: int,
    hidden: int | Sequence[int],
    n_out: int,
    activation: str = "relu",
    *,
    flatten: bool = True,
) -> nn.Sequential:
    """a[l] = g(W[l]ᵀ a[l−1] + b[l]) for each hidden layer, then ŷ = W[L]ᵀ a[L−1] + b[L].

    Args:
        n_in: features per example (C·H·W for images; the input is flattened first).
        hidden: the hidden widths n[1], …, n[L−1] (one int for a single hidden layer; an
            empty sequence gives the perceptron).
        n_out: outputs: classes (logits, no activation on the last layer) or targets.
        activation: g of the hidden layers: "relu", "sigmoid" or "tanh".
        flatten: start with ``Flatten()``, so that images (m, C, H, W) are taken too;
            False for a model of rows (m, n) only, one op less per step.

    Returns:
        ``Sequential(Flatten(), Linear(n_in, n[1]), g, …, Linear(n[L−1], n_out))``.
    """
    widths = [_width("hidden", hidden)] if _is_int(hidden) else _widths(hidden)
    act = _activation(activation)
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    width = _width("n_in", n_in)
    for h in widths:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, _width("n_out", n_out)))
    return nn.Sequential(*layers)


def lenet5(
    in_channels: int = 1,
    num_classes: int = 10,
    *,
    activation: str = "relu",
    input_size: tuple[int, int] = (28, 28),
) -> nn.Sequential:
    """LeNet-5 (LeCun et al., 1998) for (m, C, 28, 28) images, with max pooling.

    conv 6@5×5 (padding 2) → g → pool 2 → conv 16@5×5 → g → pool 2 → flatten →
    Linear 120 → g → Linear 84 → g → Linear ``num_classes`` (logits). On 28×28 inputs the
    flattened features are 16·5·5 = 400.

    Args:
        in_channels: C of the input images.
        num_classes: logits per example.
        activation: g: "relu", "sigmoid" or "tanh".
        input_size: (H, W) of the images (the first Linear layer's width depends on it);
            at least 12×12.

    Returns:
        The ``nn.Sequential`` of the 12 modules above.
    """
    act = _activation(activation)
    height, width = _image_size(input_size)
    fh, fw = (height // 2 - 4) // 2, (width // 2 - 4) // 2
    if fh < 1 or fw < 1:
        raise ValueError(f"lenet5 needs images of at least 12×12, got {height}×{width}")
    return nn.Sequential(
        nn.Conv2d(_width("in_channels", in_channels), 6, 5, padding=2), act(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * fh * fw, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, _width("num_classes", num_classes)),
    )  # fmt: skip


def small_cnn(
    in_channels: int = 1,
    num_classes: int = 10,
    *,
    activation: str = "relu",
    input_size: tuple[int, int] = (8, 8),
) -> nn.Sequential:
    """A two-stage conv net for small images (digits' 8×8): what ``--model cnn`` trains there.

    conv 16@3×3 (padding 1) → g → pool 2 → conv 32@3×3 (padding 1) → g → pool 2 → flatten
    → Linear 64 → g → Linear ``num_classes`` (logits).

    Args:
        in_channels: C of the input images.
        num_classes: logits per example.
        activation: g: "relu", "sigmoid" or "tanh".
        input_size: (H, W) of the images, at least 4×4.

    Returns:
        The ``nn.Sequential`` of the 10 modules above.
    """
    act = _activation(activation)
    height, width = _image_size(input_size)
    if height < 4 or width < 4:
        raise ValueError(f"small_cnn needs images of at least 4×4, got {height}×{width}")
    return nn.Sequential(
        nn.Conv2d(_width("in_channels", in_channels), 16, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), act(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (height // 4) * (width // 4), 64), act(),
        nn.Linear(64, _width("num_classes", num_classes)),
    )  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _width(name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def _widths(hidden: Any) -> list[int]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(
            f"hidden must be an int or a sequence of ints (the hidden widths), got "
            f"{type(hidden).__name__} {hidden!r}"
        )
    return [_width(f"hidden[{i}]", h) for i, h in enumerate(hidden)]


def _activation(name: Any) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _image_size(size: Any) -> tuple[int, int]:
    if _is_int(size):
        size = (size, size)
    if not isinstance(size, Sequence) or len(size) != 2:
        raise TypeError(f"input_size must be (height, width), got {size!r}")
    return _width("input_size[0]", size[0]), _width("input_size[1]", size[1])
