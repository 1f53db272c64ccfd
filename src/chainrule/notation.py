"""How the lecture's symbols are written: shapes as "3×1", a plain-ASCII fallback, and the
shape error of a layer in the lecture's words.

A leaf module (it imports nothing of chainrule), so that ``nn`` can speak the lecture's
language in its errors and tables without importing ``chainrule.lecture``, which sits above it.
"""

from __future__ import annotations

__all__ = ["dims", "to_ascii", "width_error"]

# Longest first where one symbol contains another (none do today; keep it that way).
_ASCII = {
    "δ": "delta", "∂": "d", "ᵀ": "^T", "∘": "*", "·": "@", "×": "x", "′": "'",
    "ŷ": "y_hat", "σ": "sigmoid", "−": "-", "→": "->", "Σ": "sum", "√": "sqrt",
    "…": "...", "≤": "<=", "≥": ">=", "✓": "ok", "✗": "FAIL", "—": "-", "–": "-",
    "²": "^2", "∇": "grad", "│": "|", "─": "-", "┼": "+", "≈": "~", "ε": "eps",
    "⁻": "^-", "¹": "1", "₀": "0",
}  # fmt: skip


def dims(shape: tuple[int, ...]) -> str:
    """A shape as the slides write it: (3, 1) -> "3×1", (3,) -> "3", () -> "1"."""
    return "×".join(str(n) for n in shape) if shape else "1"


def to_ascii(text: str) -> str:
    """``text`` with the lecture's Unicode symbols spelt in ASCII (δ -> delta, ∘ -> *)."""
    for symbol, spelling in _ASCII.items():
        text = text.replace(symbol, spelling)
    # anything the table misses still must not reach a plain terminal as mojibake
    return text.encode("ascii", "replace").decode("ascii")


def width_error(l: int, needed: int, got: int) -> ValueError:
    """The shape error of layer l in the lecture's words: f[l] = W[l]ᵀ a[l−1] needs ..."""
    return ValueError(
        f"layer {l}: f[{l}] = W[{l}]ᵀ a[{l - 1}] needs a[{l - 1}] with {needed} features, "
        f"got {got}"
    )
