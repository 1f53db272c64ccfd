"""The op library: every differentiable operation, as a Function and a lowercase wrapper.

Files by category: ``elementwise`` (arithmetic, exp/log, tanh, sigmoid, softplus),
``piecewise`` (relu, abs, clip, maximum, minimum, where, safe_sqrt: the kinks),
``reduction`` (sum, max, logsumexp, softmax), ``shape`` (reshape, indexing,
concatenation), ``linalg`` (matmul, einsum, the fused affine map), ``conv`` (conv2d and
its two adjoints) and ``pool`` (max and average pooling) on the array kernels of
``im2col``, ``losses`` (cross-entropy with integer labels), ``normal`` (the normal CDF
Φ). ``rules`` holds the helpers derivative rules are written with.

The neural-network primitives (``affine``, ``softplus``, ``safe_sqrt``, ``conv2d``,
``conv2d_input``, ``conv2d_weight``, ``max_pool2d``, ``avg_pool2d``,
``cross_entropy_with_labels``) are ops like the others; ``cr.nn.functional`` gives them
their PyTorch names (``F.linear``, ``F.conv2d``, ``F.cross_entropy``, ...), and they are not
re-exported at the top level of ``chainrule``.
"""

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
from chainrule.ops.linalg import affine, dot, einsum, matmul, outer
from chainrule.ops.losses import cross_entropy_with_labels
from chainrule.ops.normal import normal_cdf
from chainrule.ops.piecewise import abs, clip, maximum, minimum, relu, safe_sqrt, where
from chainrule.ops.pool import avg_pool2d, max_pool2d
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
    "normal_cdf",
]  # fmt: skip
