"""Neural networks: Module, Parameter, layers, losses (``cr.nn``; functional maths in ``F``).

``from chainrule.nn import functional as F`` gives the stateless functions; ``cr.nn.init``
the initialisers; ``cr.nn.utils`` gradient clipping; ``cr.nn.describe`` what the summary,
ONNX export and the lecture know of each layer class (where a layer of your own joins
them).
"""

from chainrule.nn import describe, functional, init, summary, utils
from chainrule.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from chainrule.nn.embedding import Embedding
from chainrule.nn.layers import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from chainrule.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    RMSELoss,
    SmoothL1Loss,
)
from chainrule.nn.module import (
    Buffer,
    IncompatibleKeys,
    Module,
    ModuleList,
    Parameter,
    StateDictError,
)
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from chainrule.nn.sequential import Sequential

__all__ = [
    "functional", "init", "describe", "summary",
    "Module", "Parameter", "Buffer", "Sequential", "ModuleList", "IncompatibleKeys",
    "StateDictError",
    "Linear", "Flatten", "Dropout", "Identity", "ReLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d",
    "MSELoss", "L1Loss", "RMSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss",
    "utils", "GELU", "SiLU", "LeakyReLU", "ELU", "Softplus", "LayerNorm", "Embedding",
    "NLLLoss", "HuberLoss", "SmoothL1Loss", "KLDivLoss", "BCELoss",
]  # fmt: skip
