"""Pictures: the computation graph as Graphviz, and a model summary table with shape checks.

``to_dot(tensor)`` walks ``tensor.grad_fn`` back to the leaves and writes Graphviz DOT text
(one box per op with its output shape, one node per leaf that requires grad); ``render``
turns it into SVG/PNG/PDF with the optional ``graphviz`` package and the ``dot`` program
(writing ``.dot`` text needs neither). ``summary(model, input_shape)`` is the table users
know from Keras and torchinfo; ``check(model, input_shape)`` finds a width mismatch in a
Sequential before anything is computed, and says so in the lecture's words (both live in
``chainrule.nn.summary``, re-exported here).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from chainrule.nn.describe import _shape
from chainrule.nn.summary import Summary, check, summary
from chainrule.tensor import Tensor

__all__ = [
    "to_dot", "render", "require_graphviz", "GraphvizMissing", "INSTALL_HINT", "TEXT_FORMATS",
    "summary", "Summary", "check",
]  # fmt: skip

#: formats ``render`` writes as DOT text, with nothing installed
TEXT_FORMATS = ("dot", "gv")

INSTALL_HINT = (
    "pip install graphviz (the Python package; or pip install 'chainrule[graphviz]') and "
    "apt-get install graphviz (the dot program; brew install graphviz on macOS)"
)


class GraphvizMissing(RuntimeError):
    """Rendering a picture needs the graphviz package and the dot program."""


# ---------------------------------------------------------------------------- graphs
def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(
    tensor: Tensor,
    names: dict[str, Tensor] | None = None,
    *,
    data: Collection[Tensor] = (),
    shape_text: Callable[[tuple[int, ...]], str] | None = None,
) -> str:
    """The graph that computed ``tensor``, as Graphviz DOT text.

    Ops are boxes labelled with the op and its output shape; leaves that require grad are
    filled ellipses marked "requires grad"; the output is a double octagon. Edges point
    the way the forward pass ran, labelled with the shape that flows along them.

    Args:
        tensor: any Tensor (a leaf gives a one-node graph).
        names: optional labels, e.g. ``dict(model.named_parameters())`` or
            ``{"W[1]": w1, "f[1]": f1}``; a computed tensor's name goes on its op's box.
        data: leaves that are the data (x, y) rather than parameters: drawn in another
            colour and marked "data". (Only leaves that require grad are part of the
            graph, so a picture that shows x and y records them that way.)
        shape_text: how to write a shape; default Python's ``(3, 1)``, e.g.
            ``chainrule.lecture.dims`` for the slides' ``3×1``.

    Returns:
        The DOT source (``render`` draws it; ``Path("g.dot").write_text(...)`` keeps it).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot needs a Tensor, got {type(tensor).__name__}")
    write_shape = shape_text or _shape
    data_ids = {id(t) for t in data}
    labels: dict[int, str] = {}
    for given, value in (names or {}).items():
        if isinstance(value, Tensor):
            key = id(value.grad_fn if value.grad_fn is not None else value)
            labels[key] = f"{labels[key]}, {given}" if key in labels else given
    root = tensor.grad_fn if tensor.grad_fn is not None else tensor
    ids: dict[int, str] = {}
    order: list[Any] = []
    out_shapes: dict[int, tuple[int, ...]] = {id(root): tensor.shape}
    edges: list[tuple[int, int, str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in ids:
            continue
        ids[id(node)] = f"n{len(ids)}"
        order.append(node)
        if isinstance(node, Tensor):
            continue
        for parent, meta in zip(node.parents, node.input_meta):
            if parent is None:
                continue  # a constant input: not part of the differentiable graph
            out_shapes.setdefault(id(parent), meta[0])
            edges.append((id(parent), id(node), write_shape(tuple(meta[0]))))
            stack.append(parent)
    lines = [
        "digraph chainrule {",
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in order:
        key = id(node)
        shape = write_shape(tuple(out_shapes.get(key, ())))
        name = labels.get(key)
        if isinstance(node, Tensor) and key in data_ids:
            label = f"{name or 'input'}\n{shape}\ndata"
            style = 'shape=ellipse, style=filled, fillcolor="#d9f2d9"'
        elif isinstance(node, Tensor):
            title = name or "leaf"
            marks = "requires grad" if node.requires_grad else "constant"
            label = f"{title}\n{shape}\n{marks}"
            style = 'shape=ellipse, style=filled, fillcolor="#cfe8ff"'
        else:
            label = f"{node.name}\n{shape}" if name is None else f"{name} = {node.name}\n{shape}"
            style = 'shape=box, style="rounded,filled", fillcolor="#f2f2f2"'
        if node is root:
            style = 'shape=doubleoctagon, style=filled, fillcolor="#ffe3b3"'
            label = ("output: " if name is None else "") + label
        lines.append(f"  {ids[key]} [label={_quote(label)}, {style}];")
    for source, target, shape in reversed(edges):
        lines.append(f"  {ids[source]} -> {ids[target]} [label={_quote(shape)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def require_graphviz(path: str | Path) -> None:
    """Check, without drawing, that ``render`` can write ``path``.

    Raises:
        GraphvizMissing: the suffix is a picture format and the ``graphviz`` package or
            the ``dot`` program is missing; the message says how to install them.
    """
    path = Path(path)
    if path.suffix.lstrip(".").lower() in TEXT_FORMATS:
        return
    try:
        import graphviz  # noqa: F401
    except ImportError:
        raise GraphvizMissing(
            f"drawing {path.name} needs Graphviz: {INSTALL_HINT}. Without them, write the "
            "DOT text to a .dot file instead"
        ) from None
    if shutil.which("dot") is None:
        raise GraphvizMissing(
            f"drawing {path.name} needs Graphviz's dot program: {INSTALL_HINT}. Without it, "
            "write the DOT text to a .dot file instead"
        )


def render(
    graph: Tensor | str,
    path: str | Path,
    names: dict[str, Tensor] | None = None,
    *,
    data: Collection[Tensor] = (),
    shape_text: Callable[[tuple[int, ...]], str] | None = None,
) -> Path:
    """Write the graph of a tensor (or DOT text) to ``path``; the suffix picks the format.

    ``.dot``/``.gv`` write the DOT text and need nothing installed; ``.svg``, ``.png``,
    ``.pdf`` (any format of the ``dot`` program) need the ``graphviz`` Python package and
    Graphviz's ``dot`` program. ``names``, ``data`` and ``shape_text`` are ``to_dot``'s.

    Raises:
        GraphvizMissing: when either is missing, saying how to install them.
        ValueError: for a path without a suffix.
    """
    path = Path(path)
    if isinstance(graph, str):
        source = graph
    else:
        source = to_dot(graph, names, data=data, shape_text=shape_text)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(f"{path}: give a file name ending in .svg, .png, .pdf or .dot")
    if fmt in TEXT_FORMATS:
        path.write_text(source, encoding="utf-8")
        return path
    require_graphviz(path)
    import graphviz

    try:
        image = graphviz.Source(source).pipe(format=fmt)
    except ValueError:
        raise ValueError(
            f"{path.name}: Graphviz knows no format {fmt!r}; use .svg, .png, .pdf or .dot"
        ) from None
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(
            f"drawing {path.name} needs Graphviz's dot program: {INSTALL_HINT}"
        ) from None
    except graphviz.CalledProcessError as error:
        raise ValueError(f"dot could not draw {path.name} as {fmt!r}: {error}") from None
    path.write_bytes(image)
    return path
