"""chainrule: backpropagation and automatic differentiation over NumPy.

``import chainrule as cr``. The core (tensors, Functions, the backward engine, the ops and
gradient checking) is re-exported here; ``cr.nn``, ``cr.optim``, ``cr.data``,
``cr.models``, ``cr.training`` and the rest are subpackages.
"""

from chainrule import wiring  # noqa: F401, I001 (first: connects Tensor to the ops, the engine)
from chainrule import (
    allocator,
    data,
    distributed,
    lecture,
    metrics,
    models,
    nn,
    onnx,
    ops,
    optim,
    training,
    viz,
)
from chainrule.checkpoint import CheckpointError, load, load_metadata, save
from chainrule.creation import (
    arange,
    default_generator,
    eye,
    from_dlpack,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from chainrule.function import Context, Function
from chainrule.functional import grad, hessian, jacobian, jvp, value_and_grad, vjp
from chainrule.gradcheck import GradcheckError, gradcheck, gradgradcheck
from chainrule.mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from chainrule.ops import (
    abs,
    add,
    argmax,
    argmin,
    astype,
    broadcast_to,
    clip,
    clone,
    concatenate,
    div,
    dot,
    einsum,
    exp,
    expand_dims,
    flatten,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    outer,
    power,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    swapaxes,
    tanh,
    transpose,
    var,
    where,
)
from chainrule.ops.normal import normal_cdf
from chainrule.tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "Context",
    "ops", "nn", "optim", "data", "metrics", "models", "training", "lecture", "viz",
    "distributed", "onnx", "allocator",
    "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "arange", "eye",
    "zeros_like",
    "ones_like", "manual_seed", "default_generator", "randn", "rand",
    "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "gradcheck", "gradgradcheck", "GradcheckError",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian",
    "save", "load", "load_metadata", "CheckpointError",
    "abs", "add", "argmax", "argmin", "astype", "broadcast_to", "clip", "clone", "concatenate",
    "div",
    "dot", "einsum", "exp", "expand_dims", "flatten", "log", "log_softmax", "logsumexp",
    "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg", "outer", "power",
    "relu", "reshape", "sigmoid", "softmax", "sqrt", "squeeze", "stack", "sub", "sum",
    "swapaxes", "tanh", "transpose", "var", "where",
    "normal_cdf",
]  # fmt: skip
