"""``Module``: a layer or a model, which finds its parameters by walking its attributes.

There is no ``__setattr__`` interception: a Module's parameters, buffers and sub-modules
are whatever its attributes hold (directly, or inside a list, tuple or dict), found by
walking ``vars(self)`` in assignment order. A parameter or module reachable twice (a
shared weight) is reported once, under the first name it is found by.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from chainrule.mode import no_grad
from chainrule.tensor import Tensor, check_device, is_device_name
from chainrule.versions import bump

__all__ = [
    "Module", "Parameter", "Buffer", "ModuleList", "IncompatibleKeys",
    "StateDictError",
]  # fmt: skip


class Parameter(Tensor):
    """A Tensor that a Module trains: it requires grad, and ``parameters()`` yields it."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Buffer(Tensor):
    """A Tensor that belongs to a Module's state but is not trained (e.g. running means).

    Buffers are saved by ``state_dict`` and restored by ``load_state_dict``; they never
    require grad.
    """

    __slots__ = ()

    def __init__(self, data: Any) -> None:
        super().__init__(data, requires_grad=False)


_MEMBER_TYPES = (Parameter, Buffer)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError, ValueError):
    """A state dict that does not fit the model (a RuntimeError as in PyTorch, and a
    ValueError as chainrule's other input errors)."""


class Module:
    """Base class of layers and models.

    Subclasses set their parameters and sub-modules as attributes in ``__init__`` and
    define ``forward``; calling the module calls ``forward``::

        class MLP(cr.nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = cr.nn.Linear(2, 8)
                self.out = cr.nn.Linear(8, 1)

            def forward(self, x):
                return self.out(self.hidden(x).relu())
    """

    training: bool = True  # a class default, so a subclass that skips __init__ still works

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation (a subclass defines it); call the module, not this."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------- discovery
    def _members(self) -> Iterator[tuple[str, Any]]:
        """(name, value) of the Parameters, Buffers and Modules held by the attributes."""
        for name, value in vars(self).items():
            items: Iterator[tuple[str, Any]]
            if isinstance(value, (list, tuple)):
                items = ((f"{name}.{i}", item) for i, item in enumerate(value))
            elif isinstance(value, dict):
                items = ((f"{name}.{key}", item) for key, item in value.items())
            else:
                items = iter([(name, value)])
            for full_name, item in items:
                if isinstance(item, (*_MEMBER_TYPES, Module)):
                    yield full_name, item

    def _walk(self, prefix: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
        """Every member of this module and its descendants, depth first, each once."""
        for name, value in self._members():
            if id(value) in seen:
                continue
            seen.add(id(value))
            yield prefix + name, value
            if isinstance(value, Module):
                yield from value._walk(f"{prefix}{name}.", seen)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield (dotted name, Parameter) for this module and its descendants, each once."""
        for name, value in self._walk(prefix, {id(self)}):
            if isinstance(value, Parameter):
                yield name, value

    def parameters(self) -> Iterator[Parameter]:
        """Yield every Parameter once, in the order of ``named_parameters``."""
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Buffer]]:
        """Yield (dotted name, Buffer) for this module and its descendants, each once."""
        for name, value in self._walk(prefix, {id(self)}):
            if isinstance(value, Buffer):
                yield name, value

    def buffers(self) -> Iterator[Buffer]:
        """Yield every buffer (running statistics: state that is not trained), each once."""
        for _, buffer in self.named_buffers():
            yield buffer

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield (name, module) for the direct sub-modules, each once."""
        seen: set[int] = set()
        for name, value in self._members():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self) -> Iterator[Module]:
        """Yield the direct sub-modules, each once."""
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield (dotted name, module) for this module ("") and every descendant, once."""
        yield prefix, self
        for name, value in self._walk(f"{prefix}." if prefix else "", {id(self)}):
            if isinstance(value, Module):
                yield name, value

    def modules(self) -> Iterator[Module]:
        """Yield this module and every descendant, each once."""
        for _, module in self.named_modules():
            yield module

    # ----------------------------------------------------------------- state
    def _named_state(self) -> dict[str, Tensor]:
        return {
            name: value
            for name, value in self._walk("", {id(self)})
            if isinstance(value, _MEMBER_TYPES)
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """Dotted name -> a copy of each parameter's and buffer's array (shared ones once)."""
        return {name: tensor.data.copy() for name, tensor in self._named_state().items()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy arrays from ``state_dict`` into the parameters and buffers of the same name.

        Everything is checked before anything is written: on any error the model is left
        unchanged. Values are cast to each parameter's dtype.

        Args:
            state_dict: name -> ndarray (or Tensor), as made by ``state_dict()``.
            strict: if True, a key missing from ``state_dict`` or one the model does not
                have is an error. Shape mismatches are errors either way.

        Returns:
            The missing and unexpected keys (empty lists when strict).

        Raises:
            StateDictError (a RuntimeError and a ValueError): listing every missing key,
                unexpected key and shape or dtype mismatch at once.
        """
        own = self._named_state()
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        mismatched = []
        arrays = {}
        for name, tensor in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = np.asarray(value.data if isinstance(value, Tensor) else value)
            if array.dtype.kind not in "biuf":
                mismatched.append(f"{name}: dtype {array.dtype} is not a real number type")
            elif array.shape != tensor.shape:
                mismatched.append(
                    f"{name}: shape {array.shape} in the state dict, {tensor.shape} in the model"
                )
            else:
                arrays[name] = array
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(
                _mismatch_message(type(self).__name__, missing, unexpected, mismatched, strict)
            )
        for name, array in arrays.items():
            tensor = own[name]
            if tensor.data.flags.writeable:
                tensor.data[...] = array
                bump(tensor.data, "load_state_dict()")
            else:
                tensor.data = np.array(array, dtype=tensor.dtype)
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- modes and utilities
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``training = mode``) on this module and every descendant."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: Dropout is the identity, BatchNorm uses its running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: ``.grad = None``, or, with
        ``set_to_none=False``, zero the gradient arrays in place (PyTorch's keyword)."""
        for parameter in self.parameters():
            if set_to_none or parameter.grad is None:
                parameter.grad = None
            else:
                parameter.grad = parameter.grad.detach()  # as PyTorch: off any create_graph graph
                with no_grad():
                    parameter.grad.zero_()

    def requires_grad_(self, flag: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (False freezes the module)."""
        for parameter in self.parameters():
            parameter.requires_grad = flag
        return self

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on every descendant and on this module (e.g. custom init)."""
        for module in list(self.modules())[::-1]:
            fn(module)
        return self

    def astype(self, dtype: Any) -> Module:
        """Convert every floating-point parameter and buffer to ``dtype``, in place."""
        dtype = np.dtype(dtype)
        for tensor in self._named_state().values():
            if tensor.dtype.kind == "f":
                tensor.data = tensor.data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad = Tensor(tensor.grad.data.astype(dtype))
        return self

    def double(self) -> Module:
        """Parameters and buffers as float64 (for gradient checks)."""
        return self.astype(np.float64)

    def float(self) -> Module:
        """Parameters and buffers as float32 (the default)."""
        return self.astype(np.float32)

    def to(self, *args: Any, dtype: Any = None, device: Any = None) -> Module:
        """PyTorch's ``to``, in place: ``model.to(cr.float64)``, ``model.to("cpu")``.

        A dtype converts every floating-point parameter and buffer (``astype``); "cpu" is
        accepted and changes nothing; any other device raises ``ValueError`` (chainrule
        runs on the CPU only).
        """
        for arg in args:
            if isinstance(arg, str) and is_device_name(arg):
                check_device(arg)
            elif dtype is None:
                dtype = arg.dtype if isinstance(arg, Tensor) else arg
            else:
                raise TypeError(f"to() got two dtypes: {dtype!r} and {arg!r}")
        check_device(device)
        return self if dtype is None else self.astype(dtype)

    def cpu(self) -> Module:
        """Self: chainrule's parameters always live in the CPU's memory."""
        return self

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self.named_children():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        if extra:
            head += ","
        return head + "\n" + "\n".join(lines) + "\n)"


def _mismatch_message(
    model: str, missing: list[str], unexpected: list[str], mismatched: list[str], strict: bool
) -> str:
    lines = [f"load_state_dict: the state dict does not fit {model}:"]
    if strict and missing:
        lines.append("  missing keys (in the model, not in the state dict): " + ", ".join(missing))
    if strict and unexpected:
        lines.append(
            "  unexpected keys (in the state dict, not in the model): " + ", ".join(unexpected)
        )
    if mismatched:
        lines.append("  mismatches: " + "; ".join(mismatched))
    lines.append("Nothing was loaded: the model is unchanged.")
    return "\n".join(lines)


class ModuleList(Module):
    """A list of modules whose parameters are registered under "0", "1", ... (not callable).

    A plain list attribute registers its modules too (as "name.0", ...); ModuleList adds
    list methods and PyTorch's naming when it is itself the attribute.
    """

    def __init__(self, modules: Any = ()) -> None:
        super().__init__()
        self._modules = list(modules)
        for index, module in enumerate(self._modules):
            _check_module(module, index, type(self).__name__)

    def _members(self) -> Iterator[tuple[str, Any]]:
        for index, module in enumerate(self._modules):
            yield str(index), module

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        _check_module(module, len(self._modules), type(self).__name__)
        self._modules.append(module)
        return self

    def extend(self, modules: Any) -> ModuleList:
        """Add each of ``modules`` at the end; returns self."""
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            part = type(self).__new__(type(self))
            Module.__init__(part)
            part._modules = self._modules[index]
            return part
        return self._modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)


def _check_module(module: Any, index: int, owner: str) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: item {index} is a {type(module).__name__}, not a Module")
