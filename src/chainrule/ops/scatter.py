"""The adjoint of indexing as an op: ``ScatterAdd``, what ``GetItem``'s rule records when the
backward is itself differentiated (its own derivative is indexing again)."""

from __future__ import annotations

from chainrule.function import Function
from chainrule.ops.kernels import batched_index, scatter_add_array, splits_advanced

__all__ = ["ScatterAdd"]


class ScatterAdd(Function):
    """y = zeros(shape) with g added at index (np.add.at);  ∂L/∂g = (∂L/∂y)[index].

    The transpose of indexing: the backward of ``GetItem``, recorded under create_graph.
    """

    batchable = True

    @staticmethod
    def forward(ctx, g, *, shape, index):
        """y = zeros(shape) with g added at index."""
        ctx.index, ctx.out_ndim = index, len(shape)
        if splits_advanced(index):
            ctx.batchable = False
        return scatter_add_array(g, shape, index)

    @staticmethod
    def backward(ctx, grad_out):
        """∂L/∂g = (∂L/∂y)[index], below any leading batch axes."""
        return grad_out[batched_index(ctx.index, grad_out.ndim - ctx.out_ndim)]
