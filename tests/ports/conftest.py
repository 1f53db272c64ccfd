"""One BLAS thread (NumPy's and torch's) while the ports run.

The ports run hundreds of small matrix products in alternation between two libraries; on a
shared machine their thread pools spin against each other and a run takes ten times longer.
One thread each is also the same summation order on every machine. The previous limits are
restored afterwards, so the rest of the suite is unaffected.
"""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the ports are only slower
        yield
        return
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        yield
    if torch is not None:
        torch.set_num_threads(torch_threads)
