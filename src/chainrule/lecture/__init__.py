"""The lecture made executable: its notation, its backprop, checked against autodiff.

"Math notation primer, backprop revisited", on a real network::

    from chainrule import lecture

    net = lecture.Network.random([4, 3, 2], activation="sigmoid", seed=0)
    trace = lecture.backprop(net, x, y, loss="mse")  # f[l], a[l], g′[l](f[l]), δ[l], ∂L/∂W[l]
    lecture.compare(net, x, y, loss="mse").assert_agrees(1e-10)

``Network`` holds W[l] (n[l−1]×n[l]), b[l] and g[l], from lists, at random or from an
``nn.Sequential``; ``forward`` and ``backprop`` run the slides' equations in plain NumPy
(one example in columns, a batch in rows); ``compare`` checks them against autodiff.
"""

from chainrule.lecture.backprop import LOSSES, REDUCTIONS, Layer, Trace, backprop, forward
from chainrule.lecture.compare import (
    Autodiff,
    Comparison,
    Difference,
    as_network,
    autodiff,
    compare,
)
from chainrule.lecture.network import ACTIVATIONS, Network, width_error
from chainrule.notation import dims, to_ascii

__all__ = [
    "ACTIVATIONS", "LOSSES", "REDUCTIONS", "Network", "Layer", "Trace", "forward", "backprop",
    "Autodiff", "Comparison", "Difference", "autodiff", "compare", "as_network",
    "width_error", "dims", "to_ascii",
]  # fmt: skip
