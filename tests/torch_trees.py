"""Pytrees between chainrule and PyTorch, for the tests that hold chainrule's transforms
to ``torch.func`` (which takes pytrees too). Importing it skips the importing test module
when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def to_torch(tree):
    """The tree with each leaf a float64 torch tensor."""
    return cr.tree_map(lambda a: torch.tensor(np.asarray(a), dtype=torch.float64), tree)


def same(ours, theirs, tol=1e-10):
    """Same structure (torch.func keeps tuples, lists and dicts as given) and values."""
    leaves_o, def_o = cr.tree_flatten(ours)
    leaves_t, def_t = cr.tree_flatten(theirs)
    assert def_o == def_t, (def_o, def_t)
    for o, t in zip(leaves_o, leaves_t):
        np.testing.assert_allclose(np.asarray(o.data), t.detach().numpy(), rtol=tol, atol=tol)
