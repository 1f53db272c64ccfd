"""The op library: every differentiable operation, as a Function and a lowercase wrapper.

Files by category: ``elementwise`` (arithmetic, exp/log, tanh, sigmoid, softplus),
``piecewise`` (relu, abs, clip, maximum, minimum, where, safe_sqrt: the kinks),
``reduction`` (sum, max, logsumexp, softmax), ``shape`` (reshape, indexing,
concatenation), ``linalg`` (matmul, einsum, the fused affine map), ``conv`` (conv2d and
its two adjoints) and ``pool`` (max and average pooling) on the array kernels of
``im2col``, ``losses`` (cross-entropy with integer labels). v0.2 adds
``trigonometric`` (sin … arctan2, sinh, cosh), ``exponential`` (log1p, expm1, log2,
log10), ``powers`` (square, reciprocal), ``special`` (erf), ``rounding`` (sign, floor,
ceil, round: gradient 0), ``aggregates`` (prod, std, all, any), ``scan`` (cumsum,
cumprod) and ``sorting`` (sort, argsort, topk). ``rules`` holds the helpers derivative
rules are written with.

The neural-network primitives (``affine``, ``softplus``, ``safe_sqrt``, ``conv2d``,
``conv2d_input``, ``conv2d_weight``, ``max_pool2d``, ``avg_pool2d``,
``cross_entropy_with_labels``) are ops like the others; ``cr.nn.functional`` gives them
their PyTorch names (``F.linear``, ``F.conv2d``, ``F.cross_entropy``, ...), and they are not
re-exported at the top level of ``chainrule``.
"""

from chainrule.ops.aggregates import all, any, prod, std
from chainrule.ops.conv import conv2d, conv2d_input, conv2d_weight
from chainrule.ops.elementwise import (
    add,
    astype,
    div,
    exp,
    log,
    mul,
    neg,
    power,
    sigmoid,
    softplus,
    sqrt,
    sub,
    tanh,
)
from chainrule.ops.exponential import expm1, log1p, log2, log10
from chainrule.ops.linalg import affine, dot, einsum, matmul, outer
from chainrule.ops.losses import cross_entropy_with_labels
from chainrule.ops.piecewise import abs, clip, maximum, minimum, relu, safe_sqrt, where
from chainrule.ops.pool import avg_pool2d, max_pool2d
from chainrule.ops.powers import reciprocal, square
from chainrule.ops.reduction import (
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    sum,
    var,
)
from chainrule.ops.rounding import ceil, floor, round, sign
from chainrule.ops.scan import cumprod, cumsum
from chainrule.ops.shape import (
    broadcast_to,
    clone,
    concatenate,
    expand_dims,
    flatten,
    getitem,
    reshape,
    squeeze,
    stack,
    swapaxes,
    transpose,
)
from chainrule.ops.sorting import argsort, sort, topk
from chainrule.ops.special import erf
from chainrule.ops.trigonometric import (
    arccos,
    arcsin,
    arctan,
    arctan2,
    cos,
    cosh,
    sin,
    sinh,
    tan,
)

__all__ = [
    "abs", "add", "astype", "clip", "div", "exp", "log", "maximum", "minimum", "mul", "neg",
    "power", "relu", "safe_sqrt", "sigmoid", "softplus", "sqrt", "sub", "tanh", "where",
    "affine", "dot", "einsum", "matmul", "outer",
    "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "min", "softmax", "sum",
    "var",
    "broadcast_to", "clone", "concatenate", "expand_dims", "flatten", "getitem", "reshape",
    "squeeze", "stack", "swapaxes", "transpose",
    "conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "avg_pool2d",
    "cross_entropy_with_labels",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "log1p",
    "expm1", "log2", "log10", "square", "reciprocal", "sign", "floor", "ceil", "round", "erf",
    "prod", "cumsum", "cumprod", "std", "all", "any", "sort", "argsort", "topk",
]  # fmt: skip
