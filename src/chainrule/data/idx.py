"""The IDX format of (Fashion-)MNIST, raw or gzipped, read with full validation.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the values in C order, big-endian. Every check here
raises a ``ValueError`` that names the file, before any value is trusted.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["read_idx", "load_fashion_mnist", "FASHION_MNIST_ROOT", "DatasetNotFound"]

#: where the Debian package ``dataset-fashion-mnist`` installs the IDX files
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
_INSTALL = "install the Debian package with `apt-get install dataset-fashion-mnist`"


class DatasetNotFound(FileNotFoundError):
    """A dataset's folder or one of its files is missing.

    Attributes:
        directory: the folder that was searched.
        missing: the name of the missing file, or None when the folder itself is missing
            (or is not a folder).
        reason: what is wrong, in words ("does not exist", "is a file, not a folder", …).
    """

    def __init__(self, directory: Path, missing: str | None, reason: str, hint: str) -> None:
        self.directory, self.missing, self.reason = directory, missing, reason
        super().__init__(f"{reason}: {hint}")


class _Readable(Protocol):
    """A binary stream: an open file or a gzip.GzipFile."""

    def read(self, size: int = -1, /) -> bytes: ...


_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CHUNK = 1 << 24  # decompress in slices, so a lying header cannot make us allocate its size


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed), in native byte order.

    Args:
        path: the file; a name ending in ``.gz`` is read through gzip.

    Returns:
        An ndarray with the header's shape and dtype (uint8 for (Fashion-)MNIST).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad magic number, unknown dtype code, zero dimensions, a truncated
            file, trailing bytes after the data, or a corrupt gzip stream.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            return _parse(stream, path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from error


def _parse(stream: _Readable, path: Path) -> np.ndarray:
    magic = _read(stream, 4)
    if len(magic) < 4:
        raise ValueError(f"{path}: {len(magic)} bytes, too short for the 4-byte IDX magic number")
    if magic[0] != 0 or magic[1] != 0:
        hint = " (gzip data: name the file *.gz)" if magic[:2] == b"\x1f\x8b" else ""
        raise ValueError(
            f"{path}: bad magic number 0x{magic.hex()}: an IDX file starts with two zero "
            f"bytes{hint}"
        )
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        raise ValueError(
            f"{path}: unknown IDX dtype code 0x{code:02x} (known: "
            f"{', '.join(f'0x{c:02x}' for c in _DTYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"{path}: the IDX header declares 0 dimensions")
    raw_dims = _read(stream, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = _DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    data = _read(stream, expected)
    if len(data) < expected:
        raise ValueError(
            f"{path}: truncated file: shape {dims} of {dtype.name} needs {expected} bytes of "
            f"data after the header, found {len(data)}"
        )
    if stream.read(1):
        raise ValueError(
            f"{path}: trailing bytes after the {expected} bytes of data for shape {dims}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read(stream: _Readable, size: int) -> bytearray:
    """Up to ``size`` bytes, read in chunks: memory grows with the data actually there."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST's 60,000 training and 10,000 test images of 28 × 28 pixels, 10 classes.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` from ``root``, each raw or with ``.gz`` (the original
    MNIST files have the same names and load too).

    Args:
        root: the directory; default ``/usr/share/datasets/fashion-mnist``, where the
            Debian package ``dataset-fashion-mnist`` installs the files.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: images as uint8 arrays (N, 28, 28) with
        pixels in 0..255 (scale with ``x / 255.0`` to get [0, 1]), labels as int64 (N,)
        in 0..9.

    Raises:
        DatasetNotFound: (a FileNotFoundError) the directory or a file is missing, or the
            directory is a file; the message says how to install the data.
        ValueError: a malformed file (see ``read_idx``), images that are not 3-D uint8,
            labels that are not 1-D uint8 in 0..9, or different image and label counts.
    """
    directory = Path(FASHION_MNIST_ROOT if root is None else root)
    hint = f"{_INSTALL}, or pass root= naming the folder of the IDX files"
    if not directory.is_dir():
        state = "is a file, not a folder" if directory.exists() else "does not exist"
        raise DatasetNotFound(directory, None, f"Fashion-MNIST folder {directory} {state}", hint)
    parts = []
    for prefix in ("train", "t10k"):
        images = _images(_find(directory, f"{prefix}-images-idx3-ubyte"))
        label_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
        labels = _labels(label_path)
        if len(labels) != len(images):
            raise ValueError(
                f"{label_path}: {len(labels)} labels for {len(images)} {prefix} images"
            )
        parts.append((images, labels))
    return parts[0], parts[1]


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetNotFound(
        directory,
        name,
        f"{directory} has neither {name} nor {name}.gz",
        f"{_INSTALL}, or pass root= naming the folder of the IDX files",
    )


def _images(path: Path) -> np.ndarray:
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"{path}: expected uint8 images of shape (N, rows, cols), got {images.dtype} "
            f"{images.shape}"
        )
    return images


def _labels(path: Path) -> np.ndarray:
    labels = read_idx(path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{path}: label {int(labels.max())} is outside the 10 classes 0..9")
    return labels.astype(np.int64)
