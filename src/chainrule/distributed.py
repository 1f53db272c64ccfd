"""Data-parallel training over MPI (``cr.distributed``; optional extra ``mpi``).

Every rank holds the whole model, computes the gradient of its own shard of the global
batch, and ``DistributedOptimizer.step`` replaces each gradient by the mean over the p
ranks, g = (1/p) Σ_r g_r, with one ``Allreduce`` of a flat buffer, before the wrapped
optimizer steps. Every rank then makes the same update, so the weights stay identical::

    import chainrule.distributed as dist

    dist.init()  # joins the job under mpiexec; a world of one process otherwise
    model = ...
    dist.broadcast_parameters(model)  # every rank starts from rank 0's weights
    optimizer = dist.DistributedOptimizer(cr.optim.SGD(model.parameters(), lr=0.1))
    loader = cr.data.DataLoader(data, batch_size=B // dist.world_size(), shuffle=True,
                                seed=0, shard=(dist.rank(), dist.world_size()))

    $ mpiexec -n 2 python train.py

mpi4py is imported only when the environment says that ``mpiexec`` started this process
(``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE`` or ``MPI_LOCALNRANKS``); otherwise every function
here is a no-op for a world of one process, so the same script runs both ways.

Faults: under MPI, ``init`` installs a ``sys.excepthook`` that prints the traceback, names
the rank and calls ``MPI_Abort``, so an exception on one rank stops the whole job within
seconds with a non-zero exit instead of leaving the other ranks waiting in a collective.
Exit a rank with ``abort(code)``, not ``sys.exit(code)``, while the others may still be in
a collective.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn

import numpy as np

from chainrule.mode import enable_grad
from chainrule.nn import Module
from chainrule.optim.optimizer import Optimizer
from chainrule.tensor import Tensor
from chainrule.versions import bump

__all__ = [
    "init",
    "is_initialized",
    "rank",
    "world_size",
    "is_main",
    "barrier",
    "abort",
    "allreduce_mean",
    "broadcast_parameters",
    "broadcast_optimizer_state",
    "broadcast_object",
    "allgather_object",
    "DistributedOptimizer",
]

#: variables that MPI launchers set in each process they start (MPICH's Hydra, Open MPI)
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_ABORT_GRACE_SECONDS = 0.25  # see abort()

_initialized = False
_mpi: Any = None  # the mpi4py.MPI module, once joined to a world of more than one process
_comm: Any = None  # its COMM_WORLD


def _launcher_size() -> int | None:
    """The number of processes mpiexec started, from the environment; None without one."""
    sizes = []
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().isdigit():
            sizes.append(int(value))
    return max(sizes) if sizes else None


def init() -> None:
    """Join the MPI job when started by ``mpiexec``; otherwise a world of one process.

    Idempotent; ``rank()``, ``world_size()`` and the other functions call it themselves.

    Raises:
        ImportError: mpiexec started several processes but mpi4py is not installed.
        RuntimeError: mpi4py's MPI sees one process where the launcher started several
            (an ``mpiexec`` of another MPI library than the one mpi4py was built with).
    """
    global _initialized, _mpi, _comm
    if _initialized:
        return
    size = _launcher_size()
    if size is None:
        _initialized = True
        return
    try:
        from mpi4py import MPI
    except ImportError as error:
        if size > 1:
            raise ImportError(
                f"chainrule.distributed: mpiexec started {size} processes but mpi4py is not "
                "installed; install it with: pip install 'chainrule[mpi]'"
            ) from error
        _initialized = True
        return
    comm = MPI.COMM_WORLD
    if size > 1 and comm.Get_size() == 1:
        raise RuntimeError(
            f"chainrule.distributed: the launcher started {size} processes but MPI sees a "
            "world of 1: the mpiexec on PATH belongs to another MPI library than mpi4py's "
            "(use the mpiexec installed with mpi4py's MPI, e.g. the mpich package)"
        )
    if comm.Get_size() > 1:
        _mpi, _comm = MPI, comm
        sys.excepthook = _abort_hook(sys.excepthook)
    _initialized = True


def is_initialized() -> bool:
    """Whether ``init()`` has run (joined an MPI job, or settled on a world of one)."""
    return _initialized


def _abort_hook(previous: Callable[..., Any]) -> Callable[..., None]:
    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        try:
            previous(kind, error, tb)
            sys.stderr.write(
                f"chainrule.distributed: rank {rank()} of {world_size()} raised "
                f"{kind.__name__}; aborting every rank\n"
            )
        finally:
            abort(130 if issubclass(kind, KeyboardInterrupt) else 1)

    return hook


def rank() -> int:
    """r: this process's index among the p ranks, 0 <= r < p (0 without MPI)."""
    init()
    return 0 if _comm is None else int(_comm.Get_rank())


def world_size() -> int:
    """p: the number of processes training together (1 without MPI)."""
    init()
    return 1 if _comm is None else int(_comm.Get_size())


def is_main() -> bool:
    """True on rank 0, the rank that writes files and prints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank has called ``barrier()``."""
    init()
    if _comm is not None:
        _comm.Barrier()


def abort(exit_code: int = 1) -> NoReturn:
    """Stop every rank now with ``exit_code`` (``MPI_Abort``); without MPI, ``sys.exit``.

    Standard output and error are flushed first, so that the last messages are not lost;
    then this rank's standard error goes to the null device, so that the MPI library's own
    "application called MPI_Abort" line does not follow the message that explains the stop.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    if _comm is not None:
        # the launcher forwards each rank's output through its own pipes and kills every
        # rank on MPI_Abort: a moment's wait lets it forward what was just flushed (once in
        # a full test run, the traceback of the failing rank was lost without it)
        time.sleep(_ABORT_GRACE_SECONDS)
        _discard_stderr()
        _comm.Abort(int(exit_code))
    raise SystemExit(exit_code)


def _discard_stderr() -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def allreduce_mean(value: Any) -> Any:
    """x̄ = (1/p) Σ_r x_r: the mean over the ranks of a number or array, on every rank.

    For metrics, so that every rank reports the global figure. Computed in float64.

    Args:
        value: a number, ndarray or Tensor, of the same shape on every rank.

    Returns:
        A float for a number or 0-d input, else a float64 ndarray of the input's shape.
    """
    array = np.array(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
    init()
    if _comm is not None:
        _comm.Allreduce(_mpi.IN_PLACE, array, op=_mpi.SUM)
        array /= _comm.Get_size()
    return float(array) if array.ndim == 0 else array


def broadcast_object(obj: Any, root: int = 0) -> Any:
    """Rank ``root``'s ``obj`` on every rank (pickled: for small things like a config)."""
    _check_root(root)
    if _comm is None:
        return obj
    return _comm.bcast(obj, root=root)


def allgather_object(obj: Any) -> list[Any]:
    """[x_0, …, x_{p−1}]: every rank's ``obj``, in rank order, on every rank (pickled).

    For small things, such as whether a rank's setup failed; ``[obj]`` without MPI.
    """
    if _comm is None:
        return [obj]
    return list(_comm.allgather(obj))


def broadcast_parameters(module: Module, root: int = 0) -> None:
    """w_r <- w_root for every parameter and buffer: all ranks start from the same model.

    One ``Bcast`` per dtype of a flat buffer, written into the tensors in place.

    Raises:
        ValueError: the ranks' models have different parameter names, shapes or dtypes.
    """
    _check_root(root)
    if _comm is None:
        return
    named = list(module.named_parameters()) + list(module.named_buffers())
    layout = [(name, t.shape, str(t.dtype)) for name, t in named]
    root_layout = _comm.bcast(layout, root=root)
    if layout != root_layout:
        mine = set(layout)
        first = next((entry for entry in root_layout if entry not in mine), None)
        raise ValueError(
            f"broadcast_parameters: rank {rank()}'s model differs from rank {root}'s "
            f"(rank {root} has {first}); build the same model on every rank"
        )
    for bucket in _buckets([t for _, t in named]):
        flat = np.concatenate([t.data.reshape(-1) for t in bucket])
        _comm.Bcast(flat, root=root)
        for t, part in zip(bucket, _split(flat, bucket)):
            if t.data.flags.writeable:
                t.data[...] = part
                bump(t.data, "broadcast_parameters()")
            else:
                t.data = part.copy()


def broadcast_optimizer_state(optimizer: Optimizer, root: int = 0) -> None:
    """Load rank ``root``'s ``optimizer.state_dict()`` on every rank (e.g. after a resume)."""
    _check_root(root)
    if _comm is None:
        return
    state = _comm.bcast(optimizer.state_dict() if rank() == root else None, root=root)
    if rank() != root:
        optimizer.load_state_dict(state)


def _check_root(root: int) -> None:
    size = world_size()
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < size:
        raise ValueError(f"root must be a rank in [0, {size}), got {root!r}")


def _buckets(tensors: list[Tensor]) -> list[list[Tensor]]:
    """The tensors grouped by dtype (one buffer each), in their original order."""
    groups: dict[np.dtype, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.data.dtype, []).append(t)
    return list(groups.values())


def _split(flat: np.ndarray, bucket: list[Tensor]) -> list[np.ndarray]:
    """Views of ``flat`` shaped like each tensor of ``bucket``, in order."""
    parts, offset = [], 0
    for t in bucket:
        parts.append(flat[offset : offset + t.data.size].reshape(t.shape))
        offset += t.data.size
    return parts


class DistributedOptimizer(Optimizer):
    """g <- (1/p) Σ_r g_r for every parameter, then the wrapped optimizer's step.

    One ``Allreduce`` per step of a flat buffer holding every gradient (one buffer per
    parameter dtype, so usually exactly one), plus one flag per parameter: a parameter
    without a gradient on some rank counts as a zero gradient there, and one without a
    gradient on every rank keeps ``grad = None`` (so the wrapped optimizer skips it, as
    on one process). With each rank's loss a mean over B/p examples, the averaged
    gradient is the gradient of the mean loss over all B: p ranks at batch B/p train like
    one process at batch B.

    It is an ``Optimizer``: ``param_groups``, ``state``, ``zero_grad``, ``state_dict``,
    ``load_state_dict`` and learning-rate schedulers work on the wrapped optimizer.

    Args:
        optimizer: any ``cr.optim`` optimizer over the model's parameters.
    """

    def __init__(self, optimizer: Optimizer) -> None:  # the wrapped optimizer holds the state
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, DistributedOptimizer):
            raise TypeError(
                f"DistributedOptimizer wraps a cr.optim optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        init()

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The wrapped optimizer's parameter groups (its lr may be changed here)."""
        return self.optimizer.param_groups

    @property
    def state(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The wrapped optimizer's per-parameter state (momenta, Adam's moments)."""
        return self.optimizer.state

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        """The wrapped optimizer's default hyperparameters."""
        return self.optimizer.defaults

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a parameter group to the wrapped optimizer (on every rank alike)."""
        self.optimizer.add_param_group(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (see ``Optimizer.zero_grad``)."""
        self.optimizer.zero_grad(set_to_none)

    def synchronize(self) -> None:
        """Replace every gradient by its mean over the ranks (``step`` calls this first)."""
        if _comm is None:
            return
        params = [p for group in self.param_groups for p in group["params"]]
        for bucket in _buckets(params):
            total = sum(p.data.size for p in bucket)
            flat = np.zeros(total + len(bucket), dtype=bucket[0].data.dtype)
            for index, (p, part) in enumerate(zip(bucket, _split(flat[:total], bucket))):
                if p.grad is not None:
                    grad = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
                    if grad.shape != p.shape:
                        raise ValueError(
                            f"gradient of shape {grad.shape} for a parameter of shape {p.shape}"
                        )
                    part[...] = grad
                    flat[total + index] = 1
            _comm.Allreduce(_mpi.IN_PLACE, flat, op=_mpi.SUM)
            np.divide(flat[:total], _comm.Get_size(), out=flat[:total])
            for index, (p, part) in enumerate(zip(bucket, _split(flat[:total], bucket))):
                p.grad = Tensor._make(part, None) if flat[total + index] > 0 else None

    def step(self, closure: Callable[[], Any] | None = None, grads: Any = None) -> Any:
        """Average the gradients over the ranks, then step; returns ``closure()`` if given.

        ``grads``, if given, are assigned first, as ``Optimizer.step(grads=...)`` does.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if grads is not None:
            self.optimizer._assign(grads)
        self.synchronize()
        self.optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state (identical on every rank)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the wrapped optimizer's state."""
        self.optimizer.load_state_dict(state_dict)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r})"
