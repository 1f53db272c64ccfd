"""End to end: small networks learn with plain gradient descent written here."""

import numpy as np

import chainrule as cr
from chainrule import metrics, nn
from chainrule.nn import functional as F


def _descend(model, loss_fn, steps, lr):
    losses = []
    for _ in range(steps):
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad.data
        losses.append(loss.item())
    return losses


def test_two_layer_mlp_learns_xor():
    cr.manual_seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    losses = _descend(model, lambda: F.binary_cross_entropy_with_logits(model(x), y), 600, 0.5)
    assert losses[-1] < 0.05 < losses[0]
    predictions = (model(x).data > 0).astype(np.float32)
    np.testing.assert_array_equal(predictions, y)
    assert model[0].weight.dtype == np.float32


def test_cnn_learns_to_separate_blobs_of_images():
    cr.manual_seed(1)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 48)
    images = rng.standard_normal((48, 1, 6, 6)).astype(np.float32) * 0.5
    for k in range(3):  # class k: a bright row 2k
        images[labels == k, 0, 2 * k, :] += 2.0
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(36, 3),
    )  # fmt: skip
    losses = _descend(model, lambda: F.cross_entropy(model(images), labels), 60, 0.2)
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    assert metrics.accuracy(model(images), labels) == 1.0
