"""``chainrule explain``: the lecture's forward and backward propagation, shown on a network.

    chainrule explain [--layers 4,3,2] [--activation sigmoid|tanh|relu]
                      [--loss mse|cross-entropy] [--seed 0] [--ascii] [--graph FILE]

For one random example x, prints the equations of the slides filled in with shapes
(``δ[1] (3×1) = g′(f[1]) (3×1) ∘ W[2] (3×2) · δ[2] (2×1)``), a table per layer with
W[l], b[l], f[l], a[l], g′[l](f[l]), δ[l], ∂L/∂W[l], ∂L/∂b[l] (shapes, and values: in
full up to 8×8, abbreviated beyond), and the check of every gradient against chainrule's
autodiff. ``--graph FILE`` draws the autodiff graph of L as the slides compute it, on
column vectors, with x and y (.svg, .png, .pdf with Graphviz; .dot needs nothing).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import ops
from chainrule.cli import paths
from chainrule.cli.errors import UsageError
from chainrule.cli.options import non_negative_int
from chainrule.cli.output import echo
from chainrule.lecture import Comparison, Network, compare, dims, to_ascii
from chainrule.lecture.backprop import Layer, Trace
from chainrule.tensor import Tensor
from chainrule.viz import GraphvizMissing, render, require_graphviz

__all__ = ["add_parser", "run", "parse_layers", "explain_text", "DEFAULT_LAYERS"]

DEFAULT_LAYERS = (4, 3, 2)
MAX_WIDTH = 2048  # a W[l] of 2048×2048 float64 is 32 MB: the explanation stays quick
MAX_LAYERS = 12
SHOW_VALUES = 10  # arrays up to 10×10 are printed in full (10 classes), larger ones abbreviated
EDGE_ITEMS = 3  # an abbreviated array shows its first and last 3 rows and columns
TOLERANCE = 1e-10
GRAPH_FORMATS = ("svg", "png", "pdf", "dot", "gv")

DESCRIPTION = f"""\
The lecture's forward and backward propagation on a network, for one random example x:
the slides' equations filled in with shapes, a table per layer (W[l], b[l], f[l], a[l],
g'[l](f[l]), delta[l], dL/dW[l], dL/db[l]; values in full up to {SHOW_VALUES}x{SHOW_VALUES},
abbreviated beyond) and every gradient checked against chainrule's autodiff. Networks of
up to {MAX_LAYERS} layers of up to {MAX_WIDTH} units. Exit status 0 when backprop and
autodiff agree to {TOLERANCE:g}, 1 when they do not."""


def _layers(text: str) -> tuple[int, ...]:
    """argparse type of --layers: "4,3,2" -> (4, 3, 2)."""
    try:
        return parse_layers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_layers(text: Any) -> tuple[int, ...]:
    """The widths n[0], …, n[L] from "4,3,2" (or a sequence), checked.

    Raises:
        ValueError: in one line, for anything but 2 to 13 positive widths up to 512.
    """
    usage = "--layers expects the widths n[0],...,n[L] as comma-separated positive integers"
    if isinstance(text, str):
        try:
            widths = tuple(int(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"{usage}, like 4,3,2; got {text!r}") from None
    else:
        widths = tuple(int(n) for n in text)
    if len(widths) < 2 or any(n <= 0 for n in widths):
        raise ValueError(f"{usage} (at least two: inputs and outputs), like 4,3,2; got {text!r}")
    if len(widths) > MAX_LAYERS + 1 or max(widths) > MAX_WIDTH:
        raise ValueError(
            f"--layers: at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units, got {text!r}"
        )
    return widths


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``explain`` (and its options) on the ``chainrule`` subcommand parsers."""
    parser = subparsers.add_parser(
        "explain",
        help="the lecture's backprop on a network, every shape shown, checked against autodiff",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--layers", type=_layers, default=DEFAULT_LAYERS, metavar="N0,N1,...",
        help="widths n[0],...,n[L]: inputs, hidden layers, outputs; 2 to "
        f"{MAX_LAYERS + 1} widths of 1 to {MAX_WIDTH} (default: 4,3,2)",
    )  # fmt: skip
    parser.add_argument(
        "--activation", choices=("sigmoid", "tanh", "relu"), default="sigmoid",
        help="g[l] of the layers (default: sigmoid)",
    )  # fmt: skip
    parser.add_argument(
        "--loss", choices=("mse", "cross-entropy"), default="mse",
        help="mse (the output layer uses the activation too) or cross-entropy (the output "
        "layer gives logits, softmax is the loss's) (default: mse)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=non_negative_int("--seed"), default=0,
        help="weights and data (default: 0)",
    )  # fmt: skip
    parser.add_argument("--ascii", action="store_true", help="plain ASCII, no Unicode symbols")
    parser.add_argument(
        "--graph", metavar="FILE",
        help="also draw the autodiff graph of L: .svg, .png or .pdf (needs the graphviz "
        "package and Graphviz's dot program) or .dot (needs nothing)",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the explanation; 0 when backprop and autodiff agree to 1e-10, else 1.

    Raises:
        ValueError: for bad options, in one line (a ``UsageError`` for a ``--graph`` that
            cannot be written, or that needs Graphviz where it is missing).
    """
    widths = parse_layers(getattr(args, "layers", DEFAULT_LAYERS))
    activation = getattr(args, "activation", "sigmoid")
    loss = getattr(args, "loss", "mse")
    if activation not in ("sigmoid", "tanh", "relu"):
        raise ValueError(f"--activation must be sigmoid, tanh or relu, got {activation!r}")
    if loss not in ("mse", "cross-entropy"):
        raise ValueError(f"--loss must be mse or cross-entropy, got {loss!r}")
    seed = int(getattr(args, "seed", 0))
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    graph = getattr(args, "graph", None)
    if graph is not None:
        _check_graph_path(graph)
    output = activation if loss == "mse" else "identity"
    network = Network.random(widths, activation, output=output, seed=seed)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal(widths[0])
    if loss == "cross-entropy":
        y: Any = int(rng.integers(widths[-1]))
    else:  # a target the output activation can reach
        low = -1.0 if activation == "tanh" else 0.0
        y = rng.uniform(low, 1.0, widths[-1])
    comparison = compare(network, x, y, loss=loss)
    echo(explain_text(comparison, activation, seed, ascii=bool(getattr(args, "ascii", False))))
    if graph is not None:
        _draw(comparison.trace, graph)
    return 0 if comparison.agrees(TOLERANCE) else 1


def _check_graph_path(path: str) -> None:
    """Refuse a --graph FILE that cannot be written or drawn, before computing anything."""
    paths.output_file(path, "--graph", GRAPH_FORMATS)
    try:
        require_graphviz(path)
    except GraphvizMissing as error:
        raise UsageError(f"--graph {path}: {error}") from None


def column_graph(trace: Trace) -> tuple[Tensor, dict[str, Tensor], list[Tensor]]:
    """L computed as the slides write it, f[l] = W[l]ᵀ a[l−1] + b[l] on column vectors.

    Recorded by autodiff for the picture, with x and y as leaves so that they are drawn.
    Returns (L, names of the graph's tensors, the data leaves [x, y]).
    """
    network = trace.network
    x = Tensor(trace.x, requires_grad=True)
    y = Tensor(trace.y, requires_grad=True)
    names = {"x = a[0]": x, "y": y}
    a = x
    layers = zip(network.weights, network.biases, network.activations)
    for l, (w, b, g) in enumerate(layers, 1):
        weight = Tensor(w, requires_grad=True)
        f = weight.T @ a
        if b is not None:
            bias = Tensor(np.reshape(b, (-1, 1)), requires_grad=True)
            f = f + bias
            names[f"b[{l}]"] = bias
        a = f if g == "identity" else getattr(ops, g)(f)
        names.update({f"W[{l}]": weight, f"f[{l}]": f, f"a[{l}]": a})
    if trace.loss == "mse":
        residual = a - y
        loss = (residual * residual).mean()
    else:
        loss = -(y * ops.log_softmax(a, axis=0)).sum()
    names["L"] = loss
    return loss, names, [x, y]


def _draw(trace: Trace, path: str) -> None:
    loss, names, data = column_graph(trace)
    target = paths.make_parent(Path(path))
    written = render(loss, target, names=names, data=data, shape_text=dims)
    echo(
        f"\nwrote {written}: the autodiff graph of L, from x and y through every W[l], b[l], "
        "f[l] and a[l], in the column shapes used above"
    )


# ------------------------------------------------------------------------- the text
def _values(array: np.ndarray, indent: int) -> str:
    """An array's values: a column vector on one line as [ … ]ᵀ, a matrix as rows.

    Beyond 10 entries along an axis, only the first and last 3 are shown, with "..."
    between them (the shape beside the values says how many there are).
    """
    options: dict[str, Any] = {"precision": 4, "floatmode": "fixed", "suppress_small": True}
    if max(array.shape, default=1) > SHOW_VALUES:
        options.update(threshold=0, edgeitems=EDGE_ITEMS)
    if array.ndim == 2 and array.shape[1] == 1:
        return np.array2string(array[:, 0], max_line_width=10_000, **options) + "ᵀ"
    body = np.array2string(array, max_line_width=10_000, **options)
    return body.replace("\n", "\n" + " " * indent)


def _layer_table(layer: Layer, widths: list[int], spell: Any) -> list[str]:
    l = layer.l
    rows = [
        (f"W[{l}]", layer.W, "weights: inputs by outputs"),
        (f"b[{l}]", None if layer.b is None else layer.b.reshape(-1, 1), "bias"),
        (f"f[{l}]", layer.f, f"W[{l}]ᵀ a[{l - 1}] + b[{l}]"),
        (f"a[{l}]", layer.a, f"g[{l}](f[{l}])"),
        (f"g′[{l}](f[{l}])", layer.g_prime, f"{layer.g}′ at f[{l}]"),
        (f"δ[{l}]", layer.delta, f"∂L/∂f[{l}]"),
        (f"∂L/∂W[{l}]", layer.dW, f"a[{l - 1}] δ[{l}]ᵀ"),
        (f"∂L/∂b[{l}]", layer.db, f"δ[{l}]"),
    ]
    labels = [
        (spell(f"{symbol} ({dims(a.shape)})"), a, spell(note))
        for symbol, a, note in rows
        if a is not None
    ]
    width = max(len(label) for label, _, _ in labels)
    notes = max(len(note) for _, _, note in labels)
    lines = [f"Layer {l}: n[{l - 1}] = {widths[l - 1]} → n[{l}] = {widths[l]}, g[{l}] = {layer.g}"]
    for label, array, note in labels:
        indent = 2 + width + 2 + notes + 2
        values = _values(array, indent)
        lines.append(f"  {label:<{width}}  {note:<{notes}}  {values}".rstrip())
    return lines


def _filled(array: np.ndarray | None) -> np.ndarray:
    assert array is not None  # compare() fills every quantity of the trace
    return array


def explain_text(comparison: Comparison, activation: str, seed: int, ascii: bool = False) -> str:
    """The whole explanation: Unicode text, or plain ASCII (δ spelt delta, ∘ spelt *)."""
    spell = to_ascii if ascii else str
    trace = comparison.trace
    network = trace.network
    widths = network.widths
    depth = network.depth
    loss_name = "MSE" if trace.loss == "mse" else "cross-entropy"

    def d(array: np.ndarray | None) -> str:
        assert array is not None  # compare() fills every quantity of the trace
        return f"({dims(array.shape)})"

    y, y_hat = _filled(trace.y), _filled(trace.y_hat)

    lines = [
        f"chainrule explain: the lecture's backprop on a {'-'.join(map(str, widths))} "
        f"network ({activation}, {loss_name} loss), one example x, seed {seed}",
        "",
        "Notation: a[0] = x, f[l] = (W[l])ᵀ a[l−1] + b[l], a[l] = g[l](f[l]), ŷ = a[L]; "
        f"W[l] is n[l−1]×n[l]; L = {depth} layer{'s' if depth > 1 else ''}, "
        + ", ".join(f"n[{i}] = {n}" for i, n in enumerate(widths))
        + ". One example is a column vector.",
        "",
        "Forward propagation",
        f"  a[0] {d(trace.x)} = x",
    ]
    for layer in trace.layers:
        l = layer.l
        bias = f" + b[{l}] {d(layer.f)}" if layer.b is not None else ""
        lines.append(
            f"  f[{l}] {d(layer.f)} = W[{l}]ᵀ ({dims(layer.W.T.shape)}) · a[{l - 1}] "
            f"{d(layer.a_prev)}{bias}"
        )
        lines.append(f"  a[{l}] {d(layer.a)} = g[{l}](f[{l}]) {d(layer.f)},  g[{l}] = {layer.g}")
    out = trace.output
    if trace.loss == "mse":
        lines.append(f"  ŷ {d(out)} = a[{depth}] {d(out)}")
        lines.append(
            f"  L = (1/{out.size}) Σ (ŷ − y)² = {trace.value:.6f}   (MSE over the "
            f"{out.size} outputs; y {d(trace.y)})"
        )
    else:
        label = int(np.argmax(y))
        lines.append(f"  ŷ {d(out)} = softmax(a[{depth}]) {d(out)}")
        lines.append(
            f"  L = −Σ y ∘ log ŷ = {trace.value:.6f}   (cross-entropy; y {d(trace.y)} is "
            f"class {label}, one-hot)"
        )

    lines += ["", "Backpropagation, from the last layer to the first"]
    if trace.loss == "mse":
        rule = f"2 (ŷ − y) / {out.size}"
    else:
        rule = "ŷ − y   (softmax and cross-entropy together)"
    lines.append(f"  ∂L/∂a[{depth}] {d(trace.dL_da)} = {rule}")
    for layer in reversed(trace.layers):
        l = layer.l
        if l == depth:
            lines.append(
                f"  δ[{l}] {d(layer.delta)} = g′(f[{l}]) {d(layer.g_prime)} ∘ "
                f"∂L/∂a[{l}] {d(trace.dL_da)}"
            )
        else:
            above = trace.layers[l]
            lines.append(
                f"  δ[{l}] {d(layer.delta)} = g′(f[{l}]) {d(layer.g_prime)} ∘ "
                f"W[{l + 1}] {d(above.W)} · δ[{l + 1}] {d(above.delta)}"
            )
        lines.append(
            f"  ∂L/∂W[{l}] {d(layer.dW)} = a[{l - 1}] {d(layer.a_prev)} · "
            f"δ[{l}]ᵀ ({dims(_filled(layer.delta).T.shape)})"
        )
        if layer.db is not None:
            lines.append(f"  ∂L/∂b[{l}] {d(layer.db)} = δ[{l}] {d(layer.delta)}")

    lines += ["", f"Data: x = a[0] {d(trace.x)} {_values(trace.x, 0)}"]
    lines.append(f"      y {d(y)} {_values(y, 0)}")
    lines.append(f"      ŷ {d(y_hat)} {_values(y_hat, 0)}")
    for layer in trace.layers:
        lines += ["", *_layer_table(layer, widths, spell)]

    verdict = "agree" if comparison.agrees(TOLERANCE) else "DO NOT agree"
    mark = "✓" if comparison.agrees(TOLERANCE) else "✗"
    lines += [
        "",
        "Check against autodiff (chainrule's engine on the same network, float64)",
        comparison.table(TOLERANCE, ascii=ascii),
        f"  The lecture's backprop and autodiff {verdict} to {TOLERANCE:g} "
        f"(largest difference {comparison.max_abs:.1e}) {mark}",
    ]
    return spell("\n".join(lines))
