import numpy as np

import chainrule as cr


def test_backward_of_a_small_expression(rng):
    x = cr.tensor(rng.standard_normal(3), requires_grad=True)
    y = (x * x + x).tanh().sum()
    y.backward()
    t = np.tanh(x.data**2 + x.data)
    np.testing.assert_allclose(x.grad.data, (1 - t**2) * (2 * x.data + 1), rtol=1e-12)
