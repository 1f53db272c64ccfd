"""Optional oracle: optimizers and schedulers give PyTorch's numbers (float64, 10 steps)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from chainrule.optim.lr_scheduler import CosineAnnealingLR, StepLR

torch = pytest.importorskip("torch")

CASES = [
    ("sgd", SGD, "SGD", {"lr": 0.1}),
    ("sgd-momentum", SGD, "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("sgd-dampening", SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.4}),
    ("sgd-nesterov", SGD, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd-all", SGD, "SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("adam", Adam, "Adam", {"lr": 0.01}),
    ("adam-l2", Adam, "Adam", {"lr": 0.02, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 1}),
    ("adam-low-beta", Adam, "Adam", {"lr": 0.02, "betas": (0.3, 0.5)}),
    ("adamw", AdamW, "AdamW", {"lr": 0.01}),
    ("adamw-custom", AdamW, "AdamW", {"lr": 0.03, "betas": (0.85, 0.99), "weight_decay": 0.2}),
]


V02_CASES = [
    ("rmsprop", RMSprop, "RMSprop", {"lr": 0.01}),
    ("rmsprop-alpha", RMSprop, "RMSprop", {"lr": 0.02, "alpha": 0.9, "eps": 1e-6}),
    ("rmsprop-momentum", RMSprop, "RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop-centered", RMSprop, "RMSprop", {"lr": 0.01, "centered": True}),
    ("rmsprop-decay", RMSprop, "RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
    (
        "rmsprop-all",
        RMSprop,
        "RMSprop",
        {"lr": 0.005, "alpha": 0.95, "momentum": 0.5, "centered": True, "weight_decay": 0.2},
    ),
    ("adagrad", Adagrad, "Adagrad", {"lr": 0.1}),
    ("adagrad-lr-decay", Adagrad, "Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("adagrad-decay", Adagrad, "Adagrad", {"lr": 0.1, "weight_decay": 0.3}),
    ("adagrad-accumulator", Adagrad, "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    (
        "adagrad-all",
        Adagrad,
        "Adagrad",
        {
            "lr": 0.2,
            "lr_decay": 0.1,
            "weight_decay": 0.05,
            "initial_accumulator_value": 0.1,
            "eps": 1e-6,
        },
    ),
]


def _ten_steps(ours, theirs, config, rng):
    """The same 10 random gradients through our optimizer and PyTorch's, from the same
    start: (our optimizer, our parameters, PyTorch's optimizer, its parameters)."""
    shapes = [(4, 3), (3,)]
    start = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]

    params = [cr.tensor(w, requires_grad=True) for w in start]
    opt = ours(params, **config)
    t_params = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in start]
    t_opt = getattr(torch.optim, theirs)(t_params, foreach=False, **config)
    for step_grads in grads:
        for p, t, g in zip(params, t_params, step_grads):
            p.grad = cr.tensor(g.copy())
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
    return opt, params, t_opt, t_params


ALL_CASES = CASES + V02_CASES


@pytest.mark.parametrize(
    "ours, theirs, config", [c[1:] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES]
)
def test_ten_steps_match_torch(ours, theirs, config, rng):
    _, params, _, t_params = _ten_steps(ours, theirs, config, rng)
    for p, t in zip(params, t_params):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "ours, theirs, config", [c[1:] for c in V02_CASES], ids=[c[0] for c in V02_CASES]
)
def test_the_state_has_torchs_names_and_values(ours, theirs, config, rng):
    """RMSprop's and Adagrad's state under PyTorch's names (square_avg, sum, ...)."""
    opt, _, t_opt, t_params = _ten_steps(ours, theirs, config, rng)
    for index, t in enumerate(t_params):
        for name, value in t_opt.state[t].items():
            if name != "step":
                np.testing.assert_allclose(
                    opt.state[index][name], value.numpy(), rtol=1e-10, atol=1e-12
                )


@pytest.mark.parametrize(
    "ours, theirs, kwargs",
    [
        (StepLR, "StepLR", {"step_size": 3, "gamma": 0.5}),
        (StepLR, "StepLR", {"step_size": 1, "gamma": 0.9}),
        (CosineAnnealingLR, "CosineAnnealingLR", {"T_max": 10}),
        (CosineAnnealingLR, "CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ],
    ids=["step3", "step1", "cosine", "cosine-eta-min"],
)
def test_scheduler_sequences_match_torch(ours, theirs, kwargs):
    opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=0.3)
    scheduler = ours(opt, **kwargs)
    t_opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.3)
    t_scheduler = getattr(torch.optim.lr_scheduler, theirs)(t_opt, **kwargs)
    ours_seen = [scheduler.get_last_lr()[0]]
    theirs_seen = [t_scheduler.get_last_lr()[0]]
    for _ in range(25):  # past T_max: the cosine turns back up in both
        opt.step()
        t_opt.step()
        scheduler.step()
        t_scheduler.step()
        ours_seen.append(scheduler.get_last_lr()[0])
        theirs_seen.append(t_scheduler.get_last_lr()[0])
    np.testing.assert_allclose(ours_seen, theirs_seen, rtol=1e-12, atol=1e-15)
