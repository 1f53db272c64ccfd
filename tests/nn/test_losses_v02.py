"""The v0.2 losses against PyTorch: nll_loss, huber_loss, smooth_l1_loss, kl_div and
binary_cross_entropy (``F`` and module forms), every reduction, in float64, with the edge
values (|d| = δ or β, zeros in a KL target, p = 0 and 1), gradcheck and gradgradcheck."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

TOL = {"rtol": 1e-10, "atol": 1e-12}
REDUCTIONS = ["mean", "sum", "none"]


def _torch():
    return pytest.importorskip("torch")


def _against_torch(ours, theirs, arrays, rng):
    """Same values and the same gradients w.r.t. every array (a random upstream gradient
    for reduction "none")."""
    torch = _torch()
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, t_y = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), **TOL)
    upstream = rng.standard_normal(y.shape)
    y.backward(cr.tensor(upstream))
    t_y.backward(torch.tensor(upstream))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), **TOL)


# ----------------------------------------------------------------------- nll_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "shape, labels",
    [((4, 3), np.array([0, 2, 2, 1])), ((2, 3, 2), np.array([[0, 2], [1, 1]])),
     ((3,), np.array(2))],
    ids=["rows", "spatial", "one-example"],
)  # fmt: skip
def test_nll_loss_matches_torch(shape, labels, reduction, rng):
    torch = _torch()
    x = rng.standard_normal(shape)
    _against_torch(
        lambda x: F.nll_loss(x, labels, reduction),
        lambda x: torch.nn.functional.nll_loss(x, torch.tensor(labels), reduction=reduction),
        [x], rng,
    )  # fmt: skip


def test_nll_of_log_softmax_is_cross_entropy(rng):
    z = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    a = F.nll_loss(F.log_softmax(cr.tensor(z), axis=1), labels)
    assert a.item() == pytest.approx(F.cross_entropy(cr.tensor(z), labels).item(), rel=1e-12)


def test_nll_loss_module_gradcheck_and_errors(rng):
    labels = np.array([1, 0, 2])
    x = cr.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    assert cr.gradcheck(lambda x: nn.NLLLoss()(x, labels), x)
    assert cr.gradgradcheck(lambda x: F.nll_loss(x, labels, "sum") ** 2, x)
    with pytest.raises(ValueError, match=r"range \[0, 2\] for 3 classes; got out-of-range"):
        F.nll_loss(x, np.array([0, 3, 1]))
    with pytest.raises(ValueError, match="labels must be integers"):
        F.nll_loss(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"must have shape \(3,\)"):
        F.nll_loss(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.NLLLoss(reduction="batchmean")


# ----------------------------------------------------------------------- huber, smooth L1
def _residual_pair(rng, width):
    """Predictions and targets whose differences include ±width exactly, and 0."""
    target = rng.standard_normal((3, 4))
    d = rng.standard_normal((3, 4)) * 2 * width
    d.flat[:4] = [width, -width, 0.0, 3 * width]
    return target + d, target


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_loss_matches_torch_including_at_delta(delta, reduction, rng):
    torch = _torch()
    x, y = _residual_pair(rng, delta)
    _against_torch(
        lambda x, y: F.huber_loss(x, y, delta, reduction),
        lambda x, y: torch.nn.functional.huber_loss(x, y, reduction=reduction, delta=delta),
        [x, y], rng,
    )  # fmt: skip
    _against_torch(
        lambda x, y: nn.HuberLoss(reduction, delta=delta)(x, y),
        torch.nn.HuberLoss(reduction=reduction, delta=delta), [x, y], rng,
    )  # fmt: skip


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1_loss_matches_torch_including_at_beta(beta, reduction, rng):
    torch = _torch()
    x, y = _residual_pair(rng, beta or 1.0)
    _against_torch(
        lambda x, y: F.smooth_l1_loss(x, y, beta, reduction),
        lambda x, y: torch.nn.functional.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
        [x, y], rng,
    )  # fmt: skip
    _against_torch(
        lambda x, y: nn.SmoothL1Loss(reduction, beta=beta)(x, y),
        torch.nn.SmoothL1Loss(reduction=reduction, beta=beta), [x, y], rng,
    )  # fmt: skip


def test_huber_is_beta_times_smooth_l1(rng):
    x, y = _residual_pair(rng, 0.7)
    huber = F.huber_loss(x, y, 0.7, "none").data
    np.testing.assert_allclose(huber, 0.7 * F.smooth_l1_loss(x, y, 0.7, "none").data, **TOL)


@pytest.mark.parametrize("loss", [F.huber_loss, F.smooth_l1_loss])
def test_huber_and_smooth_l1_gradcheck_and_gradgradcheck(loss, rng):
    x = cr.tensor(rng.standard_normal((2, 3)) * 2, requires_grad=True)
    y = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert cr.gradcheck(lambda x, y: loss(x, y, 0.5), (x, y))
    assert cr.gradgradcheck(lambda x, y: loss(x, y, 0.5, "none"), (x, y))


def test_huber_and_smooth_l1_errors():
    x = cr.zeros((2, 3))
    with pytest.raises(ValueError, match="delta must be positive"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        nn.SmoothL1Loss(beta=-1.0)
    with pytest.raises(ValueError, match=r"prediction shape \(2, 3\) and target shape \(3,\)"):
        F.smooth_l1_loss(x, np.zeros(3))
    assert repr(nn.HuberLoss(delta=2.0)) == "HuberLoss(delta=2.0)"


# ----------------------------------------------------------------------- kl_div
def _distributions(rng, zeros=True):
    log_q = np.log(rng.dirichlet(np.ones(4), 3))
    t = rng.dirichlet(np.ones(4), 3)
    if zeros:
        t[0, 1], t[2, 3] = 0.0, 0.0
        t /= t.sum(axis=1, keepdims=True)
    return log_q, t


@pytest.mark.filterwarnings("ignore:reduction. 'mean'")  # torch's warning about "mean"
@pytest.mark.parametrize("reduction", ["batchmean", *REDUCTIONS])
def test_kl_div_matches_torch_with_zeros_in_the_target(reduction, rng):
    torch = _torch()
    log_q, t = _distributions(rng)
    _against_torch(
        lambda q: F.kl_div(q, t, reduction),
        lambda q: torch.nn.functional.kl_div(q, torch.tensor(t), reduction=reduction),
        [log_q], rng,
    )  # fmt: skip
    assert np.isfinite(F.kl_div(log_q, t, "none").data).all()


def test_kl_div_gradient_wrt_the_target_and_log_target(rng):
    torch = _torch()
    log_q, t = _distributions(rng, zeros=False)
    _against_torch(F.kl_div, lambda q, t: torch.nn.functional.kl_div(q, t, reduction="batchmean"),
                   [log_q, t], rng)  # fmt: skip
    _against_torch(
        lambda q, t: F.kl_div(q, t, log_target=True),
        lambda q, t: torch.nn.functional.kl_div(q, t, reduction="batchmean", log_target=True),
        [log_q, np.log(t)], rng,
    )  # fmt: skip
    _against_torch(
        lambda q, t: nn.KLDivLoss(log_target=True)(q, t),
        torch.nn.KLDivLoss(reduction="batchmean", log_target=True), [log_q, np.log(t)], rng,
    )  # fmt: skip


def test_kl_div_is_zero_for_equal_distributions_and_batchmean_is_per_example(rng):
    log_q, t = _distributions(rng)
    assert F.kl_div(np.log(np.where(t > 0, t, 1.0)), t).item() == pytest.approx(0.0, abs=1e-15)
    total = F.kl_div(log_q, t, "sum").item()
    assert F.kl_div(log_q, t).item() == pytest.approx(total / 3)
    assert nn.KLDivLoss()(log_q, t).item() == pytest.approx(total / 3)
    assert repr(nn.KLDivLoss()) == "KLDivLoss()"
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.kl_div(log_q, t, "batchsum")


def test_kl_div_gradcheck_and_gradgradcheck(rng):
    log_q, t = _distributions(rng)
    q = cr.tensor(log_q, requires_grad=True)
    assert cr.gradcheck(lambda q: F.kl_div(q, t), q)
    assert cr.gradgradcheck(lambda q: F.kl_div(q, t, "none") ** 2, q)
    log_q, t = _distributions(rng, zeros=False)
    both = (cr.tensor(log_q, requires_grad=True), cr.tensor(t, requires_grad=True))
    assert cr.gradcheck(F.kl_div, both)
    assert cr.gradgradcheck(F.kl_div, both)


# ----------------------------------------------------------------------- BCE
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_matches_torch(reduction, rng):
    torch = _torch()
    p, t = rng.uniform(0.02, 0.98, (3, 4)), rng.uniform(0, 1, (3, 4))
    _against_torch(
        lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction),
        lambda p, t: torch.nn.functional.binary_cross_entropy(p, t, reduction=reduction),
        [p, t], rng,
    )  # fmt: skip
    w = rng.uniform(0, 2, (4,))
    theirs = torch.nn.BCELoss(weight=torch.tensor(w), reduction=reduction)
    _against_torch(
        lambda p: nn.BCELoss(weight=w, reduction=reduction)(p, t),
        lambda p: theirs(p, torch.tensor(t)), [p], rng,
    )  # fmt: skip


def test_binary_cross_entropy_at_p_zero_and_one_is_clamped_like_torch():
    torch = _torch()
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50])
    t = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    ours = F.binary_cross_entropy(p, t, reduction="none").data
    theirs = torch.nn.functional.binary_cross_entropy(
        torch.tensor(p), torch.tensor(t), reduction="none"
    )
    np.testing.assert_allclose(ours, theirs.numpy(), **TOL)
    np.testing.assert_allclose(ours, [0.0, 100.0, 100.0, 0.0, 100.0], **TOL)
    # the gradient there: finite, 0 from a clamped log, the true slope from the other term
    x = cr.tensor(p[:4], requires_grad=True)
    F.binary_cross_entropy(x, t[:4], reduction="sum").backward()
    np.testing.assert_allclose(x.grad.data, [1.0, 0.0, 0.0, -1.0])


def test_binary_cross_entropy_gradcheck_gradgradcheck_float32_and_errors(rng):
    p = cr.tensor(rng.uniform(0.35, 0.65, (2, 3)), requires_grad=True)
    t = cr.tensor(rng.uniform(0, 1, (2, 3)), requires_grad=True)
    # the continuity scan stays within [0.1, 0.9], where p is a probability
    assert cr.gradcheck(F.binary_cross_entropy, (p, t), continuity_radius=0.25)
    assert cr.gradgradcheck(F.binary_cross_entropy, (p, t))
    p32 = cr.tensor(rng.uniform(0.1, 0.9, (2, 3)).astype(np.float32), requires_grad=True)
    loss = nn.BCELoss()(p32, np.ones((2, 3)))
    loss.backward()
    assert loss.dtype == np.float32 and p32.grad.dtype == np.float32
    with pytest.raises(ValueError, match=r"probability in \[0, 1\] \(got min -0.5"):
        F.binary_cross_entropy(np.array([-0.5, 0.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not broadcast"):
        F.binary_cross_entropy(np.full((2, 2), 0.5), np.ones((2, 2)), weight=np.ones(3))


@pytest.mark.parametrize(
    "loss",
    [lambda x, y: F.huber_loss(x, y), lambda x, y: F.smooth_l1_loss(x, y),
     lambda x, y: F.kl_div(x, y), lambda x, y: F.binary_cross_entropy(x * 0 + 0.5, y)],
    ids=["huber", "smooth_l1", "kl_div", "bce"],
)  # fmt: skip
def test_float32_losses_stay_float32(loss, rng):
    x = cr.tensor(rng.uniform(0.1, 0.9, (2, 3)).astype(np.float32), requires_grad=True)
    y = loss(x, rng.uniform(0.1, 0.9, (2, 3)))  # a float64 constant target is cast
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
