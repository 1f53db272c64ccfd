"""chainrule.viz: the graph as DOT/SVG, the model summary, and shape checks before running."""

import re
import shutil
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, viz


def small_graph(rng):
    W = cr.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(3), requires_grad=True)
    x = cr.tensor(rng.standard_normal((2, 4)))  # a constant: not part of the graph
    f = x @ W + b
    loss = cr.sigmoid(f).sum()
    return loss, {"W": W, "b": b, "f": f}


def nodes_and_edges(dot):
    nodes = dict(re.findall(r'^\s+(n\d+) \[label="([^"]*)"', dot, flags=re.M))
    edges = re.findall(r"^\s+(n\d+) -> (n\d+)", dot, flags=re.M)
    return nodes, edges


def test_dot_has_ops_shapes_and_marked_leaves(rng):
    loss, names = small_graph(rng)
    dot = viz.to_dot(loss, names)
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    nodes, edges = nodes_and_edges(dot)
    labels = sorted(nodes.values())
    assert labels == sorted(
        [
            "output: Sum\\n()",
            "Sigmoid\\n(2, 3)",
            "f = Add\\n(2, 3)",
            "MatMul\\n(2, 3)",
            "W\\n(4, 3)\\nrequires grad",
            "b\\n(3,)\\nrequires grad",
        ]
    )
    by_label = {label.split("\\n")[0]: node for node, label in nodes.items()}
    expected = [("W", "MatMul"), ("MatMul", "f = Add"), ("b", "f = Add"),
                ("f = Add", "Sigmoid"), ("Sigmoid", "output: Sum")]  # fmt: skip
    assert sorted(edges) == sorted((by_label[a], by_label[b]) for a, b in expected)
    assert dot.count('fillcolor="#cfe8ff"') == 2  # the two leaves that require grad


def test_dot_without_names_and_of_a_leaf(rng):
    loss, _ = small_graph(rng)
    nodes, _ = nodes_and_edges(viz.to_dot(loss))
    assert sum("leaf\\n" in label and "requires grad" in label for label in nodes.values()) == 2
    leaf = cr.tensor(np.ones((2, 2)), requires_grad=True)
    nodes, edges = nodes_and_edges(viz.to_dot(leaf))
    assert list(nodes.values()) == ["output: leaf\\n(2, 2)\\nrequires grad"] and edges == []
    with pytest.raises(TypeError, match="needs a Tensor"):
        viz.to_dot(np.ones(2))


def test_shared_subgraph_is_drawn_once(rng):
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    y = cr.exp(x)
    z = (y * y + y).sum()  # y is used three times
    nodes, edges = nodes_and_edges(viz.to_dot(z))
    assert sum(label.startswith("Exp") for label in nodes.values()) == 1
    assert len(nodes) == 5  # x, Exp, Mul, Add, Sum


def test_names_with_quotes_are_escaped(rng):
    loss, names = small_graph(rng)
    dot = viz.to_dot(loss, {'the "W"': names["W"]})
    assert 'label="the \\"W\\"\\n(4, 3)\\nrequires grad"' in dot


def test_dot_file_needs_nothing_installed(rng, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz fails
    loss, names = small_graph(rng)
    path = viz.render(loss, tmp_path / "graph.dot", names=names)
    assert path.read_text() == viz.to_dot(loss, names)
    with pytest.raises(viz.GraphvizMissing) as error:
        viz.render(loss, tmp_path / "graph.svg")
    assert "pip install graphviz" in str(error.value)
    assert "apt-get install graphviz" in str(error.value)
    assert not (tmp_path / "graph.svg").exists()
    with pytest.raises(ValueError, match="give a file name ending in"):
        viz.render(loss, tmp_path / "graph")


def test_missing_dot_program_says_how_to_install(rng, tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program on the PATH
    loss, _ = small_graph(rng)
    with pytest.raises(viz.GraphvizMissing, match="apt-get install graphviz"):
        viz.render(loss, tmp_path / "graph.svg")


def test_svg_is_valid_when_graphviz_is_installed(rng, tmp_path):
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    loss, names = small_graph(rng)
    path = viz.render(loss, tmp_path / "graph.svg", names=names)
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for word in ("MatMul", "Sigmoid", "requires grad", "(4, 3)"):
        assert word in text
    png = viz.render(loss, tmp_path / "graph.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------- models
def mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10),
    )  # fmt: skip


def test_summary_table():
    model = mlp()
    summary = viz.summary(model, (1, 28, 28))
    expected = 784 * 256 + 256 + 256 * 10 + 10
    assert summary.total == summary.trainable == expected
    assert summary.output_shape == ("m", 10)
    assert [r.shape for r in summary.rows] == [("m", 784), ("m", 256), ("m", 256), ("m", 10)]
    assert [r.params for r in summary.rows] == [0, 784 * 256 + 256, 0, 256 * 10 + 10]
    text = str(summary)
    assert f"Total params: {expected:,}" in text and "Non-trainable params: 0" in text
    assert re.search(r"1\s+Linear\s+f\[1\] = W\[1\]ᵀ a\[0\]\s+\(m, 256\)\s+200,960", text)
    assert re.search(r"2\s+ReLU\s+a\[1\] = g\[1\]\(f\[1\]\)\s+\(m, 256\)\s+0", text)
    ascii_text = summary.table(ascii=True)
    assert ascii_text.isascii() and "W[1]^T a[0]" in ascii_text
    # the columns line up: every row is as wide as the header's rule allows
    rule = ascii_text.splitlines()[1]
    assert all(len(line) <= len(rule) for line in ascii_text.splitlines()[:7])


def test_summary_counts_frozen_parameters_as_non_trainable():
    model = mlp()
    model[1].requires_grad_(False)
    summary = viz.summary(model, (784,))
    assert summary.trainable == 256 * 10 + 10
    assert summary.total - summary.trainable == 784 * 256 + 256
    assert "Non-trainable params: 200,960" in str(summary)


def test_check_agrees_with_a_real_forward_pass(rng):
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, stride=2), nn.Tanh(), nn.AvgPool2d(2, stride=1),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 4 * 4, 10), nn.Softmax(axis=1),
    )  # fmt: skip
    shape = viz.check(model, (1, 28, 28))
    model.eval()
    with cr.no_grad():
        out = model(cr.tensor(rng.standard_normal((3, 1, 28, 28)).astype(np.float32)))
    assert shape == ("m", *out.shape[1:])
    summary = viz.summary(model, (1, 28, 28))
    assert summary.total == sum(p.size for p in model.parameters())


def test_check_finds_a_width_mismatch_before_computing(monkeypatch):
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(256, 10))

    def must_not_run(self, x):
        raise AssertionError("check() ran the model")

    monkeypatch.setattr(nn.Linear, "forward", must_not_run)
    with pytest.raises(ValueError) as error:
        viz.check(model, (784,))
    message = str(error.value)
    assert message.startswith("layer 2: f[2] = W[2]ᵀ a[1] needs a[1] with 256 features, got 128")
    assert "Sequential item 2" in message
    with pytest.raises(
        ValueError, match=r"layer 1: f\[1\] = W\[1\]ᵀ a\[0\] needs a\[0\] with 784"
    ):
        viz.summary(model, (100,))


def test_check_convolution_channels_and_nesting():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"layer 1: .* needs a\[0\] with 3 channels .*got 1"):
        viz.check(model, (1, 8, 8))
    with pytest.raises(ValueError, match="does not fit"):
        viz.check(model, (3, 2, 2))
    nested = nn.Sequential(nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()), nn.Linear(2, 1))
    with pytest.raises(ValueError, match=r"layer 2: .* needs a\[1\] with 2 features, got 3 "
                       r"\(Sequential item 1: Linear\)"):  # fmt: skip
        viz.check(nested, (4,))


def test_unknown_image_format_is_a_value_error(rng, tmp_path):
    pytest.importorskip("graphviz")
    loss, _ = small_graph(rng)
    with pytest.raises(ValueError, match="Graphviz knows no format 'xyz'"):
        viz.render(loss, tmp_path / "graph.xyz")


def test_check_hints_at_a_missing_flatten_and_bad_pooling():
    with pytest.raises(ValueError, match=r"needs a\[0\] with 784 features, got 28 .*Flatten"):
        viz.check(nn.Sequential(nn.Linear(784, 10)), (1, 28, 28))
    with pytest.raises(ValueError, match=r"pooling 2×2 needs a\[0\] of shape \(m, C, H, W\)"):
        viz.check(nn.Sequential(nn.MaxPool2d(2)), (16,))
