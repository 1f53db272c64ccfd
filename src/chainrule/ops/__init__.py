"""The op library: every differentiable operation, as a Function and a lowercase wrapper.

Files by category: ``elementwise`` (arithmetic, exp/log, tanh, sigmoid), ``piecewise``
(relu, abs, clip, maximum, minimum, where: the kinks), ``reduction`` (sum, max,
logsumexp, softmax), ``shape`` (reshape, indexing, concatenation), ``linalg`` (matmul,
einsum). ``either`` holds the helpers derivative rules are written with.
"""

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
    sqrt,
    sub,
    tanh,
)
from chainrule.ops.linalg import dot, einsum, matmul, outer
from chainrule.ops.piecewise import abs, clip, maximum, minimum, relu, where
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
    "power", "relu", "sigmoid", "sqrt", "sub", "tanh", "where",
    "dot", "einsum", "matmul", "outer",
    "argmax", "argmin", "log_softmax", "logsumexp", "max", "mean", "min", "softmax", "sum",
    "var",
    "broadcast_to", "clone", "concatenate", "expand_dims", "flatten", "getitem", "reshape",
    "squeeze", "stack", "swapaxes", "transpose",
]  # fmt: skip
