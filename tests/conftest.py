"""Shared fixtures: a seeded generator (every test reproducible), and the cycle collector off
for the tests that check that reference counting alone frees graphs."""

import gc

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def no_cycle_collector():
    """Run the test with the cycle collector off: only reference counting may free."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
