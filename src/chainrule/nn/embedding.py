"""``Embedding``: a lookup table of learnable vectors, one row per token (integer index)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor

__all__ = ["Embedding"]


class Embedding(Module):
    """y = W[indices]: row i of ``weight`` (num_embeddings, embedding_dim) for index i.

    ``weight`` starts as N(0, 1), PyTorch's default, drawn from ``generator`` or
    chainrule's default generator. Indices of any integer shape S give an output of shape
    S + (embedding_dim,); the gradient of a row is the sum of the output gradients at the
    places that used it (see ``F.embedding``).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        generator: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if int(num_embeddings) <= 0 or int(embedding_dim) < 0:
            raise ValueError(
                f"Embedding: num_embeddings must be positive and embedding_dim >= 0, got "
                f"({num_embeddings}, {embedding_dim})"
            )
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(np.empty(shape, dtype=np.float32))
        init.normal_(self.weight, 0.0, 1.0, generator)

    def forward(self, indices: Any) -> Tensor:
        """y = W[indices], shape indices.shape + (embedding_dim,); ∂L/∂W scatters ∂L/∂y
        back onto the rows used.

        Raises:
            TypeError: the indices are not integers.
            IndexError: an index lies outside [0, num_embeddings − 1].
        """
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        """``num_embeddings, embedding_dim`` for ``repr(module)``."""
        return f"{self.num_embeddings}, {self.embedding_dim}"
