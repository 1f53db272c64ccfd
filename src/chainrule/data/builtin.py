"""Small datasets bundled with scikit-learn (no download): digits and diabetes."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits", "load_diabetes"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: 8 × 8 images, 10 classes.

    Returns:
        ``(x, y)``: x float32 of shape (1797, 64), the pixels (0..16 in the source)
        scaled to [0, 1] (reshape to (-1, 8, 8) for images); y int64 of shape (1797,)
        in 0..9. Split with ``cr.data.train_test_split``.
    """
    # Imported here: scikit-learn takes about a second to import, and most users of
    # chainrule never call this.
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    return x, y


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes regression data: 442 patients, 10 features, 1 target.

    Returns:
        ``(x, y)``: x float32 of shape (442, 10), as scikit-learn gives it (each column
        mean-centred and scaled to unit Euclidean norm); y float32 of shape (442,), the
        disease progression after one year (25..346, not scaled).
    """
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    bunch = sklearn_diabetes()
    return bunch.data.astype(np.float32), bunch.target.astype(np.float32)
