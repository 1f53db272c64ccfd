"""``Tensor``: an ndarray with a gradient and a link to the op that made it.

A Tensor holds ``data`` (a NumPy array, never copied behind the user's back), ``grad``
(a Tensor or None, filled on leaves by ``backward``), whether it requires grad, and
``grad_fn``: the recorded ``Context`` of the Function that produced it (None for leaves).
Operators and methods delegate to ``chainrule.ops``; ``backward`` calls the engine.

The ops and the engine are built on Tensor, so this module cannot import them when it
loads: ``chainrule.wiring`` connects them (``import chainrule`` runs it), and the methods
find them at call time. So every core module imports on its own, in any order.
"""

from __future__ import annotations

import weakref
from typing import Any, NoReturn

import numpy as np

from chainrule import versions as _versions
from chainrule.mode import STATE

__all__ = ["Tensor", "DEFAULT_DTYPE"]

DEFAULT_DTYPE = np.dtype(np.float32)


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """The ndarray a new tensor holds: Python floats become float32, ndarrays keep theirs.

    Numbers only (bool, integer, floating, complex): strings, objects and dates are refused
    here, with their dtype, rather than by the first op that meets them.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        array = data if dtype is None else data.astype(dtype, copy=False)
    elif dtype is not None:
        array = np.asarray(data, dtype=dtype)
    else:
        array = np.asarray(data)
        if array.dtype == np.float64 and not isinstance(data, np.generic):
            array = array.astype(DEFAULT_DTYPE)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"a tensor holds numbers (bool, integer, floating or complex), got an array of "
            f"dtype {array.dtype} and shape {array.shape}"
        )
    return array


def constant_op(fn: Any, *args: Any, **kwargs: Any) -> np.ndarray:
    """``fn(*args, **kwargs)`` as an ndarray that no gradient flows through (a comparison,
    an argmax); inside ``cr.compile``'s trace the call is written down, to be replayed."""
    out = np.asarray(fn(*args, **kwargs))
    if STATE.trace is not None:
        STATE.trace.call(fn, args, kwargs, out)
    return out


def filled(shape: tuple[int, ...], value: Any, dtype: Any) -> np.ndarray:
    """np.full without its Python-level setup (a third of the time on small tensors)."""
    out = np.empty(shape, dtype)
    out.fill(value)
    return out


class Tensor:
    """A NumPy array that records the operations applied to it, for reverse-mode autodiff.

    Args:
        data: array-like. Python numbers and lists of floats become float32 (the default
            float dtype); an ndarray keeps its dtype (float64 stays float64) and is not
            copied.
        dtype: optional NumPy dtype to convert to.
        requires_grad: whether ``backward`` should compute a gradient for this tensor.
            Only floating-point tensors can require grad.
    """

    __slots__ = ("data", "_grad", "_requires_grad", "_node", "__weakref__")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to the Tensor's reflected operator

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        self.data = as_array(data, dtype)
        self._grad: Tensor | None = None
        self._node: Any = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _make(cls, data: np.ndarray, node: Any) -> Tensor:
        """Fast internal constructor: no checks, no copies."""
        tensor = object.__new__(cls)
        tensor.data = data
        tensor._grad = None
        tensor._node = node
        tensor._requires_grad = node is not None
        return tensor

    # ----------------------------------------------------------------- attributes
    @property
    def requires_grad(self) -> bool:
        """Whether ``backward`` computes a gradient for this tensor (settable on leaves)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self._node is not None:
            raise RuntimeError(
                "requires_grad can only be changed on leaf tensors; use detach() to get a "
                "leaf from a computed tensor"
            )
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require grad, got dtype {self.data.dtype}; "
                "convert with .astype(np.float32) first"
            )
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = flag
        return self

    @property
    def grad(self) -> Tensor | None:
        """∂L/∂self after ``backward`` (accumulated across calls, on leaves), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = None if value is None else _checked_grad(self, value)

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has seen (shared with its views)."""
        return _versions.version_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self) -> Any:
        """The recorded op (a ``Context``) that made this tensor, or None for a leaf."""
        return self._node

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``data``, a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes (0 for a scalar)."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of ``data`` (float32 by default)."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of elements (NumPy's meaning, not PyTorch's ``size()``)."""
        return self.data.size

    @property
    def T(self) -> Tensor:
        """The transpose (all axes reversed, as ``ndarray.T``)."""
        return _ops.transpose(self)

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared memory, no copy)."""
        if STATE.trace is not None:
            STATE.trace.read(self, "numpy()")
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if STATE.trace is not None:
            STATE.trace.read(self, "item()")
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The values as (nested) Python lists of numbers."""
        if STATE.trace is not None:
            STATE.trace.read(self, "tolist()")
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor._make(self.data, None)

    def retain_grad(self) -> Tensor:
        """Ask ``backward`` to also fill ``.grad`` of this non-leaf tensor."""
        if self._node is not None:
            self._node._retained = weakref.ref(self)
        return self

    def backward(
        self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Backpropagate from this tensor: add d(self)/d(leaf) into ``leaf.grad``.

        Args:
            grad: the gradient of the final objective with respect to this tensor (shaped
                like it). May be omitted only for a scalar (one-element) tensor.
            retain_graph: keep the saved arrays so that backward can run again.
            create_graph: record the backward pass itself, so the gradients can be
                differentiated (implies ``retain_graph``).
        """
        _engine.backward(self, grad, retain_graph, create_graph)

    # ----------------------------------------------------------------- conversions
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        if copy:
            return self.data.copy()
        return self.data

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.data.__dlpack_device__()

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Any:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __bool__(self) -> bool:
        if STATE.trace is not None:
            STATE.trace.read(self, "bool()")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    __hash__ = object.__hash__  # == is elementwise, so hash by identity as PyTorch does

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype != DEFAULT_DTYPE:
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # ----------------------------------------------------------------- operators
    # Tensor (op) Tensor goes straight to the op's Function: the most common case, and
    # the per-op overhead counts on small tensors.
    def __add__(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return _apply_pair(_elementwise.Add, self, other)
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return _apply_pair(_elementwise.Sub, self, other)
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return _apply_pair(_elementwise.Mul, self, other)
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return _apply_pair(_elementwise.Div, self, other)
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _ops.power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # In place: the same memory is written and ``self`` returned (chainrule.inplace has
    # the rules: refused on a leaf that requires grad unless inside no_grad()).
    def __iadd__(self, other: Any) -> Tensor:
        return _inplace.arithmetic(self, "+=", other)

    def __isub__(self, other: Any) -> Tensor:
        return _inplace.arithmetic(self, "-=", other)

    def __imul__(self, other: Any) -> Tensor:
        return _inplace.arithmetic(self, "*=", other)

    def __itruediv__(self, other: Any) -> Tensor:
        return _inplace.arithmetic(self, "/=", other)

    def __ipow__(self, other: Any) -> Tensor:
        return _inplace.arithmetic(self, "**=", other)

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        """In place: self ← self + alpha·other. Returns self."""
        return _inplace.arithmetic(self, "add_", other, alpha)

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        """In place: self ← self − alpha·other. Returns self."""
        return _inplace.arithmetic(self, "sub_", other, alpha)

    def mul_(self, other: Any) -> Tensor:
        """In place: self ← self ∘ other. Returns self."""
        return _inplace.arithmetic(self, "mul_", other)

    def div_(self, other: Any) -> Tensor:
        """In place: self ← self / other. Returns self."""
        return _inplace.arithmetic(self, "div_", other)

    def zero_(self) -> Tensor:
        """In place: every element set to 0. Returns self."""
        return _inplace.fill(self, "zero_", 0)

    def fill_(self, value: Any) -> Tensor:
        """In place: every element set to ``value``. Returns self."""
        return _inplace.fill(self, "fill_", value)

    def copy_(self, src: Any) -> Tensor:
        """In place: self's elements replaced by ``src`` (broadcast, cast to self's
        dtype). Returns self."""
        return _inplace.fill(self, "copy_", src)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (PyTorch's names)
        """In place: every element clipped into [min, max]. Returns self."""
        return _inplace.clamp(self, min, max)

    # Comparisons are not differentiable: they return bool tensors.
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._make(constant_op(np.equal, self.data, _raw(other)), None)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor._make(constant_op(np.not_equal, self.data, _raw(other)), None)

    def __lt__(self, other: Any) -> Tensor:
        return Tensor._make(constant_op(np.less, self.data, _raw(other)), None)

    def __le__(self, other: Any) -> Tensor:
        return Tensor._make(constant_op(np.less_equal, self.data, _raw(other)), None)

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._make(constant_op(np.greater, self.data, _raw(other)), None)

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._make(constant_op(np.greater_equal, self.data, _raw(other)), None)

    # ----------------------------------------------------------------- methods
    def sum(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """Σ over ``axis`` (all axes by default); ∂(Σx)/∂xᵢ = 1. ``dim=`` is an alias, and
        ``keepdim=`` of ``keepdims=``."""
        if axis is None and dim is None and keepdim is None:  # the loss's reduction: no axes
            return _apply_one(_reduction.Sum, self, _OVER_ALL_AXES[bool(keepdims)])
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """(1/n) Σ over ``axis`` (all axes by default); ∂/∂xᵢ = 1/n."""
        if axis is None and dim is None and keepdim is None:
            return _apply_one(_reduction.Mean, self, _OVER_ALL_AXES[bool(keepdims)])
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(
        self,
        axis: Any = None,
        keepdims: bool = False,
        ddof: int = 0,
        dim: Any = None,
        keepdim: Any = None,
    ) -> Tensor:
        """Variance (1/(n − ddof)) Σ (xᵢ − x̄)² over ``axis``; ∂/∂xᵢ = 2(xᵢ − x̄)/(n − ddof)."""
        return _ops.var(self, axis, keepdims, ddof=ddof, dim=dim, keepdim=keepdim)

    def max(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """The largest element over ``axis`` (values, as NumPy; not PyTorch's (values,
        indices)); the gradient is split evenly among ties."""
        return _ops.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """The smallest element over ``axis`` (values, as NumPy; not PyTorch's (values,
        indices)); the gradient is split evenly among ties."""
        return _ops.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """The index of the largest element over ``axis`` (an integer tensor; not
        differentiable)."""
        return _ops.argmax(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmin(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """The index of the smallest element over ``axis`` (an integer tensor; not
        differentiable)."""
        return _ops.argmin(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def logsumexp(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """log Σ exp(x) over ``axis``, computed stably; its gradient is softmax(x)."""
        return _ops.logsumexp(self, axis, keepdims, dim=dim, keepdim=keepdim)

    # v0.2: elementwise functions, reductions, scans and sorting (the ops of the same names)
    def sin(self) -> Tensor:
        """Elementwise sin x; sin′ = cos."""
        return _ops.sin(self)

    def cos(self) -> Tensor:
        """Elementwise cos x; cos′ = −sin."""
        return _ops.cos(self)

    def tan(self) -> Tensor:
        """Elementwise tan x; tan′ = 1 + tan²."""
        return _ops.tan(self)

    def arcsin(self) -> Tensor:
        """Elementwise arcsin x; arcsin′ = 1/√(1 − x²), +inf at ±1."""
        return _ops.arcsin(self)

    def arccos(self) -> Tensor:
        """Elementwise arccos x; arccos′ = −1/√(1 − x²), −inf at ±1."""
        return _ops.arccos(self)

    def arctan(self) -> Tensor:
        """Elementwise arctan x; arctan′ = 1/(1 + x²)."""
        return _ops.arctan(self)

    def arctan2(self, x: Any) -> Tensor:
        """The angle of (x, self) elementwise, as ``np.arctan2(self, x)``."""
        return _ops.arctan2(self, x)

    def sinh(self) -> Tensor:
        """Elementwise sinh x; sinh′ = cosh."""
        return _ops.sinh(self)

    def cosh(self) -> Tensor:
        """Elementwise cosh x; cosh′ = sinh."""
        return _ops.cosh(self)

    def log1p(self) -> Tensor:
        """Elementwise ln(1 + x), accurate for tiny x; log1p′ = 1/(1 + x)."""
        return _ops.log1p(self)

    def expm1(self) -> Tensor:
        """Elementwise eˣ − 1, accurate for tiny x; expm1′ = eˣ."""
        return _ops.expm1(self)

    def log2(self) -> Tensor:
        """Elementwise log₂ x; log2′ = 1/(x ln 2)."""
        return _ops.log2(self)

    def log10(self) -> Tensor:
        """Elementwise log₁₀ x; log10′ = 1/(x ln 10)."""
        return _ops.log10(self)

    def square(self) -> Tensor:
        """Elementwise x²; square′ = 2x."""
        return _ops.square(self)

    def reciprocal(self) -> Tensor:
        """Elementwise 1/x (inf at 0); reciprocal′ = −1/x²."""
        return _ops.reciprocal(self)

    def sign(self) -> Tensor:
        """Elementwise sign (−1, 0, 1); gradient 0 everywhere."""
        return _ops.sign(self)

    def floor(self) -> Tensor:
        """Elementwise ⌊x⌋; gradient 0 everywhere."""
        return _ops.floor(self)

    def ceil(self) -> Tensor:
        """Elementwise ⌈x⌉; gradient 0 everywhere."""
        return _ops.ceil(self)

    def round(self, decimals: int = 0) -> Tensor:
        """Elementwise rounding, halves to even (as NumPy); gradient 0 everywhere."""
        return _ops.round(self, decimals)

    def erf(self) -> Tensor:
        """Elementwise error function; erf′ = (2/√π) e^(−x²)."""
        return _ops.erf(self)

    def prod(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """Π over ``axis`` (all by default); ∂/∂xᵢ = Π_{j≠i} xⱼ, exact with zeros."""
        return _ops.prod(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def cumsum(self, axis: Any = None, dim: Any = None) -> Tensor:
        """Running sum along ``axis`` (None: flattened, as NumPy)."""
        return _ops.cumsum(self, axis, dim=dim)

    def cumprod(self, axis: Any = None, dim: Any = None) -> Tensor:
        """Running product along ``axis`` (None: flattened, as NumPy); exact with zeros."""
        return _ops.cumprod(self, axis, dim=dim)

    def std(
        self,
        axis: Any = None,
        keepdims: bool = False,
        ddof: int = 0,
        dim: Any = None,
        keepdim: Any = None,
    ) -> Tensor:
        """Standard deviation over ``axis`` (ddof=0 as NumPy); gradient 0 where it is 0."""
        return _ops.std(self, axis, keepdims, ddof=ddof, dim=dim, keepdim=keepdim)

    def all(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """True where every element over ``axis`` is nonzero (bool; not differentiable)."""
        return _ops.all(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def any(
        self, axis: Any = None, keepdims: bool = False, dim: Any = None, keepdim: Any = None
    ) -> Tensor:
        """True where some element over ``axis`` is nonzero (bool; not differentiable)."""
        return _ops.any(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def sort(self, axis: Any = -1, dim: Any = None) -> Tensor:
        """The values sorted ascending along ``axis`` (stable); the gradient follows the
        permutation back."""
        return _ops.sort(self, axis, dim=dim)

    def argsort(self, axis: Any = -1, dim: Any = None) -> Tensor:
        """The indices that sort along ``axis`` (stable; an integer tensor)."""
        return _ops.argsort(self, axis, dim=dim)

    def topk(
        self, k: int, axis: Any = -1, largest: bool = True, dim: Any = None
    ) -> tuple[Tensor, Tensor]:
        """The k largest (or smallest) values along ``axis`` and their indices."""
        return _ops.topk(self, k, axis, largest, dim=dim)

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one entry may be −1): ``t.reshape(2, 3)`` or
        ``t.reshape((2, 3))``."""
        return _ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes: Any) -> Tensor:
        """The axes permuted (reversed by default), as ``ndarray.transpose``."""
        order = (
            axes[0]
            if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list)))
            else axes
        )
        return _ops.transpose(self, order or None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Axes ``axis1`` and ``axis2`` exchanged."""
        return _ops.swapaxes(self, axis1, axis2)

    def flatten(self) -> Tensor:
        """The elements as a 1-D tensor."""
        return _ops.flatten(self)

    def squeeze(self, axis: Any = None) -> Tensor:
        """Without its size-1 axes (or only the given ones)."""
        return _ops.squeeze(self, axis)

    def expand_dims(self, axis: Any) -> Tensor:
        """With a new size-1 axis inserted at ``axis``."""
        return _ops.expand_dims(self, axis)

    def broadcast_to(self, shape: Any) -> Tensor:
        """Repeated along broadcast axes to ``shape``; the gradient is summed back."""
        return _ops.broadcast_to(self, shape)

    def repeat(self, repeats: Any, axis: int | None = None) -> Tensor:
        """Each element repeated along ``axis`` (NumPy's ``repeat``, PyTorch's
        ``repeat_interleave``); the gradient sums over the copies."""
        return _ops.repeat(self, repeats, axis)

    def tile(self, reps: Any) -> Tensor:
        """Repeated ``reps`` times along each axis (``np.tile``); the gradient sums the tiles."""
        return _ops.tile(self, reps)

    def flip(self, axis: Any = None) -> Tensor:
        """Reversed along ``axis`` (all axes by default); the gradient is flipped back."""
        return _ops.flip(self, axis)

    def roll(self, shift: Any, axis: Any = None) -> Tensor:
        """Shifted cyclically by ``shift`` along ``axis``; the gradient is rolled by −shift."""
        return _ops.roll(self, shift, axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The diagonal in the plane of ``axis1``, ``axis2``, as a last axis (``np.diagonal``);
        the gradient is placed back on that diagonal."""
        return _ops.diagonal(self, offset, axis1, axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The sum of the diagonal (``np.trace``); the gradient is G on the diagonal."""
        return _ops.trace(self, offset, axis1, axis2)

    def clone(self) -> Tensor:
        """A copy in new memory that stays on the graph (gradients flow back to self)."""
        return _ops.clone(self)

    def astype(self, dtype: Any) -> Tensor:
        """Converted to ``dtype``; differentiable between float dtypes."""
        return _ops.astype(self, dtype)

    def exp(self) -> Tensor:
        """Elementwise eˣ; d/dx eˣ = eˣ."""
        return _ops.exp(self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm; d/dx ln x = 1/x."""
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        """Elementwise √x; d/dx √x = 1/(2√x), +∞ at 0."""
        return _ops.sqrt(self)

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent; tanh′ = 1 − tanh²."""
        return _apply_one(_elementwise.Tanh, self)

    def sigmoid(self) -> Tensor:
        """Elementwise σ(x) = 1/(1 + e⁻ˣ), stable for any x; σ′ = σ(1 − σ)."""
        return _ops.sigmoid(self)

    def relu(self) -> Tensor:
        """Elementwise max(x, 0); derivative 1 for x > 0, else 0 (0 at the kink)."""
        return _ops.relu(self)

    def abs(self) -> Tensor:
        """Elementwise |x|; derivative sign(x), 0 at the kink."""
        return _ops.abs(self)

    def clip(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (NumPy names)
        """Elementwise min(max(x, min), max); derivative 1 inside [min, max] (bounds
        included), else 0."""
        return _ops.clip(self, min, max)

    def softmax(self, axis: Any = None, dim: Any = None) -> Tensor:
        """exp(x) / Σ exp(x) along ``axis`` (the last by default), computed stably."""
        return _ops.softmax(self, axis, dim=dim)

    def log_softmax(self, axis: Any = None, dim: Any = None) -> Tensor:
        """x − logsumexp(x) along ``axis`` (the last by default), computed stably."""
        return _ops.log_softmax(self, axis, dim=dim)

    # ----------------------------------------------------------------- PyTorch aliases
    # Spellings a PyTorch user reaches for, where they do not conflict with NumPy's
    # meaning (``size`` stays NumPy's element count; ``max(axis)`` returns values only).
    def pow(self, exponent: Any) -> Tensor:
        """self ** exponent (PyTorch's name for ``power``)."""
        return _ops.power(self, exponent)

    def unsqueeze(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        """With a new size-1 axis at ``axis`` (PyTorch's name for ``expand_dims``)."""
        return _ops.expand_dims(self, _one_of(axis, dim, "unsqueeze"))

    def view(self, *shape: Any) -> Tensor:
        """``reshape`` under PyTorch's name: memory is shared when NumPy can (a
        contiguous tensor), copied otherwise; PyTorch would raise instead of copying."""
        return self.reshape(*shape)

    def permute(self, *axes: Any) -> Tensor:
        """The axes in the order given: ``t.permute(2, 0, 1)`` or ``t.permute((2, 0, 1))``
        (``transpose`` with every axis named, as PyTorch's ``permute``)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) != self.data.ndim:
            raise ValueError(
                f"permute needs one axis per dimension ({self.data.ndim}), got {len(axes)}"
            )
        return _ops.transpose(self, axes)

    def dim(self) -> int:
        """The number of axes, ``ndim`` (PyTorch's name)."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of elements, ``size`` (PyTorch's name)."""
        return self.data.size

    def float(self) -> Tensor:
        """As float32 (differentiable; self if it already is)."""
        return self.to(np.float32)

    def double(self) -> Tensor:
        """As float64 (differentiable; self if it already is)."""
        return self.to(np.float64)

    def type(self, dtype: Any) -> Tensor:
        """Converted to ``dtype`` (a NumPy dtype, ``cr.float64``, or a name such as
        ``"float64"``); self if it already has it."""
        return self.to(dtype)

    def to(self, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False) -> Tensor:
        """Converted to a dtype and/or "device", as PyTorch's ``to``: ``t.to(cr.float64)``,
        ``t.to("cpu")``, ``t.to("cpu", cr.float64)``, ``t.to(other)`` (other's dtype).

        Self is returned when nothing changes (and ``copy`` is False); a new dtype gives a
        differentiable ``astype``. chainrule runs on the CPU only: "cpu" is accepted and
        changes nothing, any other device raises ``ValueError``.
        """
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype if dtype is None else dtype
            elif isinstance(arg, str) and is_device_name(arg):
                check_device(arg)
            elif dtype is None:
                dtype = arg
            else:
                raise TypeError(f"to() got two dtypes: {dtype!r} and {arg!r}")
        check_device(device)
        out = self if dtype is None or np.dtype(dtype) == self.data.dtype else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Tensor:
        """Self: chainrule's tensors always live in the CPU's memory."""
        return self

    def mm(self, other: Any) -> Tensor:
        """The matrix product of two 2-D tensors (PyTorch's ``mm``; ``@`` also batches)."""
        other_ndim = other.ndim if isinstance(other, Tensor) else np.ndim(other)
        if self.data.ndim != 2 or other_ndim != 2:
            raise ValueError(
                f"mm multiplies two matrices (2-D), got {self.data.ndim}-D and {other_ndim}-D; "
                "use @ (matmul) for batches or vectors"
            )
        return _ops.matmul(self, other)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (PyTorch's names)
        """``clip`` under PyTorch's name: min(max(x, min), max); derivative 1 inside [min,
        max] (bounds included), else 0."""
        return _ops.clip(self, min, max)


def _checked_grad(tensor: Tensor, value: Any) -> Tensor:
    """``value`` as the gradient of ``tensor``, or a TypeError/ValueError saying why not."""
    if not isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(
            f"a tensor's .grad must be a Tensor, an ndarray or None, got {type(value).__name__}"
        )
    grad = value if isinstance(value, Tensor) else Tensor._make(value, None)
    if tensor.data.dtype.kind not in "fc":
        raise TypeError(f"a tensor of dtype {tensor.dtype} cannot have a gradient")
    if grad.data.dtype.kind not in "fc":
        raise TypeError(
            f"a gradient must have a floating-point dtype, got {grad.dtype} for a tensor "
            f"of dtype {tensor.dtype}"
        )
    if grad.shape != tensor.shape:
        raise ValueError(
            f"a gradient must have the tensor's shape {tensor.shape}, got {grad.shape}"
        )
    return grad


def _raw(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _one_of(axis: Any, dim: Any, name: str) -> Any:
    """``axis``, or PyTorch's ``dim=`` spelling of it (one of the two, not both)."""
    if (axis is None) == (dim is None):
        raise TypeError(f"{name}() takes axis (or dim=): exactly one of them")
    return dim if axis is None else axis


#: the device types PyTorch knows, so that ``to("cuda")`` is read as a device, not a dtype
_DEVICE_TYPES = {"cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "ipu", "hpu", "mtia", "vulkan"}


def is_device_name(name: str) -> bool:
    """Whether ``name`` names a device ("cpu", "cuda:0", ...) rather than a dtype."""
    return name.split(":", 1)[0].lower() in _DEVICE_TYPES


def check_device(device: Any) -> None:
    """Accept None or "cpu" (PyTorch's ``device=``); refuse any other device clearly."""
    if device is None:
        return
    name = str(device)  # a torch.device prints as its name
    if name.lower().split(":", 1)[0] != "cpu":
        raise ValueError(
            f"device {name!r} is not available: chainrule runs on the CPU only (NumPy "
            'arrays); pass device="cpu" or leave it out'
        )


class _NotConnected:
    """Stands for a module that ``chainrule.wiring`` has not connected yet."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            f"{self.name} is not loaded: Tensor's operators need `import chainrule` "
            "(which connects the ops and the engine to Tensor)"
        )

    __call__ = _refuse

    def __getattr__(self, attribute: str) -> Any:
        self._refuse()


# What the methods call; chainrule.wiring.connect() puts the real modules here.
_ops: Any = _NotConnected("chainrule.ops")
_engine: Any = _NotConnected("chainrule.engine")
_inplace: Any = _NotConnected("chainrule.inplace")
_elementwise: Any = _NotConnected("chainrule.ops.elementwise")
_reduction: Any = _NotConnected("chainrule.ops.reduction")
_apply_one: Any = _NotConnected("chainrule.function.apply_one")
_apply_pair: Any = _NotConnected("chainrule.function.apply_pair")

# The options of a full reduction (x.sum(), x.mean()), by keepdims: made once, as the
# unrolled apply_one takes them (it hands the op's rules a copy, never this dict)
_OVER_ALL_AXES: tuple[dict[str, Any], dict[str, Any]] = (
    {"axes": None, "keepdims": False},
    {"axes": None, "keepdims": True},
)
