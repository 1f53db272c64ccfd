"""``chainrule explain``: every symbol of the lecture with its shape, checked against autodiff."""

import argparse
import importlib
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

from chainrule.cli import explain


def parse(*argv):
    parser = argparse.ArgumentParser(prog="chainrule")
    explain.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["explain", *argv])


def run(capsys, *argv):
    status = explain.run(parse(*argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def expected_symbols(widths, loss="mse", times="×", prime="′", delta="δ", d="∂"):
    """(symbol, shape) pairs the output must show, for one example in columns."""
    pairs = [("a[0]", f"{widths[0]}{times}1")]
    for l in range(1, len(widths)):
        n_in, n_out = widths[l - 1], widths[l]
        column = f"{n_out}{times}1"
        pairs += [
            (f"W[{l}]", f"{n_in}{times}{n_out}"),
            (f"b[{l}]", column),
            (f"f[{l}]", column),
            (f"a[{l}]", column),
            (f"g{prime}[{l}](f[{l}])", column),
            (f"{delta}[{l}]", column),
            (f"{d}L/{d}W[{l}]", f"{n_in}{times}{n_out}"),
            (f"{d}L/{d}b[{l}]", column),
        ]
    return pairs


def test_defaults_show_every_symbol_with_its_shape(capsys):
    status, out, _ = run(capsys)
    assert status == 0
    assert "4-3-2 network (sigmoid, MSE loss)" in out
    for symbol, shape in expected_symbols([4, 3, 2]):
        assert f"{symbol} ({shape})" in out, symbol
    # the equations, filled in with shapes, as the issue writes them
    assert "δ[1] (3×1) = g′(f[1]) (3×1) ∘ W[2] (3×2) · δ[2] (2×1)" in out
    assert "f[1] (3×1) = W[1]ᵀ (3×4) · a[0] (4×1) + b[1] (3×1)" in out
    assert "∂L/∂W[1] (4×3) = a[0] (4×1) · δ[1]ᵀ (1×3)" in out
    assert "agree to 1e-10" in out and "✓" in out and "✗" not in out
    # small sizes: the values are printed (W[1] has 4 rows of 3 numbers)
    w1 = out[out.index("\n  W[1] (4×3)") + 1 :].splitlines()[:4]
    assert all(len(re.findall(r"-?\d\.\d{4}", line)) == 3 for line in w1)


def test_ascii_has_no_unicode(capsys):
    status, out, _ = run(capsys, "--ascii", "--loss", "cross-entropy", "--activation", "tanh")
    assert status == 0
    assert out.isascii()
    for symbol, shape in expected_symbols([4, 3, 2], times="x", prime="'", delta="delta", d="d"):
        assert f"{symbol} ({shape})" in out, symbol
    assert "delta[1] (3x1) = g'(f[1]) (3x1) * W[2] (3x2) @ delta[2] (2x1)" in out
    assert "?" not in out  # nothing was left for the replacement character


@pytest.mark.parametrize(
    "argv, widths",
    [
        (("--layers", "5,4,3,2", "--activation", "relu", "--loss", "cross-entropy"), [5, 4, 3, 2]),
        (("--layers", "3,1", "--activation", "tanh", "--seed", "7"), [3, 1]),
        (("--layers", "2,6,6,6,6,3", "--activation", "sigmoid"), [2, 6, 6, 6, 6, 3]),
    ],
)
def test_other_networks(capsys, argv, widths):
    status, out, _ = run(capsys, *argv)
    assert status == 0
    for symbol, shape in expected_symbols(widths):
        assert f"{symbol} ({shape})" in out, symbol
    last = len(widths) - 1
    if "cross-entropy" in argv:
        assert f"ŷ ({widths[-1]}×1) = softmax(a[{last}])" in out
        assert f"∂L/∂a[{last}] ({widths[-1]}×1) = ŷ − y" in out


def test_large_arrays_are_abbreviated_beside_their_shapes(capsys):
    status, out, _ = run(capsys, "--layers", "20,3,2")
    assert status == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  W[1] (20×3)"))
    shown = lines[start : start + 7]  # the first 3 rows, "...", the last 3 rows
    has_values = [bool(re.search(r"\d\.\d{4}", line)) for line in shown]
    assert has_values == [True, True, True, False, True, True, True]
    assert shown[3].strip() == "..." and shown[6].rstrip().endswith("]]")
    x_line = next(line for line in lines if line.startswith("Data: x = a[0] (20×1)"))
    assert x_line.count("...") == 1 and len(re.findall(r"\d\.\d{4}", x_line)) == 6
    assert re.search(r"W\[2\] \(3×2\).*\d\.\d{4}", out)  # small: in full


def test_the_readme_network_of_784_256_10_is_explained(capsys):
    argv = ("--layers", "784,256,10", "--activation", "relu", "--loss", "cross-entropy")
    status, out, _ = run(capsys, *argv, "--ascii")
    assert status == 0 and out.isascii()
    assert "W[1] (784x256)" in out and "dL/dW[1] (784x256)" in out
    assert max(len(line) for line in out.splitlines()) < 200  # abbreviated, not 784 numbers


def test_seed_changes_the_numbers_not_the_shapes(capsys):
    _, first, _ = run(capsys, "--seed", "1")
    _, again, _ = run(capsys, "--seed", "1")
    _, other, _ = run(capsys, "--seed", "2")
    assert first == again and first != other
    shapes = re.compile(r"\(\d+×\d+\)")
    assert shapes.findall(first) == shapes.findall(other)


@pytest.mark.parametrize(
    "layers, message",
    [
        ("4", "at least two"),
        ("4,x,2", "comma-separated positive integers"),
        ("4,0,2", "comma-separated positive integers"),
        ("4,100000", "at most"),
    ],
)
def test_bad_layers_raise_one_line_value_errors(layers, message):
    args = argparse.Namespace(layers=layers, activation="sigmoid", loss="mse", seed=0)
    with pytest.raises(ValueError, match=message) as error:
        explain.run(args)
    assert "\n" not in str(error.value)
    with pytest.raises(SystemExit):  # argparse rejects it too, before run
        parse("--layers", layers)


def test_bad_options_raise_value_errors():
    base = {"layers": "4,3,2", "activation": "sigmoid", "loss": "mse", "seed": 0}
    for change, message in [
        ({"activation": "swish"}, "--activation"),
        ({"loss": "hinge"}, "--loss"),
        ({"seed": -1}, "--seed"),
    ]:
        with pytest.raises(ValueError, match=message):
            explain.run(argparse.Namespace(**{**base, **change}))


def test_graph_dot_needs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    path = tmp_path / "graph.dot"
    status, out, _ = run(capsys, "--graph", str(path))
    assert status == 0 and str(path) in out
    dot = path.read_text()
    for name in ("W[1]", "b[2]", "f[1]", "a[1]", "L = Mean", "requires grad"):
        assert name in dot


@pytest.mark.parametrize("missing", ["package", "dot program"])
def test_graph_svg_without_graphviz_is_a_usage_error(capsys, tmp_path, monkeypatch, missing):
    """A missing extra exits 2 as the others do, before anything is computed or written."""
    if missing == "package":
        monkeypatch.setitem(sys.modules, "graphviz", None)
    else:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    cli_main = importlib.import_module("chainrule.cli.main")
    status = cli_main.main(["explain", "--graph", str(tmp_path / "graph.svg")])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("chainrule: error: --graph") and err.count("\n") == 1
    assert "pip install graphviz" in err and "apt-get install graphviz" in err and ".dot" in err
    assert list(tmp_path.iterdir()) == []


def test_graph_shows_x_and_y_in_the_column_shapes_of_the_text(capsys, tmp_path):
    path = tmp_path / "graph.dot"
    status, out, _ = run(capsys, "--graph", str(path))
    assert status == 0
    assert f"wrote {path}: the autodiff graph of L" in out
    dot = path.read_text()
    assert '"x = a[0]\\n4×1\\ndata"' in dot and '"y\\n2×1\\ndata"' in dot
    # the same shapes as the text: f[1] (3×1) = W[1]ᵀ (3×4) · a[0] (4×1) + b[1] (3×1)
    assert "f[1] (3×1) = W[1]ᵀ (3×4) · a[0] (4×1) + b[1] (3×1)" in out
    for label in ("f[1] = Add\\n3×1", "W[1]\\n4×3", "Transpose\\n3×4", "b[1]\\n3×1"):
        assert label in dot, label
    assert "(1, 3)" not in dot and "(3,)" not in dot  # no row shapes


def test_graph_svg_is_valid(capsys, tmp_path):
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    path = tmp_path / "graph.svg"
    status, _, _ = run(capsys, "--graph", str(path), "--layers", "3,2,2")
    assert status == 0
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "W[2]" in text and "MatMul" in text


def test_wired_into_the_chainrule_command(capsys):
    cli_main = importlib.import_module("chainrule.cli.main")  # the module, not main()
    parser = cli_main.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "explain" in commands.choices, "chainrule explain is not wired into cli/main.py"
    assert cli_main.main(["explain", "--layers", "3,2"]) == 0
    assert "δ[1] (2×1)" in capsys.readouterr().out
    assert cli_main.main(["explain", "--layers", "3"]) == 2
    assert "at least two" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, message", [("graph.xyz", "must end in one of"), ("file/graph.svg", "is a file")]
)
def test_bad_graph_file_is_refused_before_computing(tmp_path, capsys, name, message):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=message) as error:
        explain.run(parse("--graph", str(tmp_path / name)))
    assert "\n" not in str(error.value)
    assert capsys.readouterr().out == ""  # refused before printing anything


def test_graph_in_a_folder_that_does_not_exist_yet(tmp_path, capsys):
    path = tmp_path / "runs" / "graphs" / "graph.dot"  # as --out, missing folders are made
    status, _, _ = run(capsys, "--graph", str(path))
    assert status == 0 and path.read_text().startswith("digraph")
