"""Pytrees: nested tuples, lists, dicts (and None) of arrays, with JAX's semantics.

A pytree is either a container (tuple, namedtuple, list, dict, or None) whose children are
pytrees, or a leaf: anything else (a Tensor, an ndarray, a number). ``tree_flatten`` lists
the leaves left to right (a dict's entries in sorted key order, as JAX orders them; None
is an empty subtree, with no leaves) and returns a ``TreeDef`` describing the containers;
``tree_unflatten`` rebuilds the tree from a treedef and new leaves. The transforms of
``chainrule.functional`` differentiate with respect to every leaf of a pytree argument
and give gradients back in the same structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["TreeDef", "tree_flatten", "tree_unflatten", "tree_leaves", "tree_map"]


class TreeDef:
    """The structure of a pytree with its leaves left out; ``==`` compares structures.

    ``kind`` is None for a leaf, else the container's type (tuple, a namedtuple class,
    list, dict, or ``type(None)``); ``keys`` holds a dict's sorted keys; ``children`` the
    children's treedefs; ``num_leaves`` counts the leaves below.
    """

    __slots__ = ("kind", "keys", "children", "num_leaves")

    def __init__(
        self, kind: type | None, keys: tuple = (), children: tuple[TreeDef, ...] = ()
    ) -> None:
        self.kind = kind
        self.keys = keys
        self.children = children
        self.num_leaves: int = 1 if kind is None else sum(c.num_leaves for c in children)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeDef):
            return NotImplemented
        return (
            self.kind is other.kind and self.keys == other.keys and self.children == other.children
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.keys, self.children))

    def __repr__(self) -> str:
        return f"PyTreeDef({self._text()})"

    def _text(self) -> str:
        parts = [c._text() for c in self.children]
        if self.kind is None:
            return "*"
        if self.kind is type(None):
            return "None"
        if self.kind is list:
            return "[" + ", ".join(parts) + "]"
        if self.kind is dict:
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(self.keys, parts)) + "}"
        if self.kind is tuple:
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        fields = getattr(self.kind, "_fields", ())
        return (
            f"{self.kind.__name__}("
            + ", ".join(f"{name}={p}" for name, p in zip(fields, parts))
            + ")"
        )


LEAF = TreeDef(None)
_NONE = TreeDef(type(None))


def _is_namedtuple(kind: type) -> bool:
    return issubclass(kind, tuple) and hasattr(kind, "_fields")


def _flatten_into(tree: Any, leaves: list[Any]) -> TreeDef:
    kind = type(tree)
    if kind is tuple or kind is list or _is_namedtuple(kind):
        return TreeDef(kind, (), tuple(_flatten_into(child, leaves) for child in tree))
    if kind is dict:
        try:
            keys = tuple(sorted(tree))
        except TypeError as error:
            raise TypeError(
                f"a pytree dict's keys must be sortable (JAX's order), got {list(tree)}"
            ) from error
        return TreeDef(dict, keys, tuple(_flatten_into(tree[k], leaves) for k in keys))
    if tree is None:
        return _NONE
    leaves.append(tree)
    return LEAF


def tree_flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """tree ↦ (leaves left to right, treedef); ``tree_unflatten`` is its inverse.

    Args:
        tree: a pytree: tuples, namedtuples, lists, dicts (entries in sorted key order)
            and None (no leaves) nested to any depth; anything else is a leaf.

    Returns:
        ``(leaves, treedef)``: a list of the leaves and the structure without them.
    """
    leaves: list[Any] = []
    treedef = _flatten_into(tree, leaves)
    return leaves, treedef


def tree_unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> Any:
    """(treedef, leaves) ↦ the pytree with that structure holding those leaves, in order.

    Raises:
        ValueError: the number of leaves differs from ``treedef.num_leaves``.
    """
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: {treedef} has {treedef.num_leaves} leaves, got {len(leaves)}"
        )
    return _build(treedef, iter(leaves))


def _build(treedef: TreeDef, leaves: Any) -> Any:
    kind = treedef.kind
    if kind is None:
        return next(leaves)
    if kind is type(None):
        return None
    children = [_build(child, leaves) for child in treedef.children]
    if kind is dict:
        return dict(zip(treedef.keys, children))
    if kind is list or kind is tuple:
        return kind(children)
    return kind(*children)  # a namedtuple


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of a pytree, left to right (``tree_flatten(tree)[0]``)."""
    return tree_flatten(tree)[0]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """The pytree ``f(leaf, *others)`` for each leaf of ``tree`` and the matching leaves of
    ``rest``, which must have the same structure as ``tree``.

    Raises:
        ValueError: a tree of ``rest`` has another structure (both are named).
    """
    leaves, treedef = tree_flatten(tree)
    others = []
    for number, other in enumerate(rest, start=1):
        other_leaves, other_def = tree_flatten(other)
        if other_def != treedef:
            raise ValueError(
                f"tree_map: tree {number} of rest has structure {other_def}, "
                f"the first tree has {treedef}"
            )
        others.append(other_leaves)
    return tree_unflatten(treedef, [f(*args) for args in zip(leaves, *others)])
