"""cr.models: the command line's models, built from Python: shapes, parameter counts, and
the same weights as the same layers written out, from the same seed."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def count(model):
    return sum(p.size for p in model.parameters())


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


def test_lenet5_is_the_classic_stack_of_61706_parameters():
    model = cr.models.lenet5()
    assert isinstance(model, nn.Sequential) and len(model) == 12
    # conv 6·1·25+6, conv 16·6·25+16, fc 400·120+120, 120·84+84, 84·10+10
    assert count(model) == 156 + 2416 + 48120 + 10164 + 850 == 61706
    x = cr.tensor(np.zeros((3, 1, 28, 28), dtype=np.float32))
    assert model(x).shape == (3, 10)
    assert model.check((1, 28, 28)) == ("m", 10)


def test_lenet5_takes_channels_classes_activation_and_image_size():
    model = cr.models.lenet5(3, 7, activation="tanh", input_size=(32, 32))
    assert model[0].weight.shape == (6, 3, 5, 5)
    assert isinstance(model[1], nn.Tanh)
    assert model[7].weight.shape == (16 * 6 * 6, 120)  # 32×32: 16 maps of 6×6
    assert model(cr.tensor(np.zeros((2, 3, 32, 32), dtype=np.float32))).shape == (2, 7)


def test_mlp_and_perceptron_flatten_images_and_count_their_parameters():
    model = cr.models.mlp(784, (256, 128), 10)
    assert count(model) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert [type(m) for m in model] == [
        nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear
    ]  # fmt: skip
    assert model(cr.tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape == (2, 10)
    one = cr.models.mlp(10, 64, 1, activation="sigmoid")  # one hidden width as an int
    assert [type(m) for m in one] == [nn.Flatten, nn.Linear, nn.Sigmoid, nn.Linear]
    assert count(cr.models.mlp(64, (), 10)) == count(cr.models.perceptron(64, 10)) == 650
    rows = cr.models.mlp(784, (256, 128), 10, flatten=False)  # the benchmarks' MLP
    assert [type(m) for m in rows] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]


def test_small_cnn_is_the_cnn_for_digits_8x8():
    model = cr.models.small_cnn()
    assert count(model) == 160 + 4640 + 32 * 2 * 2 * 64 + 64 + 650
    assert model(cr.tensor(np.zeros((2, 1, 8, 8), dtype=np.float32))).shape == (2, 10)


def test_the_same_seed_gives_the_same_weights_as_the_layers_written_out():
    """Same layers, same order of creation: the weights of the command line (and of the
    benchmarks) before the models moved into cr.models."""
    cr.manual_seed(0)
    ours = cr.models.lenet5()
    cr.manual_seed(0)
    written = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    same_weights(ours, written)
    cr.manual_seed(3)
    ours = cr.models.mlp(64, (32, 16), 10, activation="tanh")
    cr.manual_seed(3)
    written = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(),
        nn.Linear(16, 10),
    )  # fmt: skip
    same_weights(ours, written)
    cr.manual_seed(3)
    again = cr.models.mlp(64, (32, 16), 10, activation="tanh")
    same_weights(ours, again)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: cr.models.mlp(10, (8,), 2, activation="gelu"), ValueError,
         "unknown activation 'gelu': choose relu, sigmoid, tanh"),
        (lambda: cr.models.mlp(10, (8, 0), 2), ValueError, r"hidden\[1\] must be a positive"),
        (lambda: cr.models.mlp(10, "8,4", 2), TypeError, "sequence of ints"),
        (lambda: cr.models.mlp(0, (8,), 2), ValueError, "n_in must be a positive int, got 0"),
        (lambda: cr.models.perceptron(4.0, 2), TypeError, "n_in must be a positive int"),
        (lambda: cr.models.perceptron(True, 2), TypeError, "n_in must be a positive int"),
        (lambda: cr.models.lenet5(num_classes=0), ValueError, "num_classes"),
        (lambda: cr.models.lenet5(input_size=(8, 8)), ValueError, "at least 12×12, got 8×8"),
        (lambda: cr.models.small_cnn(input_size=(3, 8)), ValueError, "at least 4×4"),
        (lambda: cr.models.lenet5(input_size=(28,)), TypeError, r"\(height, width\)"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_what_was_expected(build, error, match):
    with pytest.raises(error, match=match):
        build()
