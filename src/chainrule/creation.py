"""Making tensors: from data, filled, ranges, and random (seeded, reproducible).

Every function takes PyTorch's ``device=``: "cpu" (or None) is accepted and changes
nothing; any other device raises ``ValueError`` (chainrule runs on the CPU only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.batched import as_batched, is_batched, values_of
from chainrule.mode import STATE
from chainrule.ops.shape import broadcast_to, reshape
from chainrule.tensor import DEFAULT_DTYPE, Tensor, check_device

__all__ = [
    "as_tensor", "float32", "float64", "int64", "int32", "bool_",
    "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "arange", "eye",
    "zeros_like",
    "ones_like", "manual_seed", "default_generator", "randn", "rand",
    "linspace", "meshgrid",
]  # fmt: skip

_generator = np.random.default_rng()

# PyTorch's dtype names, as the NumPy scalar types they stand for (``dtype=cr.float64``).
float32 = np.float32
float64 = np.float64
int64 = np.int64
int32 = np.int32
bool_ = np.bool_


def tensor(
    data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """A new tensor holding ``data``.

    Python floats and lists become float32 (the default float dtype); an ndarray keeps its
    dtype (float64 stays float64) and a Tensor is copied. Integer and bool tensors cannot
    require grad (``TypeError``).
    """
    check_device(device)
    if is_batched(data):  # inside vmap: a copy of each example, batched as they are
        array, _, levels = values_of(data)
        return as_batched(Tensor(array.copy(), dtype=dtype, requires_grad=requires_grad), levels)
    if isinstance(data, Tensor):
        data = data.data.copy()
    elif isinstance(data, np.ndarray):
        data = data.copy()
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, without a copy where possible (PyTorch's ``as_tensor``).

    A Tensor of the asked dtype comes back as itself (another dtype: a differentiable
    ``astype``); an ndarray of the asked dtype is shared, not copied; anything else is
    converted as ``cr.tensor`` converts it.
    """
    check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A tensor that shares memory with ``array`` (writes to one are seen in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects an ndarray, got {type(array).__name__}")
    return Tensor(array, requires_grad=requires_grad)


def from_dlpack(x: Any, requires_grad: bool = False) -> Tensor:
    """A tensor sharing memory with any DLPack producer on the CPU (a PyTorch, JAX or CuPy
    array, an ndarray, another Tensor): no copy is made.

    PyTorch refuses to export a tensor that requires grad: pass ``t.detach()``. A producer
    on another device (a GPU) raises: copy it to the CPU first.
    """
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            f"from_dlpack expects an object with __dlpack__ (a DLPack producer), "
            f"got {type(x).__name__}"
        )
    try:
        array = np.from_dlpack(x)
    except (BufferError, RuntimeError) as error:
        raise ValueError(
            f"from_dlpack: cannot share the memory of this {type(x).__name__} with NumPy on "
            f"the CPU ({error})"
        ) from error
    return Tensor(array, requires_grad=requires_grad)


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _dtype(dtype: Any) -> np.dtype:
    return DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def zeros(
    *shape: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    check_device(device)
    return Tensor(np.zeros(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def ones(
    *shape: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """A tensor of ones: ``ones(2, 3)`` or ``ones((2, 3))``."""
    check_device(device)
    return Tensor(np.ones(_shape(shape), _dtype(dtype)), requires_grad=requires_grad)


def full(
    shape: Any,
    fill_value: Any,
    dtype: Any = None,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``."""
    check_device(device)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(np.full(shape, fill_value, _dtype(dtype)), requires_grad=requires_grad)


def arange(
    *args: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """``np.arange``: integers stay integers, a float range is float32 by default."""
    check_device(device)
    data = np.arange(*args)
    if dtype is not None:
        data = data.astype(dtype)
    elif data.dtype.kind == "f":
        data = data.astype(DEFAULT_DTYPE)
    return Tensor(data, requires_grad=requires_grad)


def eye(
    n: int,
    m: int | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """The identity matrix (n, m)."""
    check_device(device)
    return Tensor(np.eye(n, m, dtype=_dtype(dtype)), requires_grad=requires_grad)


def zeros_like(
    x: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """Zeros with the shape (and, by default, the dtype) of ``x``."""
    check_device(device)
    data = np.asarray(x.data if isinstance(x, Tensor) else x)
    return Tensor(np.zeros_like(data, dtype=dtype), requires_grad=requires_grad)


def ones_like(
    x: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    """Ones with the shape (and, by default, the dtype) of ``x``."""
    check_device(device)
    data = np.asarray(x.data if isinstance(x, Tensor) else x)
    return Tensor(np.ones_like(data, dtype=dtype), requires_grad=requires_grad)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed chainrule's default generator (used by randn, rand and initialisers)."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The generator used when no explicit ``generator=`` is passed."""
    if STATE.trace is not None:
        STATE.trace.refuse_random()
    return _generator


def randn(
    *shape: Any,
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
    device: Any = None,
) -> Tensor:
    """Samples of the standard normal distribution, float32 by default."""
    check_device(device)
    rng = generator if generator is not None else default_generator()
    data = rng.standard_normal(_shape(shape)).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(
    *shape: Any,
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
    device: Any = None,
) -> Tensor:
    """Samples of the uniform distribution on [0, 1), float32 by default."""
    check_device(device)
    rng = generator if generator is not None else default_generator()
    data = rng.random(_shape(shape)).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def linspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    dtype: Any = None,
    requires_grad: bool = False,
    device: Any = None,
) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included unless
    ``endpoint=False``), as ``np.linspace``: float32 by default, like the other creation
    functions (``dtype=`` for another; an integer dtype rounds down, as NumPy's).
    ``start`` and ``stop`` are constants, not differentiated."""
    check_device(device)
    if int(num) < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    start, stop = (v.data if isinstance(v, Tensor) else v for v in (start, stop))
    data = np.linspace(start, stop, int(num), endpoint=endpoint)
    return Tensor(data.astype(_dtype(dtype)), requires_grad=requires_grad)


def meshgrid(*xs: Any, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-D coordinate vectors, as ``np.meshgrid``: with n vectors of
    lengths N₀, N₁, …, each output has shape (N₁, N₀, N₂, …) for ``indexing="xy"``
    (Cartesian, the default) or (N₀, N₁, …) for ``"ij"`` (matrix, PyTorch's default).

    yₖ = xₖ broadcast along the other axes;  ∂L/∂xₖ = Gₖ summed over those axes. Inputs of
    more than one dimension are flattened first, as NumPy does.
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f'meshgrid: indexing must be "xy" or "ij", got {indexing!r}')
    vectors = [reshape(x if isinstance(x, Tensor) else Tensor(x), (-1,)) for x in xs]
    shape = [v.shape[0] for v in vectors]
    axes = list(range(len(vectors)))
    if indexing == "xy" and len(vectors) > 1:
        shape[0], shape[1] = shape[1], shape[0]
        axes[0], axes[1] = 1, 0
    grids = []
    for v, axis in zip(vectors, axes):
        spread = [1] * len(vectors)
        spread[axis] = v.shape[0]
        grids.append(broadcast_to(reshape(v, tuple(spread)), tuple(shape)))
    return grids
