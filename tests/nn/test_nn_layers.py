"""Layers: forward against NumPy references, gradcheck in float64, init, errors, dtypes."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.nn import init


def conv2d_reference(x, w, b, stride, padding):
    """The slide's filter convolution, one output pixel at a time (slow, obviously right)."""
    (sh, sw), (ph, pw) = stride, padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, height, width = x.shape
    out_channels, _, kh, kw = w.shape
    ho, wo = (height - kh) // sh + 1, (width - kw) // sw + 1
    y = np.zeros((n, out_channels, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", window, w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool_reference(x, k, s, reduce):
    n, c, height, width = x.shape
    ho, wo = (height - k) // s + 1, (width - k) // s + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(x[:, :, i * s : i * s + k, j * s : j * s + k], axis=(2, 3))
    return y


# ----------------------------------------------------------------------- Linear
def test_linear_is_x_at_w_plus_b_with_weight_in_by_out(rng):
    layer = nn.Linear(3, 2)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    expected = x @ layer.weight.data + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-6)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_linear_gradcheck(rng):
    layer = nn.Linear(3, 2).double()

    def f(x, w, b):
        layer.weight, layer.bias = w, b  # the tensors gradcheck differentiates
        return layer(x)

    x = rng.standard_normal((4, 3))
    assert cr.gradcheck(f, (x, layer.weight.data.copy(), layer.bias.data.copy()))


def test_linear_init_is_pytorch_default_and_reproducible():
    cr.manual_seed(3)
    first = nn.Linear(100, 50)
    cr.manual_seed(3)
    second = nn.Linear(100, 50)
    np.testing.assert_array_equal(first.weight.data, second.weight.data)
    bound = 1 / math.sqrt(100)
    for p in (first.weight, first.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
    assert np.abs(first.weight.data).max() > 0.9 * bound  # uniform over the whole range
    explicit = nn.Linear(100, 50, generator=np.random.default_rng(7))
    again = nn.Linear(100, 50, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(explicit.weight.data, again.weight.data)
    assert not np.array_equal(explicit.weight.data, first.weight.data)


def test_linear_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(5, 4\).*\(3, 2\)"):
        nn.Linear(3, 2)(cr.zeros(5, 4))


# ----------------------------------------------------------------------- Conv2d
CONV_CASES = [((1, 1), (0, 0)), ((2, 2), (1, 1)), ((2, 1), (0, 2))]


@pytest.mark.parametrize("stride, padding", CONV_CASES)
def test_conv2d_matches_the_slide_definition(rng, stride, padding):
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    np.testing.assert_allclose(y.data, conv2d_reference(x, w, b, stride, padding), atol=1e-12)


@pytest.mark.parametrize("stride, padding", CONV_CASES)
def test_conv2d_gradcheck(rng, stride, padding):
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    assert cr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), (x, w, b))


def test_conv2d_is_differentiable_twice(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((2, 2, 2, 2))
    assert cr.gradgradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), (x, w))
    assert cr.gradgradcheck(lambda x, w: F.conv2d(x, w), (x, w))


def test_conv2d_module_shapes_init_and_dtype():
    cr.manual_seed(0)
    conv = nn.Conv2d(3, 8, 5, stride=2, padding=2)
    assert conv.weight.shape == (8, 3, 5, 5) and conv.bias.shape == (8,)
    bound = 1 / math.sqrt(3 * 5 * 5)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    x = cr.randn(2, 3, 9, 9, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 8, 5, 5) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and conv.weight.grad.dtype == np.float32


def test_conv2d_wrong_channel_count_names_the_shapes():
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"1 channels.*\(2, 1, 8, 8\).*expects 3.*\(4, 3, 3, 3\)"):
        conv(cr.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="4 dimensions"):
        conv(cr.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv(cr.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="stride"):
        nn.Conv2d(3, 4, 3, stride=0)


# ----------------------------------------------------------------------- pooling
POOL_CASES = [(2, None), (3, 1), (2, 3)]  # non-overlapping, overlapping, with gaps


@pytest.mark.parametrize("k, s", POOL_CASES)
def test_pooling_matches_references_and_gradcheck(rng, k, s):
    x = rng.standard_normal((2, 2, 7, 7))
    stride = k if s is None else s
    np.testing.assert_allclose(F.max_pool2d(x, k, s).data, pool_reference(x, k, stride, np.max))
    np.testing.assert_allclose(
        F.avg_pool2d(x, k, s).data, pool_reference(x, k, stride, np.mean), atol=1e-12
    )
    small = x[:1, :2, :5, :5]
    assert cr.gradcheck(lambda x: F.max_pool2d(x, k, s), small)
    assert cr.gradcheck(lambda x: F.avg_pool2d(x, k, s), small)


def test_pooling_is_differentiable_twice(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    assert cr.gradgradcheck(lambda x: F.max_pool2d(x, 2, 1) ** 2, x)
    assert cr.gradgradcheck(lambda x: F.avg_pool2d(x, 2, 1) ** 2, x)


def test_max_pool_tie_gives_the_gradient_to_the_first_maximum():
    x = cr.tensor(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]), requires_grad=True)
    nn.MaxPool2d(2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_overlapping_max_pool_accumulates_gradient():
    x = cr.tensor(np.array([[[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]]]))
    x.requires_grad = True
    nn.MaxPool2d(2, stride=1)(x).sum().backward()
    assert x.grad.data[0, 0, 1, 1] == 4.0 and x.grad.data.sum() == 4.0


# ----------------------------------------------------------------------- BatchNorm
@pytest.mark.parametrize(
    "layer, shape",
    [(nn.BatchNorm1d, (5, 3)), (nn.BatchNorm1d, (4, 3, 2)), (nn.BatchNorm2d, (3, 3, 2, 2))],
)
def test_batchnorm_train_mode_gradcheck(rng, layer, shape):
    bn = layer(3).double()

    def f(x, w, b):
        bn.weight, bn.bias = w, b
        return bn(x)

    x = rng.standard_normal(shape)
    w, b = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    assert cr.gradcheck(f, (x, w, b), atol=1e-6)


def test_batchnorm_running_statistics_and_eval(rng):
    bn = nn.BatchNorm2d(2, momentum=0.2)
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 3 + 1
    y = bn(x)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    normalized = (x - mean.reshape(1, 2, 1, 1)) / np.sqrt(var.reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(y.data, normalized, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.data, 0.2 * mean, rtol=1e-5)
    unbiased = var * 36 / 35
    np.testing.assert_allclose(bn.running_var.data, 0.8 + 0.2 * unbiased, rtol=1e-5)
    assert bn.running_mean.dtype == np.float32 and y.dtype == np.float32
    bn.eval()
    z = bn(x)
    expected = (x - bn.running_mean.data.reshape(1, 2, 1, 1)) / np.sqrt(
        bn.running_var.data.reshape(1, 2, 1, 1) + 1e-5
    )
    np.testing.assert_allclose(z.data, expected, atol=1e-5)
    before = bn.running_mean.data.copy()
    bn(x)
    np.testing.assert_array_equal(bn.running_mean.data, before)  # eval: no update


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"expected 3 channels.*\(4, 2\)"):
        nn.BatchNorm1d(3)(cr.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.BatchNorm2d(3)(cr.zeros(4, 3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(cr.zeros(1, 3))
    nn.BatchNorm1d(3).eval()(cr.zeros(1, 3))  # fine with running statistics


# ----------------------------------------------------------------------- Dropout
@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match="0 <= p < 1"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="0 <= p < 1"):
        F.dropout(cr.ones(3), p)


def test_dropout_is_inverted_seeded_and_off_in_eval():
    layer = nn.Dropout(0.25)
    x = cr.ones(200, 50, requires_grad=True)
    cr.manual_seed(5)
    y = layer(x)
    kept = y.data != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y.data[kept], 1 / 0.75, rtol=1e-6)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # the gradient is the scaled mask
    cr.manual_seed(5)
    np.testing.assert_array_equal(layer(x).data, y.data)
    layer.eval()
    assert layer(x) is x
    assert nn.Dropout(0.0)(x) is x


# ----------------------------------------------------------------------- activations, shapes
ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(axis=0), lambda x: np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)),
    (nn.Softmax(), lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)),
    (nn.LogSoftmax(), lambda x: x - np.log(np.exp(x).sum(axis=-1, keepdims=True))),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize("module, reference", ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_activation_modules(rng, module, reference):
    x = rng.uniform(0.1, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4))  # away from relu's kink
    np.testing.assert_allclose(module(cr.tensor(x)).data, reference(x), rtol=1e-12)
    if not isinstance(module, nn.Identity):
        assert cr.gradcheck(module, x)


def test_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(2)(x).shape == (2, 3, 20)
    assert cr.gradcheck(nn.Flatten(), x[:, :, :2, :2])


def test_float32_stays_float32_through_a_cnn():
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(2, 3), nn.Tanh(),
    )  # fmt: skip
    x = cr.randn(4, 1, 4, 4)
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0]))
    assert loss.dtype == np.float32
    loss.backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


# ----------------------------------------------------------------------- init
def test_fans_follow_chainrule_layouts():
    assert init.fan_in_and_fan_out((3, 5)) == (3, 5)  # Linear: (in, out)
    assert init.fan_in_and_fan_out((8, 3, 5, 5)) == (75, 200)  # conv: (out, in, kh, kw)
    with pytest.raises(ValueError, match="at least 2"):
        init.fan_in_and_fan_out((4,))


def test_initialisers_statistics_dtype_and_reproducibility():
    w = cr.zeros(400, 100)
    assert init.xavier_uniform_(w, generator=np.random.default_rng(0)) is w
    bound = math.sqrt(6 / 500)
    assert w.dtype == np.float32 and np.abs(w.data).max() <= bound
    assert np.abs(w.data).max() > 0.95 * bound
    init.xavier_normal_(w, gain=2.0, generator=np.random.default_rng(0))
    np.testing.assert_allclose(w.data.std(), 2 * math.sqrt(2 / 500), rtol=0.02)
    init.kaiming_normal_(w, nonlinearity="relu", generator=np.random.default_rng(0))
    np.testing.assert_allclose(w.data.std(), math.sqrt(2 / 400), rtol=0.02)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    np.testing.assert_allclose(w.data.std(), math.sqrt(2 / 100), rtol=0.02)
    init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(w.data).max() <= 1 / math.sqrt(400)
    init.uniform_(w, -2, -1)
    assert w.data.min() >= -2 and w.data.max() <= -1
    init.normal_(w, 3.0, 0.5, generator=np.random.default_rng(1))
    np.testing.assert_allclose([w.data.mean(), w.data.std()], [3.0, 0.5], rtol=0.02)
    assert w.dtype == np.float32
    a = init.normal_(cr.zeros(5, 5), generator=np.random.default_rng(9))
    b = init.normal_(cr.zeros(5, 5), generator=np.random.default_rng(9))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(init.zeros_(cr.ones(2)).data, [0, 0])
    np.testing.assert_array_equal(init.ones_(cr.zeros(2)).data, [1, 1])
    np.testing.assert_array_equal(init.constant_(cr.zeros(2), 0.5).data, [0.5, 0.5])
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_uniform_(w, mode="fan_sideways")


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="unknown"):
        init.calculate_gain("swish")


def test_a_whole_cnn_loss_is_differentiable_twice(rng):
    """create_graph through conv, batch norm, pooling, linear and each classification loss."""
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh(), nn.MaxPool2d(2),
        nn.AvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).double()  # fmt: skip
    x = rng.standard_normal((2, 1, 4, 4))
    assert cr.gradgradcheck(lambda x: F.cross_entropy(model(x), np.array([0, 2])), x)
    assert cr.gradgradcheck(lambda x: F.cross_entropy(model(x), np.full((2, 3), 1 / 3)), x)
    target = np.full((2, 3), 0.3)
    assert cr.gradgradcheck(lambda x: F.binary_cross_entropy_with_logits(model(x), target), x)
