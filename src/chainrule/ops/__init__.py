"""The op library: every differentiable operation, as a Function and a lowercase wrapper.

Files by category: ``elementwise`` (arithmetic, exp/log, tanh, sigmoid, softplus),
``piecewise`` (relu, abs, clip, maximum, minimum, where, safe_sqrt: the kinks),
``reduction`` (sum, max, logsumexp, softmax), ``shape`` (reshape, indexing,
concatenation), ``linalg`` (matmul, einsum, the fused affine map), ``inverse`` (inv,
det, slogdet, solve), ``decompositions`` (cholesky, eigh, svd) and ``norms`` (norm), which
``cr.linalg`` gathers, ``conv`` (conv2d and its two adjoints) and ``pool`` (max and average
pooling) on the array kernels of ``im2col``, ``losses`` (cross-entropy with integer
labels). v0.2 adds ``trigonometric`` (sin … arctan2, sinh, cosh), ``exponential``
(log1p, expm1, log2, log10), ``powers`` (square, reciprocal), ``special`` (erf),
``rounding`` (sign, floor, ceil, round: gradient 0), ``aggregates`` (prod, std, all, any),
``scan`` (cumsum, cumprod), ``sorting`` (sort, argsort, topk), ``rearrange`` (pad, tile,
repeat, flip, roll, split, moveaxis, cat), ``diagonal`` (tril, triu, diagonal, trace),
``gather`` (take_along_axis) and ``normal`` (the normal CDF Φ). ``rules`` holds the helpers
derivative rules are written with.

The neural-network primitives (``affine``, ``softplus``, ``safe_sqrt``, ``conv2d``,
``conv2d_input``, ``conv2d_weight``, ``max_pool2d``, ``avg_pool2d``,
``cross_entropy_with_labels``) are ops like the others; ``cr.nn.functional`` gives them
their PyTorch names (``F.linear``, ``F.conv2d``, ``F.cross_entropy``, ...), and they are not
re-exported at the top level of ``chainrule``.
"""

from chainrule.ops.aggregates import all, any, prod, std
from chainrule.ops.conv import conv2d, conv2d_input, conv2d_weight
from chainrule.ops.decompositions import cholesky, eigh, svd
from chainrule.ops.diagonal import diagonal, trace, tril, triu
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
from chainrule.ops.gather import take_along_axis
from chainrule.ops.inverse import det, inv, slogdet, solve
from chainrule.ops.linalg import affine, dot, einsum, matmul, outer
from chainrule.ops.losses import cross_entropy_with_labels
from chainrule.ops.normal import normal_cdf
from chainrule.ops.norms import norm
from chainrule.ops.piecewise import abs, clip, maximum, minimum, relu, safe_sqrt, where
from chainrule.ops.pool import avg_pool2d, max_pool2d
from chainrule.ops.powers import reciprocal, square
from chainrule.ops.rearrange import cat, flip, moveaxis, pad, repeat, roll, split, tile
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
    "norm", "inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd",
    "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "min", "softmax", "sum",
    "var",
    "broadcast_to", "clone", "concatenate", "expand_dims", "flatten", "getitem", "reshape",
    "squeeze", "stack", "swapaxes", "transpose",
    "conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "avg_pool2d",
    "cross_entropy_with_labels",
    "pad", "tile", "repeat", "flip", "roll", "split", "moveaxis", "cat",
    "tril", "triu", "diagonal", "trace", "take_along_axis",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "log1p",
    "expm1", "log2", "log10", "square", "reciprocal", "sign", "floor", "ceil", "round", "erf",
    "prod", "cumsum", "cumprod", "std", "all", "any", "sort", "argsort", "topk",
    "normal_cdf",
]  # fmt: skip
