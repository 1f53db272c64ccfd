"""``cr.linalg``: NumPy's ``linalg`` for Tensors, differentiable (to second order) and
batched over leading axes.

``norm``, ``inv``, ``det``, ``slogdet``, ``solve``, ``cholesky``, ``eigh``, ``svd``; each
docstring states its derivative rule, how ill-conditioning affects it, and where the
derivative does not exist (a clear ``LinAlgError``, a ``ValueError``). The ops live in
``chainrule.ops.inverse``, ``chainrule.ops.decompositions`` and ``chainrule.ops.norms``
(not ``chainrule.ops.linalg``, which holds ``matmul`` and the other products).
"""

from chainrule.ops.decompositions import cholesky, eigh, svd
from chainrule.ops.inverse import LinAlgError, det, inv, slogdet, solve
from chainrule.ops.norms import norm

__all__ = ["norm", "inv", "det", "slogdet", "solve", "cholesky", "eigh", "svd", "LinAlgError"]
