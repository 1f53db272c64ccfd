"""RMSprop and Adagrad: their rules by hand, float32 kept, and a resume from ``state_dict``
that is bit-exact. PyTorch's numbers (float64, 10 steps) are checked with the other
optimizers' in ``tests/test_optim_torch.py``."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import Adagrad, RMSprop


def _param(values, dtype=np.float64):
    return cr.tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_rmsprop_first_step_by_hand():
    p = _param([1.0, -2.0])
    opt = RMSprop([p], lr=0.1, alpha=0.9, eps=0.0)
    p.grad = cr.tensor(np.array([2.0, -4.0]))
    opt.step()
    # v = 0.1 g², so g / √v = sign(g) / √0.1
    np.testing.assert_allclose(p.data, [1.0 - 0.1 / np.sqrt(0.1), -2.0 + 0.1 / np.sqrt(0.1)])


def test_centered_rmsprop_first_step_by_hand():
    p = _param([0.0])
    opt = RMSprop([p], lr=1.0, alpha=0.5, eps=0.0, centered=True)
    p.grad = cr.tensor(np.array([2.0]))
    opt.step()
    # v = 0.5·4 = 2, ḡ = 0.5·2 = 1: g / √(v − ḡ²) = 2 / 1
    np.testing.assert_allclose(p.data, [-2.0])


def test_adagrad_steps_by_hand():
    p = _param([0.0])
    opt = Adagrad([p], lr=1.0, lr_decay=1.0, eps=0.0, initial_accumulator_value=5.0)
    p.grad = cr.tensor(np.array([2.0]))
    opt.step()  # s = 5 + 4 = 9: w = −2/3
    np.testing.assert_allclose(p.data, [-2.0 / 3.0])
    p.grad = cr.tensor(np.array([4.0]))
    opt.step()  # s = 25, η₂ = 1/2: w = −2/3 − ½·4/5
    np.testing.assert_allclose(p.data, [-2.0 / 3.0 - 0.4])


MAKERS = [
    ("rmsprop", lambda ps: RMSprop(ps, lr=0.01)),
    ("rmsprop-everything", lambda ps: RMSprop(ps, momentum=0.9, centered=True, weight_decay=0.1)),
    ("adagrad", lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("make", [m for _, m in MAKERS], ids=[n for n, _ in MAKERS])
def test_float32_parameters_and_state_stay_float32(make, rng):
    p = _param(rng.standard_normal(3), np.float32)
    opt = make([p])
    for _ in range(3):
        p.grad = cr.tensor(rng.standard_normal(3))  # a float64 gradient
        opt.step()
    assert p.dtype == np.float32
    for name, value in opt.state[0].items():
        if name != "step":
            assert value.dtype == np.float32, name


@pytest.mark.parametrize("make", [m for _, m in MAKERS], ids=[n for n, _ in MAKERS])
@pytest.mark.parametrize("through_json", [False, True], ids=["in-memory", "json"])
def test_resume_from_state_dict_is_bit_exact(make, through_json, rng):
    shapes = [(3, 2), (2,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(10)]

    def run(opt, params, some_grads):
        for step_grads in some_grads:
            for p, g in zip(params, step_grads):
                p.grad = cr.tensor(g)
            opt.step()

    straight = [_param(w, np.float32) for w in start]
    run(make(straight), straight, grads)

    first = [_param(w, np.float32) for w in start]
    opt_a = make(first)
    run(opt_a, first, grads[:5])
    state = opt_a.state_dict()
    if through_json:  # integer keys and hyper-parameters through JSON, arrays as they are
        arrays = {(i, k): v for i, e in state["state"].items() for k, v in e.items()}
        state = json.loads(json.dumps({"param_groups": state["param_groups"], "state": {}}))
        for (i, name), value in arrays.items():
            state["state"].setdefault(str(i), {})[name] = value
    resumed = [_param(p.data, np.float32) for p in first]
    opt_b = make(resumed)
    opt_b.load_state_dict(state)
    run(opt_b, resumed, grads[5:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda ps: RMSprop(ps, lr=-1.0), "lr"),
        (lambda ps: RMSprop(ps, alpha=-0.5), "alpha"),
        (lambda ps: RMSprop(ps, eps=-1.0), "eps"),
        (lambda ps: RMSprop(ps, momentum=-0.1), "momentum"),
        (lambda ps: RMSprop(ps, weight_decay=-0.1), "weight_decay"),
        (lambda ps: Adagrad(ps, lr_decay=-0.1), "lr_decay"),
        (lambda ps: Adagrad(ps, initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda ps: Adagrad(ps, eps=float("nan")), "eps"),
    ],
)
def test_bad_hyper_parameters_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build([_param([1.0])])


def test_load_state_dict_refuses_another_optimizers_buffers():
    p = _param([1.0, 2.0])
    adam = cr.optim.Adam([p], lr=0.1)
    p.grad = cr.tensor(np.ones(2))
    adam.step()
    opt = RMSprop([p])
    with pytest.raises(ValueError, match="unknown entry 'exp_avg'"):
        opt.load_state_dict(adam.state_dict())
    assert opt.state == [{}]
