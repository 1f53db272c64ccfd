"""Gradient checking: does a backward agree with the function it differentiates?

``gradcheck`` compares, in float64, the full Jacobian from backpropagation with the one
from central differences, element by element, and scans the function for jumps (a
rounding or step function has a zero gradient almost everywhere, which finite differences
alone would confirm, yet it cannot be trained by backprop). ``gradgradcheck`` does the same
for the gradient itself, checking a backward's own backward (create_graph=True).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import engine
from chainrule.mode import enable_grad, no_grad
from chainrule.ops.shape import concatenate, reshape
from chainrule.tensor import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by gradcheck when the analytic and numeric gradients disagree."""


def _name(f: Callable[..., Any]) -> str:
    owner = getattr(f, "__self__", None)
    if isinstance(owner, type):
        return owner.__name__
    return getattr(f, "__name__", type(f).__name__)


def _prepare(inputs: Any) -> list[Any]:
    """float64 leaf copies of the floating-point inputs; anything else passes through."""
    items = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    prepared = []
    for item in items:
        data = item.data if isinstance(item, Tensor) else item
        if (
            isinstance(data, (np.ndarray, float, np.floating))
            and np.asarray(data).dtype.kind == "f"
        ):
            prepared.append(Tensor(np.array(data, dtype=np.float64), requires_grad=True))
        else:
            prepared.append(item)
    return prepared


class _Evaluator:
    """f as a map from flat float64 arrays (one per differentiable input) to a flat array."""

    def __init__(self, f: Callable[..., Any], inputs: list[Any], needs_graph: bool) -> None:
        self.f, self.inputs, self.needs_graph = f, inputs, needs_graph
        self.diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def __call__(self, index: int, flat: np.ndarray) -> np.ndarray:
        args = list(self.inputs)
        original = args[index]
        args[index] = Tensor(flat.reshape(original.shape), requires_grad=self.needs_graph)
        with enable_grad() if self.needs_graph else no_grad():
            out = self.f(*args)
        return np.array(out.data if isinstance(out, Tensor) else out, dtype=np.float64).ravel()


def _analytic_jacobians(out: Tensor, inputs: list[Tensor], rng: np.random.Generator) -> list:
    """J[i] of shape (out.size, inputs[i].size), one backward per output element.

    Each seed is scaled by a random factor and the result divided by it, so a backward
    that ignores its incoming gradient is caught even for a scalar output.
    """
    jacobians = [np.zeros((out.size, x.size)) for x in inputs]
    if not out.requires_grad:
        return jacobians
    for k in range(out.size):
        scale = rng.uniform(0.5, 2.0)
        seed = np.zeros(out.size)
        seed[k] = scale
        grads = engine.grad(out, inputs, grad_outputs=seed.reshape(out.shape), retain_graph=True)
        for jacobian, g in zip(jacobians, grads):
            assert g is not None  # engine.grad gives an unused input zeros, not None
            jacobian[k] = np.asarray(g.data, dtype=np.float64).ravel() / scale
    return jacobians


def _numeric_jacobian(evaluate: _Evaluator, index: int, x: Tensor, eps: float) -> np.ndarray:
    flat = x.data.ravel().astype(np.float64)
    columns = []
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        up = evaluate(index, flat)
        flat[j] = original - eps
        down = evaluate(index, flat)
        flat[j] = original
        columns.append((up - down) / (2 * eps))
    return np.stack(columns, axis=1) if columns else np.zeros((0, 0))


def _compare(
    name: str, position: int, x: Tensor, out_shape: tuple, analytic: np.ndarray,
    numeric: np.ndarray, atol: float, rtol: float,
) -> None:  # fmt: skip
    finite = np.isfinite(analytic) & np.isfinite(numeric)
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    # a NaN compares False: without the finiteness test it would pass unchecked
    if analytic.size == 0 or not np.any((excess > 0) | ~finite):
        return
    excess = np.where(finite, excess, np.inf)
    k, j = np.unravel_index(int(np.argmax(excess)), excess.shape)
    element = np.unravel_index(j, x.shape) if x.shape else ()
    output = np.unravel_index(k, out_shape) if out_shape else ()
    hint = ""
    if not np.isfinite(numeric[k, j]):
        hint = ": f is not finite within eps of the input (outside its domain?)"
    raise GradcheckError(
        f"gradcheck failed for {name}: input {position} (shape {x.shape}), element "
        f"{tuple(int(e) for e in element)}, output element {tuple(int(o) for o in output)}: "
        f"analytic {analytic[k, j]:.8g} vs numeric {numeric[k, j]:.8g} "
        f"(allowed |difference| {atol + rtol * abs(numeric[k, j]):.3g}){hint}"
    )


def _find_jump(
    evaluate: _Evaluator, index: int, x: Tensor, radius: float, rng: np.random.Generator,
    threshold: float,
) -> tuple[float, float, int] | None:  # fmt: skip
    """Scan f along x + t·v (v of ±1 entries, |t| ≤ radius) and bisect the largest change.

    A continuous f changes by almost nothing across a tiny interval; a jump keeps its size.
    Returns (t, jump size, element index) or None. Non-finite values or a blow-up (a pole,
    not a jump) make the scan inconclusive.
    """
    x0 = x.data.ravel().astype(np.float64)
    v = rng.choice([-1.0, 1.0], size=x0.size)
    ts = np.linspace(-radius, radius, 65)
    values = [evaluate(index, x0 + t * v) for t in ts]
    if not all(np.all(np.isfinite(val)) for val in values):
        return None
    changes = [np.max(np.abs(b - a), initial=0.0) for a, b in zip(values[:-1], values[1:])]
    k = int(np.argmax(changes))
    lo, hi, f_lo, f_hi = ts[k], ts[k + 1], values[k], values[k + 1]
    scale = max(np.max(np.abs(f_lo), initial=1.0), np.max(np.abs(f_hi), initial=1.0))
    for _ in range(40):
        mid = (lo + hi) / 2
        f_mid = evaluate(index, x0 + mid * v)
        if not np.all(np.isfinite(f_mid)):
            return None
        if np.max(np.abs(f_mid - f_lo), initial=0.0) >= np.max(np.abs(f_hi - f_mid), initial=0.0):
            hi, f_hi = mid, f_mid
        else:
            lo, f_lo = mid, f_mid
    jump = float(np.max(np.abs(f_hi - f_lo), initial=0.0))
    size = max(np.max(np.abs(f_lo), initial=0.0), np.max(np.abs(f_hi), initial=0.0))
    if jump <= threshold * (1 + scale) or size > 1e6 * scale:
        return None
    for j in range(x0.size):  # which element's move makes the jump
        probe = x0 + lo * v
        probe[j] = x0[j] + hi * v[j]
        if np.max(np.abs(evaluate(index, probe) - f_lo), initial=0.0) > jump / 2:
            return float(lo), jump, j
    return float(lo), jump, -1


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    check_continuity: bool = True,
    continuity_radius: float = 0.5,
    seed: int = 0,
) -> bool:
    """Check backprop's gradients of ``f`` against central finite differences, in float64.

    For each floating-point input x (converted to a float64 copy) and each output element
    k, the analytic ∂f_k/∂x (one backward pass) must match (f(x + ε eⱼ) − f(x − ε eⱼ))/2ε
    within ``atol + rtol·|numeric|``. With ``check_continuity``, f is also scanned along a
    random direction within ``continuity_radius`` of x: a jump (rounding, a step function)
    fails the check, since its zero gradient cannot train anything.

    Args:
        f: a function of the inputs returning a Tensor (any shape).
        inputs: a tensor/array or a tuple of them; non-float arguments pass through.
        eps, atol, rtol: the finite-difference step and the tolerances.
        check_continuity: also look for jumps near x (inconclusive scans pass).
        continuity_radius: how far from x, in each coordinate, to look for jumps.
        seed: for the random seed scales and the scan direction.

    Returns:
        True when every check passes.

    Raises:
        GradcheckError: naming the input, the worst element, analytic and numeric values.
    """
    return _check(
        f,
        _prepare(inputs),
        eps,
        atol,
        rtol,
        check_continuity,
        continuity_radius,
        seed,
        needs_graph=False,
    )


def _check(
    f: Callable[..., Any], args: list[Any], eps: float, atol: float, rtol: float,
    check_continuity: bool, continuity_radius: float, seed: int, needs_graph: bool,
) -> bool:  # fmt: skip
    rng = np.random.default_rng(seed)
    name = _name(f)
    out = f(*args)
    if not isinstance(out, Tensor):
        raise GradcheckError(f"gradcheck: {name} must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise GradcheckError(f"gradcheck: {name} returned {out.dtype} from float64 inputs")
    evaluate = _Evaluator(f, args, needs_graph)
    diff_inputs = [args[i] for i in evaluate.diff]
    analytic = _analytic_jacobians(out, diff_inputs, rng)
    for position, x, jacobian in zip(evaluate.diff, diff_inputs, analytic):
        numeric = _numeric_jacobian(evaluate, position, x, eps)
        _compare(name, position, x, out.shape, jacobian, numeric, atol, rtol)
        if check_continuity and x.size:
            jump = _find_jump(evaluate, position, x, continuity_radius, rng, atol)
            if jump is not None:
                t, size, j = jump
                element = tuple(int(e) for e in np.unravel_index(j, x.shape)) if j >= 0 else "?"
                raise GradcheckError(
                    f"gradcheck failed for {name}: input {position} (shape {x.shape}), element "
                    f"{element}: the function jumps by {size:.6g} within {continuity_radius} "
                    f"of the input (near offset {t:+.6g}), so it is not differentiable there: "
                    "a small step changes it by an amount that no gradient accounts for (the "
                    "gradient of a rounding or step function is 0 almost everywhere). A "
                    "function that backprop must train through has to be continuous."
                )
    return True


def gradgradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck of x ↦ vjp(f, x)(u) for a fixed random u.

    The first-order gradients are computed with ``create_graph=True``, so this checks
    that every backward used by ``f`` is itself differentiable and correct.
    """
    rng = np.random.default_rng(seed + 1)
    args = _prepare(inputs)
    out = f(*args)
    cotangent = rng.standard_normal(out.shape)

    def first_derivatives(*xs: Any) -> Tensor:
        diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        y = f(*xs)
        grads = engine.grad(y, diff, grad_outputs=Tensor(cotangent), create_graph=True)
        return concatenate([reshape(g, (-1,)) for g in grads])

    first_derivatives.__name__ = f"the gradient of {_name(f)}"
    _check_recorded_matches_plain(f, args, cotangent, atol, rtol)
    return _check(first_derivatives, args, eps, atol, rtol, False, 0.0, seed, needs_graph=True)


def _check_recorded_matches_plain(
    f: Callable[..., Any], args: list[Any], cotangent: np.ndarray, atol: float, rtol: float
) -> None:
    """The recorded first derivatives (create_graph) must equal the plain ones: a backward
    whose Tensor path differs from its ndarray path would otherwise pass unnoticed."""
    diff = [x for x in args if isinstance(x, Tensor) and x.requires_grad]
    y = f(*args)
    if not y.requires_grad:
        return
    plain = engine.grad(y, diff, grad_outputs=cotangent, retain_graph=True)
    recorded = engine.grad(y, diff, grad_outputs=Tensor(cotangent), create_graph=True)
    for position, (p_tensor, r_tensor) in enumerate(zip(plain, recorded)):
        assert p_tensor is not None and r_tensor is not None  # zeros where unused, never None
        p = np.asarray(p_tensor.data, dtype=np.float64)
        r = np.asarray(r_tensor.data, dtype=np.float64)
        if not np.allclose(r, p, atol=atol, rtol=rtol, equal_nan=True):
            worst = np.unravel_index(int(np.argmax(np.abs(r - p))), p.shape) if p.shape else ()
            raise GradcheckError(
                f"gradgradcheck failed for {_name(f)}: the first derivative of input "
                f"{position} under create_graph=True differs from the plain one at element "
                f"{tuple(int(i) for i in worst)}: {r[worst]:.8g} vs {p[worst]:.8g} "
                "(the backward's Tensor path computes something else than its ndarray path)"
            )
