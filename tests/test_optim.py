"""Optimizers and schedulers against hand-computed updates and NumPy references (no torch)."""

import json
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import SGD, Adam, AdamW
from chainrule.optim.lr_scheduler import CosineAnnealingLR, StepLR


def _param(values, dtype=np.float64):
    return cr.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def _set_grad(p, values):
    p.grad = cr.tensor(np.asarray(values, dtype=p.dtype))


def _grads(rng, shape, steps):
    return [rng.standard_normal(shape) for _ in range(steps)]


# ----------------------------------------------------------------- hand-computed updates
def test_sgd_plain_step_is_w_minus_lr_g():
    p = _param([1.0, 2.0, -3.0])
    _set_grad(p, [0.5, -1.0, 2.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, 2.1, -3.2], rtol=0, atol=1e-15)


def test_sgd_momentum_by_hand():
    # g = 1 every step, lr 0.1, mu 0.9: v = 1, 1.9, 2.71 and w = 0.9, 0.71, 0.439.
    p = _param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    seen = []
    for _ in range(3):
        _set_grad(p, [1.0])
        opt.step()
        seen.append(p.data[0])
    np.testing.assert_allclose(seen, [0.9, 0.71, 0.439], rtol=0, atol=1e-14)


def test_sgd_nesterov_by_hand():
    # step 1: v = 1, d = 1 + 0.9 * 1 = 1.9, w = 0.81; step 2: v = 1.9, d = 2.71, w = 0.539.
    p = _param([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    seen = []
    for _ in range(2):
        _set_grad(p, [1.0])
        opt.step()
        seen.append(p.data[0])
    np.testing.assert_allclose(seen, [0.81, 0.539], rtol=0, atol=1e-14)


def test_sgd_dampening_and_weight_decay_by_hand():
    # w0 = 2, g = 1, wd 0.5: d = 1 + 0.5 * 2 = 2, v1 = d = 2 (no dampening on step 1), w1 = 1.8;
    # d2 = 1 + 0.9 = 1.9, v2 = 0.5 * 2 + (1 - 0.25) * 1.9 = 2.425, w2 = 1.8 - 0.2425 = 1.5575.
    p = _param([2.0])
    opt = SGD([p], lr=0.1, momentum=0.5, dampening=0.25, weight_decay=0.5)
    seen = []
    for _ in range(2):
        _set_grad(p, [1.0])
        opt.step()
        seen.append(p.data[0])
    np.testing.assert_allclose(seen, [1.8, 1.5575], rtol=0, atol=1e-14)


def test_adam_first_steps_move_by_lr_times_sign():
    # Constant gradient: m_hat = g and v_hat = g^2 exactly, so each step is lr*g / (|g| + eps).
    p = _param([1.0, -2.0, 0.5])
    g = np.array([3.0, -0.25, 1e-3])
    opt = Adam([p], lr=0.01, eps=1e-8)
    for step in range(1, 4):
        _set_grad(p, g)
        opt.step()
        expected = np.array([1.0, -2.0, 0.5]) - step * 0.01 * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


def test_adamw_decays_weights_before_the_adam_step():
    p = _param([2.0, -4.0])
    g = np.array([1.0, 1.0])
    _set_grad(p, g)
    AdamW([p], lr=0.1, weight_decay=0.5, eps=0.0).step()
    expected = np.array([2.0, -4.0]) * (1 - 0.1 * 0.5) - 0.1 * np.sign(g)
    np.testing.assert_allclose(p.data, expected, rtol=1e-14)


def test_adam_l2_weight_decay_enters_the_gradient():
    # g_eff = g + wd * w = 0 here, so m stays 0 and the weight must not move (eps > 0).
    p = _param([2.0])
    _set_grad(p, [-1.0])
    Adam([p], lr=0.1, weight_decay=0.5).step()
    assert p.data[0] == 2.0


# ----------------------------------------------------------------- NumPy references
def _ref_sgd(w, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    w = w.copy()
    v = None
    for g in grads:
        d = g + weight_decay * w
        if momentum:
            v = d.copy() if v is None else momentum * v + (1 - dampening) * d
            d = d + momentum * v if nesterov else v
        w = w - lr * d
    return w


def _ref_adam(w, grads, lr, betas, eps, weight_decay, decoupled):
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - betas[0] ** t)
        v_hat = v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


SGD_CONFIGS = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3},
    {"momentum": 0.8, "nesterov": True},
    {"weight_decay": 0.05},
    {"momentum": 0.7, "nesterov": True, "weight_decay": 0.1},
]


@pytest.mark.parametrize("config", SGD_CONFIGS, ids=str)
def test_sgd_matches_the_reference_rule(config, rng):
    w0 = rng.standard_normal((3, 4))
    grads = _grads(rng, (3, 4), 10)
    p = _param(w0)
    opt = SGD([p], lr=0.05, **config)
    for g in grads:
        _set_grad(p, g)
        opt.step()
    np.testing.assert_allclose(p.data, _ref_sgd(w0, grads, 0.05, **config), rtol=1e-12)


@pytest.mark.parametrize(
    "cls, config",
    [
        (Adam, {}),
        (Adam, {"betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
        (AdamW, {}),
        (AdamW, {"betas": (0.8, 0.99), "weight_decay": 0.3}),
    ],
    ids=["adam", "adam-l2", "adamw", "adamw-custom"],
)
def test_adam_matches_the_reference_rule(cls, config, rng):
    w0 = rng.standard_normal((2, 5))
    grads = _grads(rng, (2, 5), 10)
    p = _param(w0)
    opt = cls([p], lr=0.01, **config)
    for g in grads:
        _set_grad(p, g)
        opt.step()
    full = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2 if cls is AdamW else 0.0}
    full.update(config)
    expected = _ref_adam(w0, grads, 0.01, decoupled=cls is AdamW, **full)
    np.testing.assert_allclose(p.data, expected, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------- dtypes, skipping, training
OPTIMIZERS = [
    ("sgd", lambda ps: SGD(ps, lr=0.1)),
    ("sgd-nesterov-wd", lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("sgd-dampening", lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.5)),
    ("adam-l2", lambda ps: Adam(ps, lr=0.01, weight_decay=0.1)),
    ("adamw", lambda ps: AdamW(ps, lr=0.01)),
    # NumPy float64 scalars as hyper-parameters must not promote float32 weights.
    ("adam-np-scalars", lambda ps: Adam(ps, lr=np.float64(0.01), betas=(np.float64(0.9), 0.99))),
]


@pytest.mark.parametrize("make", [m for _, m in OPTIMIZERS], ids=[n for n, _ in OPTIMIZERS])
def test_float32_parameters_and_state_stay_float32(make, rng):
    p = _param(rng.standard_normal((4, 3)), dtype=np.float32)
    opt = make([p])
    for _ in range(3):
        _set_grad(p, rng.standard_normal((4, 3)))
        opt.step()
    assert p.data.dtype == np.float32
    for value in opt.state[0].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32


@pytest.mark.parametrize("make", [m for _, m in OPTIMIZERS], ids=[n for n, _ in OPTIMIZERS])
def test_parameters_without_grad_are_skipped(make, rng):
    a = _param(rng.standard_normal(3))
    b = _param(rng.standard_normal(3))
    before = b.data.copy()
    opt = make([a, b])
    _set_grad(a, np.ones(3))
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert opt.state[1] == {}
    assert not np.array_equal(a.data, before)


def test_step_updates_in_place_so_views_see_the_change():
    p = _param([1.0, 2.0])
    view = p.data
    _set_grad(p, [1.0, 1.0])
    SGD([p], lr=0.5).step()
    assert p.data is view
    np.testing.assert_allclose(view, [0.5, 1.5])


def test_adam_fits_a_least_squares_problem_through_backward(rng):
    x = cr.tensor(rng.standard_normal((32, 3)))
    w_true = np.array([[1.5], [-2.0], [0.5]])
    y = cr.tensor(x.data @ w_true)
    w = cr.tensor(np.zeros((3, 1)), requires_grad=True)
    opt = Adam([w], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w.data, w_true, atol=1e-3)


def test_zero_grad_sets_none_or_zeros():
    p = _param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    _set_grad(p, [3.0, 4.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_param_groups_have_their_own_hyper_parameters():
    a = _param([1.0])
    b = _param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    _set_grad(a, [1.0])
    _set_grad(b, [1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9)
    assert b.data[0] == pytest.approx(0.5)


# ----------------------------------------------------------------- error paths
BAD_CONSTRUCTIONS = [
    ("empty list", lambda p: SGD([], lr=0.1), ValueError, "empty parameter list"),
    ("empty generator", lambda p: Adam(iter([])), ValueError, "empty parameter list"),
    ("single tensor", lambda p: SGD(p, lr=0.1), TypeError, "iterable of tensors"),
    ("ndarray item", lambda p: SGD([np.ones(3)], lr=0.1), TypeError, "ndarray"),
    ("no requires_grad", lambda p: SGD([cr.tensor([1.0])], lr=0.1), ValueError, "require"),
    ("non-leaf", lambda p: SGD([p * 2], lr=0.1), ValueError, "not a leaf"),
    ("duplicate", lambda p: SGD([p, p], lr=0.1), ValueError, "more than once"),
    ("negative lr", lambda p: SGD([p], lr=-0.1), ValueError, "lr"),
    ("nan lr", lambda p: Adam([p], lr=float("nan")), ValueError, "lr"),
    ("lr not a number", lambda p: SGD([p], lr="0.1"), TypeError, "lr"),
    ("negative momentum", lambda p: SGD([p], lr=0.1, momentum=-0.5), ValueError, "momentum"),
    ("negative dampening", lambda p: SGD([p], lr=0.1, dampening=-1), ValueError, "dampening"),
    ("sgd weight decay", lambda p: SGD([p], lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    ("nesterov no momentum", lambda p: SGD([p], lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (
        "nesterov dampening",
        lambda p: SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        ValueError,
        "Nesterov",
    ),
    ("beta1 = 1", lambda p: Adam([p], betas=(1.0, 0.999)), ValueError, "beta1"),
    ("beta1 < 0", lambda p: Adam([p], betas=(-0.1, 0.999)), ValueError, "beta1"),
    ("beta2 > 1", lambda p: AdamW([p], betas=(0.9, 1.5)), ValueError, "beta2"),
    ("betas not a pair", lambda p: Adam([p], betas=(0.9,)), ValueError, "betas"),
    ("negative eps", lambda p: Adam([p], eps=-1e-8), ValueError, "eps"),
    ("adam weight decay", lambda p: Adam([p], weight_decay=-0.1), ValueError, "weight_decay"),
]


@pytest.mark.parametrize(
    "build, error, match",
    [case[1:] for case in BAD_CONSTRUCTIONS],
    ids=[case[0] for case in BAD_CONSTRUCTIONS],
)
def test_bad_construction_raises_a_clear_error(build, error, match):
    p = _param([1.0, 2.0])
    with pytest.raises(error, match=match):
        build(p)


def test_gradient_of_the_wrong_shape_is_rejected():
    # refused at the assignment, the point of the mistake, not later inside step()
    p = _param([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        p.grad = cr.tensor(np.ones(3))


# ----------------------------------------------------------------- state_dict and resume
RESUMABLE = [
    ("sgd-momentum", lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd-nesterov", lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", lambda ps: Adam(ps, lr=0.01, weight_decay=0.01)),
    ("adamw", lambda ps: AdamW(ps, lr=0.01)),
]


def _run(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            _set_grad(p, g)
        opt.step()


@pytest.mark.parametrize("make", [m for _, m in RESUMABLE], ids=[n for n, _ in RESUMABLE])
@pytest.mark.parametrize("through_json", [False, True], ids=["in-memory", "json"])
def test_resume_from_state_dict_is_bit_exact(make, through_json, rng):
    shapes = [(3, 2), (2,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]

    straight = [_param(w, np.float32) for w in start]
    _run(make(straight), straight, grads)

    first = [_param(w, np.float32) for w in start]
    opt_a = make(first)
    _run(opt_a, first, grads[:5])
    state = opt_a.state_dict()
    if through_json:  # the non-array part as JSON, the arrays as they are (cr.save)
        arrays = {(i, k): v for i, e in state["state"].items() for k, v in e.items()}
        rest = json.loads(json.dumps({"param_groups": state["param_groups"]}))
        rest["state"] = {}
        for (i, name), value in arrays.items():
            rest["state"].setdefault(str(i), {})[name] = value
        state = rest
    resumed = [_param(p.data, np.float32) for p in first]
    opt_b = make(resumed)
    opt_b.load_state_dict(state)
    _run(opt_b, resumed, grads[5:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_holds_copies_and_plain_values():
    p = _param([1.0, 2.0])
    opt = Adam([p], lr=0.1)
    _set_grad(p, [1.0, 1.0])
    opt.step()
    state = opt.state_dict()
    saved = state["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], saved)
    assert state["state"][0]["step"] == 1 and isinstance(state["state"][0]["step"], int)
    assert state["param_groups"][0]["params"] == [0]
    json.dumps(state["param_groups"])  # hyper-parameters are JSON-ready


def _adam_state(shape=(2,)):
    p = _param(np.ones(shape))
    opt = Adam([p], lr=0.1)
    _set_grad(p, np.ones(shape))
    opt.step()
    return opt.state_dict()


BAD_STATES = [
    ("buffer shape", lambda s: s["state"][0].update(exp_avg=np.zeros(3)), "shape"),
    ("unknown buffer", lambda s: s["state"][0].update(velocity=np.zeros(2)), "unknown"),
    ("index out of range", lambda s: s["state"].update({5: {}}), "out of range"),
    ("parameter count", lambda s: s["param_groups"][0].update(params=[0, 1]), "parameters"),
    ("group count", lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "groups"),
    ("bad hyper-parameter", lambda s: s["param_groups"][0].update(lr=-1.0), "lr"),
    ("missing key", lambda s: s.pop("state"), "state"),
]


@pytest.mark.parametrize(
    "corrupt, match", [c[1:] for c in BAD_STATES], ids=[c[0] for c in BAD_STATES]
)
def test_load_state_dict_validates_and_changes_nothing(corrupt, match):
    state = _adam_state()
    corrupt(state)
    p = _param(np.ones(2))
    opt = Adam([p], lr=0.5)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    assert opt.state == [{}]
    assert opt.param_groups[0]["lr"] == 0.5


# ----------------------------------------------------------------- schedulers
def _lrs(scheduler_factory, lr, epochs):
    opt = SGD([_param([1.0])], lr=lr)
    scheduler = scheduler_factory(opt)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        opt.step()
        scheduler.step()
        seen.append(scheduler.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == seen[-1]
    return seen


def test_step_lr_by_hand():
    seen = _lrs(lambda o: StepLR(o, step_size=2, gamma=0.5), 1.0, 6)
    np.testing.assert_allclose(seen, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125], rtol=1e-15)


def test_cosine_annealing_by_hand():
    seen = _lrs(lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.1), 1.1, 8)
    c = math.cos(math.pi / 4)
    half = [1.1, 0.1 + (1 + c) / 2, 0.6, 0.1 + (1 - c) / 2, 0.1]
    np.testing.assert_allclose(seen, half + half[-2::-1][:4], rtol=1e-14)


@pytest.mark.parametrize(
    "factory",
    [lambda o: StepLR(o, 3, gamma=0.3), lambda o: CosineAnnealingLR(o, 7, eta_min=1e-3)],
    ids=["step", "cosine"],
)
def test_scheduler_resume_gives_the_same_sequence(factory):
    straight = _lrs(factory, 0.2, 10)
    opt = SGD([_param([1.0])], lr=0.2)
    scheduler = factory(opt)
    for _ in range(4):
        scheduler.step()
    saved_sched = json.loads(json.dumps(scheduler.state_dict()))
    saved_opt = json.loads(json.dumps(opt.state_dict()))

    opt_b = SGD([_param([1.0])], lr=123.0)
    scheduler_b = factory(opt_b)
    opt_b.load_state_dict(saved_opt)
    scheduler_b.load_state_dict(saved_sched)
    assert opt_b.param_groups[0]["lr"] == straight[4]
    rest = []
    for _ in range(6):
        scheduler_b.step()
        rest.append(scheduler_b.get_last_lr()[0])
    assert rest == straight[5:]


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda o: StepLR(o, step_size=0), ValueError),
        (lambda o: StepLR(o, step_size=1.5), TypeError),
        (lambda o: StepLR(o, step_size=2, gamma=-0.1), ValueError),
        (lambda o: CosineAnnealingLR(o, T_max=0), ValueError),
        (lambda o: CosineAnnealingLR(o, T_max=5, eta_min=-1.0), ValueError),
        (lambda o: CosineAnnealingLR(o, T_max=5, last_epoch=3), ValueError),
        (lambda o: StepLR("not an optimizer", 2), TypeError),
    ],
    ids=["step_size 0", "step_size float", "gamma<0", "T_max 0", "eta_min<0", "resume", "type"],
)
def test_bad_scheduler_arguments(build, error):
    opt = SGD([_param([1.0])], lr=0.1)
    with pytest.raises(error):
        build(opt)
