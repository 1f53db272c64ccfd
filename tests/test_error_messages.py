"""Loud, clear error messages, one section per kind of bad input.

Each section asserts that the message names what it must (both shapes, the offending
names, the range). The cases already tested elsewhere are not repeated; they live in
``tests/test_ops.py`` (matmul, broadcast, reshape and axis errors), ``tests/nn/
test_nn_losses.py`` (loss shape pairs, labels out of range), ``tests/test_function.py``
(wrong number or shape of gradients), ``tests/test_optim.py`` (hyper-parameters, empty
lists, optimizer ``load_state_dict``), ``tests/nn/test_nn_module.py`` (module
``load_state_dict``) and ``tests/test_engine.py`` (freed graphs, non-scalar backward). Here:
the same failures reached through layers, modules, losses, ``engine.grad``, ``cr.grad``,
``create_graph`` and checkpoint files, which users meet first.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import engine, nn, optim
from chainrule.nn import functional as F


def ones(*shape):
    return cr.tensor(np.ones(shape))


def leaf(*shape):
    return cr.tensor(np.ones(shape), requires_grad=True)


def shapes(*pairs):
    """A regex matching the shapes in order, with or without NumPy's missing spaces."""
    return ".*".join(re.escape(str(s)).replace(r",\ ", r", ?") for s in pairs)


# ------------------------------------------------------------ 1. matmul and broadcast shapes
MATMUL_MISMATCHES = [
    ("operator", lambda: ones(2, 3) @ ones(2, 3), ((2, 3), (2, 3))),
    ("matrix-vector", lambda: cr.matmul(ones(4, 3), ones(4)), ((4, 3), (4,))),
    ("vector-matrix", lambda: cr.matmul(ones(4), ones(3, 2)), ((4,), (3, 2))),
    ("dot", lambda: cr.dot(ones(3), ones(4)), ((3,), (4,))),
    ("ndarray on the left", lambda: np.ones((2, 5)) @ ones(3, 2), ((2, 5), (3, 2))),
    ("F.linear", lambda: F.linear(ones(8, 3), ones(4, 2)), ((8, 3), (4, 2))),
    ("nn.Linear", lambda: nn.Linear(3, 2)(ones(8, 4)), ((8, 4), (3, 2))),
]


@pytest.mark.parametrize(
    "call, expected", [c[1:] for c in MATMUL_MISMATCHES], ids=[c[0] for c in MATMUL_MISMATCHES]
)
def test_matmul_mismatch_names_both_shapes(call, expected):
    with pytest.raises(ValueError, match=shapes(*expected)):
        call()


BROADCAST_MISMATCHES = [
    ("sub", lambda: ones(2, 3) - ones(3, 2), ((2, 3), (3, 2))),
    ("div", lambda: ones(4) / ones(5), ((4,), (5,))),
    ("power", lambda: ones(4) ** ones(2), ((4,), (2,))),
    ("maximum", lambda: cr.minimum(ones(3), ones(2)), ((3,), (2,))),
    ("where", lambda: cr.where(np.ones(3, dtype=bool), ones(4), 0.0), ((3,), (4,))),
    ("clip bounds", lambda: cr.clip(ones(3), np.zeros(4), 1.0), ((3,), (4,))),
    ("bias of another width", lambda: ones(8, 3) @ ones(3, 2) + ones(3), ((8, 2), (3,))),
    ("ndarray on the left", lambda: np.ones(5) * ones(4), ((5,), (4,))),
]


@pytest.mark.parametrize(
    "call, expected",
    [c[1:] for c in BROADCAST_MISMATCHES],
    ids=[c[0] for c in BROADCAST_MISMATCHES],
)
def test_broadcast_mismatch_names_both_shapes(call, expected):
    with pytest.raises(ValueError, match=shapes(*expected)):
        call()


def test_a_sequential_width_mismatch_names_the_layer_and_the_widths():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"layer 2.*5.*4"):
        model(ones(2, 3))


# ------------------------------------------------------------ 2. loss shapes never broadcast
LOSS_MODULES = [nn.MSELoss, nn.L1Loss, nn.RMSELoss, nn.BCEWithLogitsLoss]


@pytest.mark.parametrize("loss_class", LOSS_MODULES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_refuse_a_column_against_a_flat_target(loss_class, reduction):
    loss = loss_class(reduction=reduction)
    with pytest.raises(ValueError, match=r"\(5, 1\).*\(5,\).*no broadcasting"):
        loss(leaf(5, 1), np.zeros(5))
    with pytest.raises(ValueError, match=r"\(5,\).*\(5, 1\)"):
        loss(leaf(5), cr.tensor(np.zeros((5, 1))))


def test_a_model_output_column_against_labels_is_caught_before_training():
    """The classic bug: Linear(n, 1) gives (m, 1), the targets are (m,)."""
    cr.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = cr.randn(6, 3), np.zeros(6, dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(6, 1\).*\(6,\)"):
        nn.MSELoss()(model(x), y)
    assert all(p.grad is None for p in model.parameters())


def test_cross_entropy_probability_target_of_another_shape_names_both():
    with pytest.raises(ValueError, match=r"\(4, 3\).*float64.*\(4, 1\)"):
        nn.CrossEntropyLoss()(leaf(4, 3), np.zeros((4, 1)))


def test_metrics_refuse_a_column_against_a_flat_target():
    for metric in (cr.metrics.mae, cr.metrics.mse, cr.metrics.rmse):
        with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
            metric(np.ones((4, 1)), np.ones(4))


# ------------------------------------------------------------ 3. labels out of range
@pytest.mark.parametrize(
    "logits_shape, labels, bad",
    [
        ((2, 3, 4), np.array([[0, 1, 2, 3], [0, 0, 0, 0]]), [3]),  # (N, C, d): C = 3
        ((2, 3, 4), np.array([[0, 1, 2, -2], [0, 0, 0, 0]]), [-2]),
        ((3,), np.array(7), [7]),  # one example: logits (C,)
        ((2, 3), np.array([3, 4], dtype=np.uint8), [3, 4]),
    ],
    ids=["NCd-high", "NCd-negative", "C-scalar-label", "uint8"],
)
def test_labels_out_of_range_name_the_range_and_the_values(logits_shape, labels, bad):
    classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    pattern = rf"\[0, {classes - 1}\].*{classes} classes.*{re.escape(str(bad))}"
    with pytest.raises(ValueError, match=pattern):
        nn.CrossEntropyLoss()(leaf(*logits_shape), labels)


def test_float_labels_are_not_silently_truncated():
    with pytest.raises(ValueError, match=r"integer class labels of shape \(2,\).*float64"):
        F.cross_entropy(leaf(2, 3), np.array([0.0, 1.7]))


# ------------------------------------------------------------ 4. custom Function gradients
# TwoInputs stays here, not in toys.py: its backward is whatever each test below sets.
class TwoInputs(cr.Function):
    """y = a ∘ b, with a backward that returns what the test sets."""

    returned = None

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        return TwoInputs.returned(grad_out)


@pytest.mark.parametrize("create_graph", [False, True], ids=["first-order", "create_graph"])
@pytest.mark.parametrize(
    "returned, pattern",
    [
        (lambda g: (g,), r"TwoInputs\.backward returned 1 gradient.*2 input"),
        (lambda g: (g, g, g), r"TwoInputs\.backward returned 3 gradient.*2 input"),
        (lambda g: (g, g[:2]), r"TwoInputs\.backward .*shape \(2,\) for input 1.*\(3,\)"),
        (lambda g: (g, g.reshape(3, 1) * g),
         r"TwoInputs\.backward .*shape \(3, 3\) for input 1.*\(3,\)"),
    ],
    ids=["too few", "too many", "too short", "an outer product"],
)  # fmt: skip
def test_wrong_gradients_through_engine_grad_name_the_function(returned, pattern, create_graph):
    TwoInputs.returned = staticmethod(returned)
    a, b = leaf(3), leaf(3)
    with pytest.raises(RuntimeError, match=pattern):
        engine.grad(TwoInputs.apply(a, b).sum(), [a, b], create_graph=create_graph)


def test_a_wrong_gradient_inside_a_model_names_the_function():
    class BadScale(cr.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out.sum(axis=0)  # forgot that x is a batch

    cr.manual_seed(0)
    layer = nn.Linear(3, 2)
    loss = BadScale.apply(layer(cr.randn(4, 3))).mean()
    with pytest.raises(RuntimeError, match=r"BadScale\.backward .*\(2,\) for input 0.*\(4, 2\)"):
        loss.backward()


def test_a_list_of_gradients_is_counted_as_such():
    TwoInputs.returned = staticmethod(lambda g: [g, g, g])
    a, b = leaf(3), leaf(3)
    with pytest.raises(RuntimeError, match=r"returned 3 gradient"):
        TwoInputs.apply(a, b).sum().backward()


# ------------------------------------------------------------ 5. optimizer hyper-parameters
HYPER = [
    ("sgd lr", lambda p: optim.SGD(p, lr=-1e-3), "lr"),
    ("adam lr", lambda p: optim.Adam(p, lr=-1e-3), "lr"),
    ("adamw lr", lambda p: optim.AdamW(p, lr=-1e-3), "lr"),
    ("adamw beta1", lambda p: optim.AdamW(p, betas=(1.0, 0.9)), "beta1"),
    ("adamw beta2", lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "beta2"),
    ("adam beta nan", lambda p: optim.Adam(p, betas=(float("nan"), 0.9)), "beta1"),
    ("adam beta2 = 1", lambda p: optim.Adam(p, betas=(0.9, 1.0)), "beta2"),
    ("adamw eps", lambda p: optim.AdamW(p, eps=-1.0), "eps"),
    ("adamw decay", lambda p: optim.AdamW(p, weight_decay=-1e-2), "weight_decay"),
    ("infinite lr", lambda p: optim.Adam(p, lr=float("inf")), "lr.*finite"),
    ("infinite decay", lambda p: optim.SGD(p, lr=0.1, weight_decay=np.inf), "weight_decay"),
    ("group lr", lambda p: optim.SGD([{"params": p, "lr": -0.5}], lr=0.1), "lr"),
    ("group betas", lambda p: optim.Adam([{"params": p, "betas": (0.9, 2.0)}]), "beta2"),
]


@pytest.mark.parametrize("build, name", [h[1:] for h in HYPER], ids=[h[0] for h in HYPER])
def test_hyper_parameters_out_of_range_name_the_parameter_and_value(build, name):
    with pytest.raises(ValueError, match=rf"invalid {name}|{name}"):
        build([leaf(2)])


def test_add_param_group_validates_before_adding():
    opt = optim.Adam([leaf(2)])
    with pytest.raises(ValueError, match=r"invalid beta1: 1\.5"):
        opt.add_param_group({"params": [leaf(3)], "betas": (1.5, 0.9)})
    assert len(opt.param_groups) == 1


def test_a_scheduler_cannot_set_a_negative_learning_rate():
    opt = optim.SGD([leaf(2)], lr=0.1)
    with pytest.raises(ValueError, match="gamma"):
        optim.lr_scheduler.StepLR(opt, step_size=1, gamma=-0.5)
    with pytest.raises(ValueError, match="eta_min"):
        optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3, eta_min=-1.0)
    assert opt.param_groups[0]["lr"] == 0.1


# ------------------------------------------------------------ 6. empty parameter lists
@pytest.mark.parametrize(
    "params",
    [
        lambda: nn.Sequential(nn.ReLU(), nn.Flatten()).parameters(),  # a model without weights
        lambda: [{"params": []}],
        lambda: (p for p in []),
    ],
    ids=["parameter-free model", "empty group", "exhausted generator"],
)
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps), lambda ps: optim.AdamW(ps),
], ids=["SGD", "Adam", "AdamW"])  # fmt: skip
def test_an_empty_parameter_list_is_an_error(make, params):
    with pytest.raises(ValueError, match="empty parameter list"):
        make(params())


def test_a_generator_used_twice_is_caught():
    """model.parameters() is a generator: the second optimizer would silently get nothing."""
    model = nn.Linear(2, 2)
    params = model.parameters()
    optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(params)


def test_a_frozen_model_names_the_parameter_that_does_not_require_grad():
    model = nn.Linear(3, 2)
    for p in model.parameters():
        p.requires_grad = False
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(3, 2\)\) does not require"):
        optim.SGD(model.parameters(), lr=0.1)


# ------------------------------------------------------------ 7. load_state_dict mismatches
def _net():
    cr.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


def test_a_checkpoint_of_another_architecture_lists_every_name_and_changes_nothing(tmp_path):
    cr.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    cr.save(other.state_dict(), tmp_path / "other.safetensors")
    model = _net()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        model.load_state_dict(cr.load(tmp_path / "other.safetensors"))
    message = str(info.value)
    for name in ("1.weight", "1.bias", "1.running_mean", "1.running_var", "3.weight",
                 "3.bias", "2.weight", "2.bias"):  # fmt: skip
        assert name in message, name  # missing and unexpected keys
    assert "(4, 5)" in message and "(4, 3)" in message  # 0.weight's shapes
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_a_bad_buffer_does_not_half_load_the_parameters():
    model = _net()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: v + 1 for k, v in before.items()}
    state["1.running_var"] = np.ones(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"1\.running_var.*\(4,\).*\(3,\)"):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_an_sgd_state_does_not_load_into_adam_and_changes_nothing():
    p = leaf(2)
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = cr.tensor(np.ones(2))
    sgd.step()
    adam = optim.Adam([leaf(2)], lr=0.5)
    with pytest.raises(ValueError, match=r"momentum_buffer.*exp_avg"):
        adam.load_state_dict(sgd.state_dict())
    assert adam.state == [{}] and adam.param_groups[0]["lr"] == 0.5


# ------------------------------------------------------------ 8. backward through a freed graph
def test_a_second_backward_through_a_model_says_retain_graph():
    model = _net()
    loss = model(cr.randn(5, 4)).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        loss.backward()


def test_engine_grad_frees_the_graph_for_a_later_backward():
    x = leaf(3)
    y = (x.tanh() * 2.0).sum()
    engine.grad(y, [x])
    with pytest.raises(RuntimeError, match=r"^\w+: its saved values were already freed"):
        y.backward()


def test_a_graph_of_ops_that_saved_nothing_is_refused_too():
    x = leaf(3)
    y = (x + 1.0).reshape(3, 1).sum()  # Add, Reshape and Sum save no arrays
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(3))  # the first pass only


# ------------------------------------------------------------ 9. non-scalar backward
def test_a_loss_without_reduction_needs_a_grad_to_backward():
    loss = F.mse_loss(leaf(4, 2), np.zeros((4, 2)), reduction="none")
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(4, 2\).*grad="):
        loss.backward()


def test_engine_grad_of_a_non_scalar_needs_grad_outputs():
    x = leaf(3)
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(3,\)"):
        engine.grad(x * 2.0, [x])


def test_cr_grad_of_a_non_scalar_function_says_to_use_jacobian():
    with pytest.raises(ValueError, match=r"scalar, got shape \(3,\).*jacobian"):
        cr.grad(lambda t: t * 2.0)(np.ones(3))


def test_a_grad_of_the_wrong_shape_names_both_shapes():
    y = leaf(2, 3) * 2.0
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        y.backward(np.ones((3, 2)))


@pytest.mark.parametrize(
    "data", [np.array(["a", "b"]), np.array([object()]), ["x"], np.array(["2026-12-07"], "M8[D]")]
)
def test_a_tensor_of_something_other_than_numbers_is_refused_at_creation(data):
    """Strings, objects and dates are refused by cr.tensor, naming the dtype and the shape,
    not by the first op that meets them (with NumPy's ufunc casting message)."""
    with pytest.raises(TypeError, match=r"holds numbers.*dtype .* and shape \(\d+,\)"):
        cr.tensor(data)
