"""Neural networks: Module, Parameter, layers, losses (``cr.nn``; functional maths in ``F``).

``from chainrule.nn import functional as F`` gives the stateless functions; ``cr.nn.init``
the initialisers; ``cr.nn.describe`` what the summary, ONNX export and the lecture know of
each layer class (where a layer of your own joins them).
"""

from chainrule.nn import describe, functional, init, summary
from chainrule.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from chainrule.nn.layers import (
    Dropout,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from chainrule.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, RMSELoss
from chainrule.nn.module import (
    Buffer,
    IncompatibleKeys,
    Module,
    ModuleList,
    Parameter,
    StateDictError,
)
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d
from chainrule.nn.sequential import Sequential

__all__ = [
    "functional", "init", "describe", "summary",
    "Module", "Parameter", "Buffer", "Sequential", "ModuleList", "IncompatibleKeys",
    "StateDictError",
    "Linear", "Flatten", "Dropout", "Identity", "ReLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d",
    "MSELoss", "L1Loss", "RMSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss",
]  # fmt: skip
