"""The shape and indexing ops of v0.2 where a row of ``tests/op_specs.py`` cannot say it all:
gradients that accumulate, every pad mode against NumPy's adjoint, the errors at the call,
``cat(dim=)``, and the creation functions ``linspace`` and ``meshgrid``."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def _grad(fn, x, seed=None):
    """The gradient of <seed, fn(x)> with respect to a float64 leaf holding x."""
    leaf = cr.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    out = fn(leaf)
    out.backward(np.ones(out.shape) if seed is None else seed)
    return leaf.grad.data


def _adjoint(np_fn, x_shape, seed):
    """The gradient of <seed, np_fn(x)> for a linear np_fn, one basis vector at a time."""
    grad = np.zeros(x_shape)
    for k in np.ndindex(*x_shape):
        basis = np.zeros(x_shape)
        basis[k] = 1.0
        grad[k] = np.sum(seed * np_fn(basis))
    return grad


# ---------------------------------------------------------------------- take_along_axis
def test_take_along_axis_accumulates_repeated_indices():
    indices = np.array([[0, 0], [0, 1], [2, 0]])  # rows 0, 0, 2 of column 0; 0, 1, 0 of 1
    seed = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]])
    grad = _grad(lambda x: cr.take_along_axis(x, indices, axis=0), np.zeros((3, 2)), seed)
    np.testing.assert_array_equal(grad, [[1.0 + 2.0, 10.0 + 40.0], [0.0, 20.0], [4.0, 0.0]])


def test_take_along_axis_second_derivative_through_repeated_indices(rng):
    indices = np.array([[1, 1, 1, 0]])
    x = rng.standard_normal((2, 4))
    assert cr.gradgradcheck(lambda t: cr.take_along_axis(t, indices, 1) ** 3, [x])


def test_take_along_axis_takes_tensor_indices_and_refuses_bad_ones():
    x = cr.tensor(np.arange(6.0).reshape(2, 3))
    got = cr.take_along_axis(x, cr.tensor(np.array([[2], [0]])), axis=1)
    np.testing.assert_array_equal(got.data, [[2.0], [3.0]])
    with pytest.raises(IndexError, match=r"out of range for axis 1 of length 3"):
        cr.take_along_axis(x, np.array([[3]]), axis=1)
    with pytest.raises(TypeError, match="must be integers"):
        cr.take_along_axis(x, np.array([[0.5]]), axis=1)
    with pytest.raises(ValueError, match=r"indices of shape \(2,\) need as many dimensions"):
        cr.take_along_axis(x, np.array([0, 1]), axis=1)


# --------------------------------------------------------------------------------- pad
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("width", [((1, 2), (0, 3)), 2, ((5, 4), (1, 0))], ids=str)
def test_pad_modes_match_numpy_and_their_adjoint(mode, width, rng):
    x = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(cr.pad(x, width, mode=mode).data, np.pad(x, width, mode))
    seed = rng.standard_normal(np.pad(x, width, mode).shape)
    # every mode (with constant 0) is linear in x: its adjoint, built from basis vectors
    expected = _adjoint(lambda b: np.pad(b, width, mode=mode), x.shape, seed)
    np.testing.assert_allclose(_grad(lambda t: cr.pad(t, width, mode=mode), x, seed), expected)


def test_pad_constant_values_per_axis_and_dtype():
    x = np.ones((2, 2), dtype=np.float32)
    values = ((5, 6), (7, 8))
    got = cr.pad(x, 1, constant_values=values)
    np.testing.assert_array_equal(got.data, np.pad(x, 1, constant_values=values))
    assert got.dtype == np.float32


def test_pad_refuses_unknown_modes_and_bad_widths():
    x = cr.zeros(2, 3)
    with pytest.raises(ValueError, match="'maximum' is not supported.*'reflect'"):
        cr.pad(x, 1, mode="maximum")
    with pytest.raises(ValueError, match="non-negative"):
        cr.pad(x, -1)
    with pytest.raises(ValueError, match=r"does not fit a tensor with 2 dimension"):
        cr.pad(x, ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match=r"empty axis 0 of shape \(0, 3\)"):
        cr.pad(cr.zeros(0, 3), 1, mode="reflect")


def test_pad_of_nothing_is_a_copy_on_the_graph():
    x = cr.tensor(np.arange(3.0), requires_grad=True)
    y = cr.pad(x, 0)
    assert y is not x and y.requires_grad
    y.data[0] = 9.0
    assert x.data[0] == 0.0


# ------------------------------------------------------------------------- split, cat
def test_an_impossible_split_names_the_sections_and_the_shape():
    with pytest.raises(ValueError, match=r"3 sections .* axis 0 of length 10 \(shape \(10,\)\)"):
        cr.split(cr.zeros(10), 3)
    with pytest.raises(ValueError, match="zero-dimensional"):
        cr.split(cr.tensor(1.0), 1)


def test_split_gives_a_list_whose_pieces_all_carry_gradient():
    pieces = cr.split(cr.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True), [1, 3], 1)
    assert isinstance(pieces, list) and [p.shape for p in pieces] == [(3, 1), (3, 2), (3, 1)]
    grad = _grad(lambda x: cr.concatenate(cr.split(x, 2, axis=1)[1:], axis=1), np.ones((3, 4)))
    np.testing.assert_array_equal(grad, [[0, 0, 1, 1]] * 3)


def test_cat_takes_pytorch_dim_and_is_concatenate():
    a, b = np.ones((2, 1)), np.zeros((2, 2))
    np.testing.assert_array_equal(cr.cat([a, b], dim=1).data, np.concatenate([a, b], 1))
    np.testing.assert_array_equal(cr.cat([a, b], axis=-1).data, np.concatenate([a, b], 1))
    with pytest.raises(TypeError, match="not both"):
        cr.cat([a, b], axis=1, dim=1)


# ------------------------------------------------------------------------- bad axes
@pytest.mark.parametrize(
    "call",
    [
        lambda x: cr.flip(x, 2),
        lambda x: cr.roll(x, 1, axis=-3),
        lambda x: cr.repeat(x, 2, axis=2),
        lambda x: cr.split(x, 1, axis=5),
        lambda x: cr.moveaxis(x, 0, 2),
        lambda x: cr.diagonal(x, 0, 0, 2),
        lambda x: cr.trace(x, 0, -3, 1),
        lambda x: cr.take_along_axis(x, np.zeros((1, 1), dtype=int), 2),
    ],
    ids=["flip", "roll", "repeat", "split", "moveaxis", "diagonal", "trace", "take"],
)
def test_out_of_range_axes_raise_at_the_call(call):
    with pytest.raises(ValueError, match="out of range for a tensor with 2 dimension"):
        call(cr.zeros(2, 3))


def test_other_bad_arguments_name_the_problem():
    x = cr.zeros(2, 3)
    with pytest.raises(ValueError, match=r"2 repeats do not match axis 1 of length 3"):
        cr.repeat(x, [1, 2], axis=1)
    with pytest.raises(ValueError, match="non-negative"):
        cr.repeat(x, -1)
    with pytest.raises(ValueError, match="non-negative"):
        cr.tile(x, (2, -1))
    with pytest.raises(ValueError, match=r"same axis \(0\)"):
        cr.diagonal(x, 0, 0, -2)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(3,\)"):
        cr.tril(cr.zeros(3))
    with pytest.raises(ValueError, match="same number of axes"):
        cr.moveaxis(x, (0, 1), 0)
    with pytest.raises(ValueError, match="do not match"):
        cr.roll(x, (1, 2, 3), (0, 1))


def test_tril_keeps_nan_above_the_diagonal_out():
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    np.testing.assert_array_equal(cr.tril(x).data, np.tril(x))
    np.testing.assert_array_equal(cr.triu(x.T).data, np.triu(x.T))


# ------------------------------------------------------------------------- linspace
@pytest.mark.parametrize(
    "args, kwargs",
    [((0, 1, 5), {}), ((-2.5, 3.0, 7), {"endpoint": False}), ((1, 2, 1), {}), ((0, 1, 0), {})],
    ids=["basic", "no-endpoint", "one", "none"],
)
def test_linspace_matches_numpy_in_float32_by_default(args, kwargs):
    got = cr.linspace(*args, **kwargs)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, np.linspace(*args, **kwargs).astype(np.float32))
    exact = cr.linspace(*args, dtype=np.float64, **kwargs)
    np.testing.assert_array_equal(exact.data, np.linspace(*args, **kwargs))


def test_linspace_dtype_grad_and_errors():
    assert cr.linspace(0, 9, 4, dtype=np.int64).data.tolist() == [0, 3, 6, 9]
    leaf = cr.linspace(0.0, 1.0, 3, requires_grad=True)
    assert leaf.requires_grad and leaf.is_leaf
    with pytest.raises(ValueError, match="non-negative"):
        cr.linspace(0, 1, -1)


# ------------------------------------------------------------------------- meshgrid
@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_values_match_numpy(indexing):
    xs = [np.arange(3.0), np.arange(2.0) + 5, np.arange(4.0) - 1]
    got = cr.meshgrid(*[cr.tensor(x) for x in xs], indexing=indexing)
    assert isinstance(got, list) and len(got) == 3
    for g, e in zip(got, np.meshgrid(*xs, indexing=indexing)):
        assert g.shape == e.shape
        np.testing.assert_array_equal(g.data, e)
    assert cr.meshgrid() == []
    np.testing.assert_array_equal(cr.meshgrid(np.arange(3.0))[0].data, np.arange(3.0))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_gradients_match_torch(indexing, rng):
    torch = pytest.importorskip("torch")
    xs = [rng.standard_normal(n) for n in (3, 2, 4)]
    ours = [cr.tensor(x, requires_grad=True) for x in xs]
    theirs = [torch.tensor(x, requires_grad=True) for x in xs]
    grids = cr.meshgrid(*ours, indexing=indexing)
    seeds = [rng.standard_normal(g.shape) for g in grids]
    sum((g * s).sum() for g, s in zip(grids, seeds)).backward()
    t_grids = torch.meshgrid(*theirs, indexing=indexing)
    sum((g * torch.tensor(s)).sum() for g, s in zip(t_grids, seeds)).backward()
    for ours_x, theirs_x in zip(ours, theirs):
        np.testing.assert_allclose(ours_x.grad.data, theirs_x.grad.numpy(), rtol=1e-12)


def test_meshgrid_is_twice_differentiable_and_refuses_bad_indexing(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(2)

    def f(a, b):
        u, v = cr.meshgrid(a, b)
        return u * v**2

    assert cr.gradcheck(f, [x, y])
    assert cr.gradgradcheck(f, [x, y])
    with pytest.raises(ValueError, match='"xy" or "ij"'):
        cr.meshgrid(cr.tensor(x), indexing="yx")
