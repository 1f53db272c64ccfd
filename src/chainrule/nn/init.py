"""Initialisers: fill a tensor in place from a seeded generator, keeping its dtype.

Fan-in and fan-out follow chainrule's layouts: a 2-D weight is a ``Linear`` weight of shape
(in_features, out_features), the lecture's W[l], so fan_in = shape[0] (PyTorch's (out, in)
layout has it the other way round); a weight of 3 or more axes is a convolution filter bank
(out_channels, in_channels, kh, kw, ...), so fan_in = in·kh·kw and fan_out = out·kh·kw.

Randomness comes from ``generator`` when given, else from chainrule's default generator
(``cr.manual_seed`` reseeds it), so initialisation is reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import creation
from chainrule.tensor import Tensor

__all__ = [
    "calculate_gain", "fan_in_and_fan_out", "uniform_", "normal_", "zeros_", "ones_",
    "constant_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]  # fmt: skip

_LINEAR_GAINS = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain g that keeps activations' variance steady through a nonlinearity.

    1 for linear/sigmoid, 5/3 for tanh, √2 for relu, √(2/(1 + a²)) for leaky_relu with
    negative slope a (0.01 by default), 3/4 for selu, as in PyTorch.
    """
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out): (in, out) of a Linear weight (in, out); of a conv weight
    (out, in, kh, kw): (in·kh·kw, out·kh·kw)."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan_in/fan_out need a weight with at least 2 dimensions, got shape {shape}"
        )
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _array(tensor: Any) -> np.ndarray:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError("initialisers fill a floating-point Tensor or ndarray in place")
    return array


def _fill(tensor: Any, values: Any) -> Any:
    """Write ``values`` into the tensor's array, cast to its dtype; return the tensor."""
    array = _array(tensor)
    array[...] = values  # assignment casts to the array's dtype: float32 stays float32
    return tensor


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    return generator if generator is not None else creation.default_generator()


def uniform_(
    tensor: Any, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> Any:
    """Fill with samples of U(a, b)."""
    return _fill(tensor, _rng(generator).uniform(a, b, _array(tensor).shape))


def normal_(
    tensor: Any,
    mean: float = 0.0,
    std: float = 1.0,
    generator: np.random.Generator | None = None,
) -> Any:
    """Fill with samples of N(mean, std²)."""
    return _fill(tensor, _rng(generator).normal(mean, std, _array(tensor).shape))


def zeros_(tensor: Any) -> Any:
    """Fill with 0."""
    return _fill(tensor, 0)


def ones_(tensor: Any) -> Any:
    """Fill with 1."""
    return _fill(tensor, 1)


def constant_(tensor: Any, val: float) -> Any:
    """Fill with ``val``."""
    return _fill(tensor, val)


def xavier_uniform_(
    tensor: Any, gain: float = 1.0, generator: np.random.Generator | None = None
) -> Any:
    """Glorot: U(−b, b) with b = gain·√(6/(fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(_array(tensor).shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: Any, gain: float = 1.0, generator: np.random.Generator | None = None
) -> Any:
    """Glorot: N(0, σ²) with σ = gain·√(2/(fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(_array(tensor).shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"kaiming init: zero fan for a weight of shape {shape}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Any:
    """He: U(−b, b) with b = gain·√(3/fan), gain = calculate_gain(nonlinearity, a).

    With a = √5 (PyTorch's default for Linear and Conv2d) b = 1/√fan_in.
    """
    std = _kaiming_std(_array(tensor).shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Any:
    """He: N(0, σ²) with σ = gain/√fan, gain = calculate_gain(nonlinearity, a)."""
    std = _kaiming_std(_array(tensor).shape, a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, generator)
