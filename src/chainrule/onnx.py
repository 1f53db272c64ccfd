"""ONNX export of ``nn.Sequential`` networks: ŷ = a[L] as an ONNX graph, runnable anywhere.

Each layer becomes the ONNX operator that computes the same thing, with its parameters as
initializers named as in ``state_dict()``:

| chainrule                        | ONNX                                                     |
|----------------------------------|----------------------------------------------------------|
| ``Linear`` (f = Wᵀa + b)         | ``Gemm`` with W as stored, (in, out): ``transB=0``       |
| ``Conv2d``                       | ``Conv`` (strides, symmetric pads)                       |
| ``MaxPool2d``, ``AvgPool2d``     | ``MaxPool``, ``AveragePool`` (floor mode, no padding)    |
| ``BatchNorm1d``, ``BatchNorm2d`` | ``BatchNormalization``, running statistics (eval mode)   |
| ``Flatten``                      | ``Flatten`` (``Reshape`` for other axes)                 |
| ``ReLU``, ``Sigmoid``, ``Tanh``  | ``Relu``, ``Sigmoid``, ``Tanh``                          |
| ``Softmax``, ``LogSoftmax``      | ``Softmax``, ``LogSoftmax`` (same ``axis``)              |
| ``Dropout``, ``Identity``        | nothing: the identity at inference                       |

A ``Linear`` on inputs of rank > 2 becomes ``MatMul`` + ``Add``. The first axis of the input
and output is dynamic (``"batch"``), so the exported model takes any batch size. The
``onnx`` package is needed only here (``pip install 'chainrule[onnx]'``, which also brings
``onnxruntime`` to run the result).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.mode import no_grad
from chainrule.nn.conv import AvgPool2d, Conv2d, MaxPool2d, _pair
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
from chainrule.nn.module import Module, Sequential
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d
from chainrule.tensor import Tensor

__all__ = ["export", "ExportError", "SUPPORTED_LAYERS", "DEFAULT_OPSET", "MIN_OPSET"]

#: the default ONNX opset: old enough for every current runtime, new enough for Softmax(axis)
DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax/LogSoftmax normalise along one axis only from opset 13 on

_ACTIVATIONS: dict[type, str] = {
    ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Softmax: "Softmax", LogSoftmax: "LogSoftmax",
}  # fmt: skip
_POOLS: dict[type, str] = {MaxPool2d: "MaxPool", AvgPool2d: "AveragePool"}
_ELEMENT_TYPES = {np.dtype(np.float16): 10, np.dtype(np.float32): 1, np.dtype(np.float64): 11}

#: the layer types ``export`` knows (nested ``Sequential``s are flattened)
SUPPORTED_LAYERS: tuple[type, ...] = (
    Linear, Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Flatten,
    ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Dropout, Identity,
)  # fmt: skip


class ExportError(ValueError):
    """The model cannot be written as ONNX (an unsupported layer, a bad input or opset)."""


def export(
    model: Module,
    example_input: Any,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    input_name: str = "input",
    output_name: str = "output",
) -> Any:
    """Write ŷ = model(x) as an ONNX model with a dynamic batch axis.

    The model is exported as it computes in ``eval()`` (Dropout off, BatchNorm on its
    running statistics); its training flags are restored afterwards. The example input
    fixes every axis but the first, and is run through the model once to check it.

    Args:
        model: an ``nn.Sequential`` of the layers in ``SUPPORTED_LAYERS`` (nested
            ``Sequential``s are fine), or one such layer.
        example_input: a batch (N, ...) as a Tensor or ndarray; its dtype (float32 unless
            it is a float64/float16 array) is the exported model's.
        path: the ``.onnx`` file to write.
        opset: the ONNX opset version, at least 13.
        input_name: the graph input's name.
        output_name: the graph output's name.

    Returns:
        The ``onnx.ModelProto`` that was written (already validated by ``onnx.checker``).

    Raises:
        ExportError: naming the layer (its index in the model and its type) that ONNX
            export does not support, or describing a bad example input or opset.
        ImportError: when the ``onnx`` package is not installed.
    """
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as error:
        raise ImportError(
            "chainrule.onnx.export needs the onnx package: pip install 'chainrule[onnx]'"
        ) from error

    if not isinstance(opset, int) or opset < MIN_OPSET:
        raise ExportError(f"onnx.export: opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    if not isinstance(model, Module):
        raise ExportError(f"onnx.export: model must be an nn.Module, got {type(model).__name__}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(example_input)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ExportError(
            f"onnx.export: example_input must be a batch (N, ...) with N >= 1, got shape {x.shape}"
        )
    if x.dtype not in _ELEMENT_TYPES:
        raise ExportError(
            f"onnx.export: example_input must be float16, float32 or float64, got {x.dtype}"
        )
    layers = list(_layers(model, ""))
    for name, layer in layers:
        if not isinstance(layer, SUPPORTED_LAYERS):
            supported = ", ".join(t.__name__ for t in SUPPORTED_LAYERS)
            raise ExportError(
                f"onnx.export: layer {name} ({type(layer).__name__}) is not supported; "
                f"supported layers: {supported} (in an nn.Sequential)"
            )

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        builder = _GraphBuilder(helper, numpy_helper, x.dtype)
        current, value = input_name, x
        with no_grad():
            for name, layer in layers:
                before = value
                try:
                    value = layer(value)
                except (ValueError, TypeError) as error:
                    raise ExportError(
                        f"onnx.export: layer {name} ({type(layer).__name__}) fails on the "
                        f"example input's batch of shape {before.shape}: {error}"
                    ) from error
                current = builder.layer(name, layer, current, before.shape, value.shape)
    finally:
        for module, training in modes:
            module.training = training

    builder.rename_output(current, input_name, output_name)
    element = _ELEMENT_TYPES[x.dtype]
    graph = helper.make_graph(
        builder.nodes,
        "chainrule",
        [helper.make_tensor_value_info(input_name, element, ["batch", *x.shape[1:]])],
        [helper.make_tensor_value_info(output_name, element, ["batch", *value.shape[1:]])],
        initializer=builder.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(graph, opset_imports=opsets, producer_name="chainrule")
    # the oldest IR version that carries this opset: runtimes older than the onnx package
    # that wrote the file can still load it
    onnx_model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx_model.doc_string = f"Exported by chainrule from:\n{model!r}"
    onnx.checker.check_model(onnx_model, full_check=True)
    onnx.save(onnx_model, os.fspath(path))
    return onnx_model


def _layers(module: Module, prefix: str) -> Iterator[tuple[str, Module]]:
    """(dotted index, layer) of a Sequential's layers in order, nested Sequentials flattened."""
    if not isinstance(module, Sequential):
        yield prefix or type(module).__name__, module
        return
    for index, child in enumerate(module):
        yield from _layers(child, f"{prefix}.{index}" if prefix else str(index))


class _GraphBuilder:
    """Collects the ONNX nodes and initializers, one layer at a time."""

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype) -> None:
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(
            self.helper.make_node(op, inputs, [output], name=f"{output}.{op}", **attributes)
        )
        return output

    def rename_output(self, current: str, input_name: str, output_name: str) -> None:
        """Make the last node write ``output_name`` (an Identity if no node was emitted)."""
        if current == input_name or not self.nodes:
            self.node("Identity", [current], output_name)
            return
        last = self.nodes[-1]
        last.output[0] = output_name

    def layer(self, name: str, layer: Module, x: str, in_shape: tuple, out_shape: tuple) -> str:
        """Emit the nodes of one layer reading tensor ``x``; return the name of its output."""
        if isinstance(layer, (Dropout, Identity)):
            return x
        if isinstance(layer, Linear):
            return self._linear(name, layer, x, len(in_shape))
        if isinstance(layer, Conv2d):
            ph, pw = layer.padding
            inputs = [x, self.constant(f"{name}.weight", layer.weight.data)]
            if layer.bias is not None:
                inputs.append(self.constant(f"{name}.bias", layer.bias.data))
            return self.node(
                "Conv", inputs, name, kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride), pads=[ph, pw, ph, pw],
            )  # fmt: skip
        if isinstance(layer, (MaxPool2d, AvgPool2d)):
            kernel = _pair(layer.kernel_size, "kernel_size", 1)
            stride = _pair(layer.stride, "stride", 1)
            return self.node(
                _POOLS[type(layer)], [x], name, kernel_shape=list(kernel), strides=list(stride)
            )
        if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            return self._batch_norm(name, layer, x)
        if isinstance(layer, Flatten):
            return self._flatten(name, layer, x, in_shape, out_shape)
        op = _ACTIVATIONS[type(layer)]
        if isinstance(layer, (Softmax, LogSoftmax)):
            return self.node(op, [x], name, axis=layer.axis)
        return self.node(op, [x], name)

    def _linear(self, name: str, layer: Linear, x: str, rank: int) -> str:
        weight = self.constant(f"{name}.weight", layer.weight.data)
        bias = None if layer.bias is None else self.constant(f"{name}.bias", layer.bias.data)
        if rank == 2:  # f = Wᵀa + b on rows is x @ W + b: Gemm with W as stored, (in, out)
            inputs = [x, weight] if bias is None else [x, weight, bias]
            return self.node("Gemm", inputs, name, transB=0)
        product = self.node("MatMul", [x, weight], name if bias is None else f"{name}.matmul")
        return product if bias is None else self.node("Add", [product, bias], name)

    def _batch_norm(self, name: str, layer: BatchNorm1d | BatchNorm2d, x: str) -> str:
        channels = layer.num_features
        scale = layer.weight.data if layer.weight is not None else np.ones(channels)
        shift = layer.bias.data if layer.bias is not None else np.zeros(channels)
        inputs = [
            x,
            self.constant(f"{name}.weight", scale),
            self.constant(f"{name}.bias", shift),
            self.constant(f"{name}.running_mean", layer.running_mean.data),
            self.constant(f"{name}.running_var", layer.running_var.data),
        ]
        return self.node("BatchNormalization", inputs, name, epsilon=layer.eps)

    def _flatten(
        self, name: str, layer: Flatten, x: str, in_shape: tuple, out_shape: tuple
    ) -> str:
        start = layer.start_axis % max(len(in_shape), 1)
        end = layer.end_axis % max(len(in_shape), 1)
        if start == 0:
            raise ExportError(
                f"onnx.export: layer {name} (Flatten) merges the batch axis (start_axis "
                f"{layer.start_axis}), which the exported model keeps dynamic"
            )
        if start == 1 and end == len(in_shape) - 1:  # (N, ...) -> (N, rest): ONNX's Flatten
            return self.node("Flatten", [x], name, axis=1)
        # other axes: Reshape, where 0 copies an input axis (the dynamic batch among them)
        # and -1 takes the merged axis; every axis after it is fixed by the example
        target = [0] * start + [-1] + list(out_shape[start + 1 :])
        shape = self.constant(f"{name}.shape", target, dtype=np.int64)
        return self.node("Reshape", [x, shape], name)
