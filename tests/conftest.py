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


@pytest.fixture(autouse=True)
def fresh_mode_flags():
    """Each test starts with the process-wide flags of a fresh process: a recorded in-place
    write in one test would otherwise switch every later test off the unrolled op paths."""
    from chainrule.mode import STATE

    yield
    STATE.views_written = False
    STATE.fast = not STATE.anomaly
