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

Each layer's nodes are written by its description in ``chainrule.nn.describe`` (the table
above is what the built-in descriptions do): a layer of your own is exported once its
description defines ``to_onnx`` and is registered there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.mode import no_grad
from chainrule.nn.describe import describe, registered
from chainrule.nn.module import Module
from chainrule.nn.sequential import Sequential
from chainrule.tensor import Tensor

__all__ = [
    "export", "ExportError", "OnnxGraph", "supported_layers", "DEFAULT_OPSET", "MIN_OPSET",
]  # fmt: skip

#: the default ONNX opset: old enough for every current runtime, new enough for Softmax(axis)
DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax/LogSoftmax normalise along one axis only from opset 13 on

_ELEMENT_TYPES = {np.dtype(np.float16): 10, np.dtype(np.float32): 1, np.dtype(np.float64): 11}


def supported_layers() -> tuple[type, ...]:
    """The layer classes ``export`` writes (and their subclasses): those whose description
    in ``chainrule.nn.describe`` defines ``to_onnx``; nested ``Sequential``s are
    flattened."""
    return tuple(cls for cls, description in registered().items() if description.exportable)


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
        model: an ``nn.Sequential`` of the layers of ``supported_layers()`` (nested
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
        if not describe(layer).exportable:
            supported = ", ".join(t.__name__ for t in supported_layers())
            raise ExportError(
                f"onnx.export: layer {name} ({type(layer).__name__}) is not supported; "
                f"supported layers: {supported} (in an nn.Sequential)"
            )

    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        builder = OnnxGraph(helper, numpy_helper, x.dtype)
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
                try:
                    current = describe(layer).to_onnx(
                        layer, builder, current, name, before.shape, value.shape
                    )
                except ValueError as error:
                    raise ExportError(
                        f"onnx.export: layer {name} ({type(layer).__name__}) {error}"
                    ) from None
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


class OnnxGraph:
    """The ONNX graph ``export`` builds, one layer at a time: what a layer description's
    ``to_onnx`` writes into (see ``chainrule.nn.describe``).

    Attributes:
        nodes: the ``onnx.NodeProto``s so far, in order.
        initializers: the constant tensors (weights) so far.
        dtype: the float dtype of the exported model.
    """

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype) -> None:
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        """Add ``value`` as the initializer ``name`` (in the model's dtype unless ``dtype``
        says otherwise); returns ``name``."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        """Add the ONNX operator ``op`` reading ``inputs`` and writing ``output`` (a name
        that is also the node's, with the op appended); returns ``output``."""
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
