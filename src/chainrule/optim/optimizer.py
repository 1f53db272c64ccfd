"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and resumable state.

Subclasses implement ``step`` on plain ndarrays: they read ``p.grad.data`` and update
``p.data`` in place (no graph is recorded, and float32 parameters stay float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule.mode import enable_grad, no_grad
from chainrule.tensor import Tensor
from chainrule.tree import TreeDef, tree_flatten
from chainrule.versions import bump

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: holds ``param_groups`` and one state dict per parameter.

    Args:
        params: an iterable of tensors that require grad (``nn.Parameter`` or leaves made
            with ``requires_grad=True``), a pytree of them (e.g. a list of ``(W, b)``
            tuples, taken in ``tree_leaves`` order), or an iterable of dicts ``{"params": [...],
            **hyper_parameters}`` (parameter groups, as in PyTorch) whose entries override
            ``defaults``.
        defaults: the hyper-parameters of every group that does not set its own.

    Raises:
        TypeError: ``params`` is a single Tensor, or holds something that is not a Tensor.
        ValueError: the list is empty, a tensor does not require grad or is not a leaf, a
            tensor appears twice, or a hyper-parameter is out of range.
    """

    #: names of the per-parameter arrays a subclass keeps in ``state`` (checked on load).
    _buffer_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError(
                "params must be an iterable of tensors, got a single "
                f"{type(params).__name__}; pass [tensor] or model.parameters()"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        #: the structure params came in, when a pytree: ``step(grads=...)`` checks it
        self._treedef: TreeDef | None = None
        if isinstance(params, (tuple, list, dict)) and not _is_groups(params):
            items, treedef = tree_flatten(params)
            if any(isinstance(child.kind, type) for child in treedef.children):
                self._treedef = treedef  # nested: not just a flat list of tensors
        else:
            items = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        groups = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)
        #: one dict per parameter, in the order of ``param_groups``: step counts, buffers.
        self.state: list[dict[str, Any]] = [{} for _ in self._params()]
        self._scratch: dict[tuple[int, int], np.ndarray] = {}

    # ----------------------------------------------------------------- parameters
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group ``{"params": [...], **hyper_parameters}``; missing entries use defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        known = {id(p) for p in self._params()}
        for index, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer parameter {index} is a {type(p).__name__}, expected a Tensor "
                    "(an nn.Parameter or a tensor made with requires_grad=True)"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"optimizer parameter {index} (shape {p.shape}) does not require grad; "
                    "make it with requires_grad=True or pass only trainable parameters"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"optimizer parameter {index} (shape {p.shape}) is not a leaf tensor: it "
                    "was computed by an op, so updating it would not change the model"
                )
            if id(p) in known:
                raise ValueError(f"optimizer parameter {index} appears more than once")
            known.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._check_hyper(full)
        self.param_groups.append(full)
        if hasattr(self, "state"):
            self.state.extend({} for _ in params)

    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _check_hyper(self, group: dict[str, Any]) -> None:
        """Raise ValueError for hyper-parameters out of range (subclasses extend)."""
        _at_least(group, "lr", 0.0)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (or zero them in place)."""
        for p in self._params():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = p.grad.detach()  # as PyTorch: off any create_graph graph
                with no_grad():
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None, grads: Any = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        Args:
            closure: re-evaluates the model and returns the loss (called first, before
                ``grads`` are assigned).
            grads: gradients to use, e.g. what ``cr.grad(loss)(params)`` returns: a pytree
                whose leaves match the parameters one to one, in parameter order (a list of
                ``(dW, db)`` tuples for an optimizer built with ``tree_leaves`` of a list
                of ``(W, b)``, or a flat list). Each is assigned to its parameter's
                ``.grad`` before the update. For an optimizer built from a nested pytree,
                grads must have that structure (or be flat).

        Raises:
            ValueError: grads has another number of leaves or structure than the
                parameters (both are named), or a leaf's shape differs from its
                parameter's; nothing is assigned then.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if grads is not None:
            self._assign(grads)
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(index, p, _grad_of(p), group)
                    # an in-place write: a backward that still needs the old value raises
                    bump(p.data, f"{type(self).__name__}.step()")
                index += 1
        return loss

    def _assign(self, grads: Any) -> None:
        params = self._params()
        leaves, treedef = tree_flatten(grads)
        flat = all(child.kind is None for child in treedef.children)
        expected = self._treedef
        other = expected is not None and not flat and treedef != expected
        if len(leaves) != len(params) or other:
            built = expected if expected is not None else f"{len(params)} parameters"
            raise ValueError(
                f"step(grads=...): grads has structure {treedef} ({len(leaves)} leaves), "
                f"the optimizer's parameters are {built}"
            )
        values = []
        for index, (g, p) in enumerate(zip(leaves, params)):
            data = g.detach() if isinstance(g, Tensor) else Tensor(np.asarray(g))
            if data.shape != p.shape:
                raise ValueError(
                    f"step(grads=...): leaf {index} of grads has shape {data.shape}, "
                    f"parameter {index} has shape {p.shape}"
                )
            values.append(data)
        for p, value in zip(params, values):
            p.grad = value

    def _update(self, index: int, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def _buffer(self, index: int, like: np.ndarray, slot: int = 0) -> np.ndarray:
        """A reusable scratch array shaped like ``like``, so that steps do not allocate."""
        key = (index, slot)
        scratch = self._scratch.get(key)
        if scratch is None or scratch.shape != like.shape or scratch.dtype != like.dtype:
            scratch = np.empty_like(like)
            self._scratch[key] = scratch
        return scratch

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: plain ndarrays (copies), ints and floats.

        Returns:
            ``{"state": {index: {"step": int, buffer_name: ndarray, ...}},
            "param_groups": [{hyper-parameter: value, "params": [index, ...]}]}``, where
            ``index`` counts the parameters in group order. The arrays can be stored with
            ``cr.save`` and the rest as JSON (integer keys may come back as strings).
        """
        state = {}
        for index, entry in enumerate(self.state):
            if entry:
                state[index] = {
                    name: value.copy() if isinstance(value, np.ndarray) else value
                    for name, value in entry.items()
                }
        groups = []
        start = 0
        for group in self.param_groups:
            saved = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
            saved["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``: validated in full first, so a bad one changes nothing.

        Raises:
            ValueError: the groups or parameter counts differ, an index is out of range, a
                buffer is unknown or its shape differs from its parameter's.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("an optimizer state dict has exactly 'state' and 'param_groups'")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"state dict has {len(groups)} parameter groups, the optimizer has "
                f"{len(self.param_groups)}"
            )
        for number, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, dict):
                raise ValueError(f"parameter group {number} must be a dict, got {saved!r}")
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(
                    f"parameter group {number}: state dict has {len(saved.get('params', ()))} "
                    f"parameters, the optimizer has {len(group['params'])}"
                )
            self._check_hyper({**group, **saved})
        params = self._params()
        new_state: list[dict[str, Any]] = [{} for _ in params]
        for key, entry in state_dict["state"].items():
            index = int(key)
            if not 0 <= index < len(params):
                raise ValueError(f"state dict has state for parameter {index}, out of range")
            new_state[index] = self._checked_entry(index, params[index], entry)
        for saved, group in zip(groups, self.param_groups):
            for name, value in saved.items():
                if name != "params":
                    group[name] = tuple(value) if isinstance(value, list) else value
        self.state = new_state

    def _checked_entry(self, index: int, p: Tensor, entry: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError(f"state of parameter {index} must be a dict, got {type(entry)}")
        checked: dict[str, Any] = {}
        for name, value in entry.items():
            if name == "step":
                checked[name] = int(value)
                continue
            if name not in self._buffer_names:
                raise ValueError(
                    f"state of parameter {index} has an unknown entry {name!r}; "
                    f"{type(self).__name__} keeps {list(self._buffer_names)}"
                )
            array = np.asarray(value)
            if array.shape != p.shape:
                raise ValueError(
                    f"state {name!r} of parameter {index} has shape {array.shape}, "
                    f"the parameter has shape {p.shape}"
                )
            checked[name] = array.astype(p.dtype, copy=True)
        return checked

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for number, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {number}")
            for name, value in sorted(group.items()):
                if name != "params":
                    lines.append(f"    {name}: {value}")
        return "\n".join(lines + [")"])


def _is_groups(params: Any) -> bool:
    """True for PyTorch's parameter groups: a sequence of dicts with a 'params' entry."""
    return (
        isinstance(params, (list, tuple))
        and bool(params)
        and isinstance(params[0], dict)
        and "params" in params[0]
    )


def _grad_of(p: Tensor) -> np.ndarray:
    grad = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
    if grad.shape != p.data.shape:
        raise ValueError(f"gradient of shape {grad.shape} for a parameter of shape {p.shape}")
    if grad.dtype != p.data.dtype:
        # a gradient set by hand in another dtype must not turn the state (momentum,
        # moments) into that dtype: the state follows the parameter, as it does on load
        grad = grad.astype(p.data.dtype)
    return grad


def _at_least(group: dict[str, Any], name: str, low: float) -> None:
    """Check ``low <= group[name] < inf`` (NaN fails too) and store it as a Python float."""
    value = group[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= low:
        raise ValueError(f"invalid {name}: {value} (must be >= {low})")
    if value == math.inf:
        # PyTorch accepts it; one step would turn every weight into inf or NaN
        raise ValueError(f"invalid {name}: {value} (must be finite)")
    # Python floats keep float32 arithmetic float32 (a NumPy float64 scalar would promote).
    group[name] = float(value)
