"""What chainrule's tools know of each layer: one registry of descriptions, keyed by class.

Three tools work on models made of layers they did not write: ``viz.summary`` and
``viz.check`` follow shapes through a Sequential and name each layer in the lecture's
notation, ``onnx.export`` writes the ONNX nodes that compute each layer, and
``lecture.Network.from_sequential`` reads a Sequential as the lecture's network (weights
W[l], activations g[l]). What each needs of a layer is a ``LayerDescription``, and every
layer class has at most one, registered here::

    describe(module)              the description of the module's class (or base class)
    register(cls, description)    add a class: built-in layers below, yours the same way

A registry rather than methods on the layers: the layer classes stay about their maths
(parameters, ``forward``), what the tools know of every layer is one table to read, and
a layer written anywhere, even one whose class cannot be changed, joins with one call.
Lookup follows the class's MRO, so a subclass is described as its nearest registered
base; a module with no description gets the default one, which finds its output shape
by running it on one example and is neither exported nor part of a lecture network.

A user's layer, exported to ONNX and shown in summaries::

    class Swish(nn.Module):
        def forward(self, x):
            return x * x.sigmoid()

    class SwishDescription(nn.describe.LayerDescription):
        def to_onnx(self, module, graph, x, name, in_shape, out_shape):
            gate = graph.node("Sigmoid", [x], f"{name}.sigmoid")
            return graph.node("Mul", [x, gate], name)

    nn.describe.register(Swish, SwishDescription())
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.mode import no_grad
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
from chainrule.nn.module import Module
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from chainrule.notation import width_error
from chainrule.tensor import Tensor

__all__ = ["LayerDescription", "describe", "register", "registered"]

Shape = tuple[Any, ...]


class LayerDescription:
    """What the summary, ONNX export and the lecture know of one kind of layer.

    The defaults describe a layer the tools know nothing about; subclass and override
    what applies to yours, then ``register`` it.

    Attributes:
        weighted: the layer is one of the lecture's layers l, with a weight W[l] (Linear,
            Conv2d): the summary counts it.
        lecture_role: its place in a ``lecture.Network``: "linear" (f = Wᵀa + b, from the
            module's ``weight`` and ``bias``), "activation" (a = g(f), g named by
            ``activation``), "skip" (the identity), or None (not part of one).
        activation: g's name in the lecture ("relu", "sigmoid", "tanh") for the role
            "activation".
    """

    weighted: bool = False
    lecture_role: str | None = None
    activation: str | None = None

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        """The shape of the layer's output for an input of ``shape`` (the batch as "m").

        The default runs the module, without a graph, on one example of zeros.

        Args:
            module: the layer.
            shape: the input's shape, e.g. ("m", 784).
            l: the weighted layers before this one (its input is the lecture's a[l]).

        Raises:
            ValueError: the input does not fit, in the lecture's words where possible.
        """
        with no_grad():
            out = module(Tensor(np.zeros((1,) + tuple(shape[1:]))))
        return (shape[0],) + tuple(out.shape[1:])

    def symbol(self, l: int) -> str:
        """The layer in the lecture's notation, for the summary ("" for none), given the
        weighted layers ``l`` before it: e.g. "f[2] = W[2]ᵀ a[1]"."""
        return ""

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        """Emit the ONNX nodes that compute the layer; return the name of their output.

        Args:
            module: the layer (in eval mode).
            graph: an ``onnx.OnnxGraph``: ``graph.node(op, inputs, output, **attributes)``
                adds a node and returns ``output``; ``graph.constant(name, array)`` adds an
                initializer and returns ``name``.
            x: the name of the layer's input in the graph.
            name: the layer's dotted index in the model ("3", "1.0"): use it (and
                ``f"{name}.weight"``, …) for the names of its nodes and initializers.
            in_shape: the example input's shape at this layer.
            out_shape: the example output's shape.

        Raises:
            NotImplementedError: the default: the layer cannot be exported.
            ValueError: this layer, as configured, cannot be exported (the message
                completes "layer NAME (TYPE) ...").
        """
        raise NotImplementedError(f"{type(module).__name__} has no ONNX export")

    @property
    def exportable(self) -> bool:
        """Whether ``to_onnx`` is defined (overridden) for this kind of layer."""
        return type(self).to_onnx is not LayerDescription.to_onnx


_REGISTRY: dict[type, LayerDescription] = {}
_DEFAULT = LayerDescription()


def register(cls: type, description: LayerDescription) -> None:
    """Describe the layer class ``cls`` (and its subclasses) by ``description``.

    Registering a class again replaces its description.

    Raises:
        TypeError: ``cls`` is not a class, or ``description`` not a ``LayerDescription``.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register: expected a layer class, got {cls!r}")
    if not isinstance(description, LayerDescription):
        raise TypeError(f"register: expected a LayerDescription, got {type(description).__name__}")
    _REGISTRY[cls] = description


def describe(module: Any) -> LayerDescription:
    """The description of ``module``'s class, or of its nearest registered base class; the
    default ``LayerDescription()`` when there is none."""
    klass = module if isinstance(module, type) else type(module)
    for base in klass.__mro__:
        found = _REGISTRY.get(base)
        if found is not None:
            return found
    return _DEFAULT


def registered() -> dict[type, LayerDescription]:
    """Every registered class and its description, in the order of registration."""
    return dict(_REGISTRY)


# ----------------------------------------------------------------------- helpers
def _shape(shape: Shape) -> str:
    """(m, 784) as text; a 1-tuple keeps its comma, as Python writes it: (2,)."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


# ----------------------------------------------------------------------- built-in layers
class _Linear(LayerDescription):
    """f = Wᵀa + b: a Gemm with W as stored, (in, out) (``MatMul`` + ``Add`` for rank > 2)."""

    weighted = True
    lecture_role = "linear"

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        n_in, n_out = module.weight.shape
        if len(shape) < 2 or shape[-1] != n_in:
            error = width_error(l + 1, n_in, shape[-1] if len(shape) > 1 else 0)
            if len(shape) > 2:  # Linear acts on the last axis; often a Flatten is missing
                error = ValueError(f"{error} (a[{l}] is {_shape(shape)}: add a Flatten?)")
            raise error
        return shape[:-1] + (n_out,)

    def symbol(self, l: int) -> str:
        return f"f[{l + 1}] = W[{l + 1}]ᵀ a[{l}]"

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        weight = graph.constant(f"{name}.weight", module.weight.data)
        bias = None if module.bias is None else graph.constant(f"{name}.bias", module.bias.data)
        if len(in_shape) == 2:  # f = Wᵀa + b on rows is x @ W + b: Gemm with W as stored
            inputs = [x, weight] if bias is None else [x, weight, bias]
            return graph.node("Gemm", inputs, name, transB=0)
        product = graph.node("MatMul", [x, weight], name if bias is None else f"{name}.matmul")
        return product if bias is None else graph.node("Add", [product, bias], name)


class _Conv2d(LayerDescription):
    """f = W * a + b, the slides' filter convolution: ONNX ``Conv``."""

    weighted = True

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        c_out, c_in, kh, kw = module.weight.shape
        if len(shape) != 4 or shape[1] != c_in:
            got = shape[1] if len(shape) == 4 else f"shape {_shape(shape)}"
            raise ValueError(
                f"layer {l + 1}: f[{l + 1}] = W[{l + 1}] * a[{l}] (convolution) needs a[{l}] "
                f"with {c_in} channels (m, {c_in}, H, W), got {got}"
            )
        sh, sw = _pair(getattr(module, "stride", 1))
        ph, pw = _pair(getattr(module, "padding", 0))
        h = (shape[2] + 2 * ph - kh) // sh + 1
        w = (shape[3] + 2 * pw - kw) // sw + 1
        if h <= 0 or w <= 0:
            raise ValueError(
                f"layer {l + 1}: a {kh}×{kw} filter does not fit a[{l}] of "
                f"{shape[2]}×{shape[3]} (padding {ph}, {pw})"
            )
        return (shape[0], c_out, h, w)

    def symbol(self, l: int) -> str:
        return f"f[{l + 1}] = W[{l + 1}] * a[{l}]"

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        ph, pw = module.padding
        inputs = [x, graph.constant(f"{name}.weight", module.weight.data)]
        if module.bias is not None:
            inputs.append(graph.constant(f"{name}.bias", module.bias.data))
        return graph.node(
            "Conv", inputs, name, kernel_shape=list(module.kernel_size),
            strides=list(module.stride), pads=[ph, pw, ph, pw],
        )  # fmt: skip


class _Pool2d(LayerDescription):
    """Max or mean over windows: ONNX ``MaxPool`` or ``AveragePool`` (floor, no padding)."""

    def __init__(self, op: str) -> None:
        self.op = op

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        kh, kw = _pair(module.kernel_size)
        stride = getattr(module, "stride", None)
        sh, sw = _pair(stride if stride is not None else module.kernel_size)
        if len(shape) != 4 or shape[2] < kh or shape[3] < kw:
            raise ValueError(
                f"pooling {kh}×{kw} needs a[{l}] of shape (m, C, H, W) with H ≥ {kh} and "
                f"W ≥ {kw}, got {_shape(shape)}"
            )
        return (shape[0], shape[1], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)

    def symbol(self, l: int) -> str:
        return f"pool a[{l}]"

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        kernel, stride = _pair(module.kernel_size), _pair(module.stride)
        return graph.node(self.op, [x], name, kernel_shape=list(kernel), strides=list(stride))


class _Flatten(LayerDescription):
    """Axes start..end merged into one: ONNX ``Flatten`` for (N, ...) → (N, rest), else
    ``Reshape``."""

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        rank = max(len(shape), 1)
        start, end = module.start_axis % rank, module.end_axis % rank
        if start == 0 or start > end:  # merges "m": count it as the batch, as before
            return (shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1)
        merged = math.prod(shape[start : end + 1])
        return shape[:start] + (merged,) + shape[end + 1 :]

    def symbol(self, l: int) -> str:
        return f"flatten a[{l}]"

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        start = module.start_axis % max(len(in_shape), 1)
        end = module.end_axis % max(len(in_shape), 1)
        if start == 0:
            raise ValueError(
                f"merges the batch axis (start_axis {module.start_axis}), which the "
                "exported model keeps dynamic"
            )
        if start == 1 and end == len(in_shape) - 1:  # (N, ...) -> (N, rest)
            return graph.node("Flatten", [x], name, axis=1)
        # other axes: Reshape, where 0 copies an input axis (the dynamic batch among them)
        # and -1 takes the merged axis; every axis after it is fixed by the example
        target = [0] * start + [-1] + list(out_shape[start + 1 :])
        shape = graph.constant(f"{name}.shape", target, dtype=np.int64)
        return graph.node("Reshape", [x, shape], name)


class _Elementwise(LayerDescription):
    """An activation or normalisation along an axis: the same shape out, one ONNX node.

    Args:
        op: the ONNX operator.
        lecture: g's name in the lecture (ReLU, Sigmoid, Tanh), or None.
        axis: pass the module's ``axis`` to the node (Softmax, LogSoftmax).
    """

    def __init__(self, op: str, lecture: str | None = None, axis: bool = False) -> None:
        self.op, self.activation, self.axis = op, lecture, axis
        self.lecture_role = None if lecture is None else "activation"

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        return shape

    def symbol(self, l: int) -> str:
        return "" if self.activation is None else f"a[{l}] = g[{l}](f[{l}])"

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        if self.axis:
            return graph.node(self.op, [x], name, axis=module.axis)
        return graph.node(self.op, [x], name)


class _Identity(LayerDescription):
    """The identity at inference (Identity; Dropout in eval mode): no ONNX node."""

    def __init__(self, lecture_role: str | None) -> None:
        self.lecture_role = lecture_role

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        return shape

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        return x


class _BatchNorm(LayerDescription):
    """Normalised by the running statistics at inference: ONNX ``BatchNormalization``."""

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        return shape

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        channels = module.num_features
        scale = module.weight.data if module.weight is not None else np.ones(channels)
        shift = module.bias.data if module.bias is not None else np.zeros(channels)
        inputs = [
            x,
            graph.constant(f"{name}.weight", scale),
            graph.constant(f"{name}.bias", shift),
            graph.constant(f"{name}.running_mean", module.running_mean.data),
            graph.constant(f"{name}.running_var", module.running_var.data),
        ]
        return graph.node("BatchNormalization", inputs, name, epsilon=module.eps)


class _SameShape(LayerDescription):
    """An elementwise layer with no ONNX export (GELU, Softplus): the same shape out."""

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        return shape


class _Scaled(_Elementwise):
    """An activation with one ONNX attribute from a module attribute (LeakyRelu's alpha =
    negative_slope, Elu's alpha)."""

    def __init__(self, op: str, attribute: str, source: str) -> None:
        super().__init__(op)
        self.attribute, self.source = attribute, source

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        value = float(getattr(module, self.source))
        return graph.node(self.op, [x], name, **{self.attribute: value})


class _SiLU(_Elementwise):
    """x·σ(x): ONNX ``Sigmoid`` then ``Mul``."""

    def __init__(self) -> None:
        super().__init__("Sigmoid")

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        gate = graph.node("Sigmoid", [x], f"{name}.sigmoid")
        return graph.node("Mul", [x, gate], name)


class _LayerNorm(LayerDescription):
    """Per-example normalisation over the trailing axes: ONNX ``LayerNormalization``
    (opset 17)."""

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        trailing = tuple(module.normalized_shape)
        if tuple(shape[len(shape) - len(trailing) :]) != trailing or len(shape) <= len(trailing):
            raise ValueError(
                f"layer {l + 1}: LayerNorm over {trailing} needs a[{l}] ending with "
                f"{_shape(trailing)}, got {_shape(shape)}"
            )
        return shape

    def to_onnx(
        self, module: Any, graph: Any, x: str, name: str, in_shape: Shape, out_shape: Shape
    ) -> str:
        shape = module.normalized_shape
        dtype = module.weight.dtype if module.weight is not None else np.float32
        scale = module.weight.data if module.weight is not None else np.ones(shape, dtype)
        inputs = [x, graph.constant(f"{name}.weight", scale)]
        if module.bias is not None:
            inputs.append(graph.constant(f"{name}.bias", module.bias.data))
        return graph.node("LayerNormalization", inputs, name, axis=-len(shape), epsilon=module.eps)


class _Embedding(LayerDescription):
    """A lookup of integer indices S → S + (embedding_dim,); no ONNX export."""

    def output_shape(self, module: Any, shape: Shape, l: int) -> Shape:
        return tuple(shape) + (module.embedding_dim,)


_BUILT_IN: list[tuple[type[Module], LayerDescription]] = [
    (Linear, _Linear()),
    (Conv2d, _Conv2d()),
    (MaxPool2d, _Pool2d("MaxPool")),
    (AvgPool2d, _Pool2d("AveragePool")),
    (BatchNorm1d, _BatchNorm()),
    (BatchNorm2d, _BatchNorm()),
    (Flatten, _Flatten()),
    (ReLU, _Elementwise("Relu", lecture="relu")),
    (Sigmoid, _Elementwise("Sigmoid", lecture="sigmoid")),
    (Tanh, _Elementwise("Tanh", lecture="tanh")),
    (Softmax, _Elementwise("Softmax", axis=True)),
    (LogSoftmax, _Elementwise("LogSoftmax", axis=True)),
    (GELU, _SameShape()),
    (Softplus, _SameShape()),
    (SiLU, _SiLU()),
    (LeakyReLU, _Scaled("LeakyRelu", "alpha", "negative_slope")),
    (ELU, _Scaled("Elu", "alpha", "alpha")),
    (LayerNorm, _LayerNorm()),
    (Embedding, _Embedding()),
    (Dropout, _Identity(lecture_role=None)),
    (Identity, _Identity(lecture_role="skip")),
]
for _cls, _description in _BUILT_IN:
    register(_cls, _description)
