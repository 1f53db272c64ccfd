"""Checkpoints in the safetensors format: atomic ``save``, a ``load`` that trusts nothing.

``save`` takes a flat ``{name: array}`` dict (written as it is, as before) or a whole
training state: nested dicts, lists and tuples of arrays, Tensors, numbers, strings,
bools and None. The arrays of a nested state become tensors named by their key path
(``optimizer/state/0/exp_avg``) and the structure, with the numbers and strings, goes in
the header's metadata as JSON (the ``chainrule.tree`` entry); ``load`` rebuilds it.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
then the raw little-endian bytes of every tensor, back to back. ``save`` writes it with the
``safetensors`` library; ``load`` parses it in plain Python and validates the whole header
before allocating any array. Nothing in a file is ever executed: pickles (``torch.save``
files included) are refused, and there is no fallback to an unsafe loader.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import sys
from collections.abc import Mapping
from typing import IO, Any, Literal, overload

import numpy as np
import safetensors.numpy

from chainrule.tensor import Tensor

__all__ = ["CheckpointError", "save", "load", "load_metadata", "MAX_HEADER_BYTES", "TREE_KEY"]

#: The metadata entry that holds the structure of a nested checkpoint (JSON).
TREE_KEY = "chainrule.tree"
_TREE_VERSION = 1

#: Larger headers are refused (the safetensors library's own limit).
MAX_HEADER_BYTES = 100_000_000

_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
_MAX_DIMS = 64 if int(np.__version__.split(".")[0]) >= 2 else 32  # NumPy's NPY_MAXDIMS
_SAVABLE = {dtype.newbyteorder("=") for dtype in _DTYPES.values()}
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


class CheckpointError(ValueError):
    """A file that is not a valid safetensors checkpoint (the message says why)."""


# ----------------------------------------------------------------------------- save
def save(
    obj: Any,
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write a state to ``path`` in the safetensors format, atomically.

    The bytes go to a temporary file in the same directory, which is flushed, fsynced
    and then renamed over ``path`` (``os.replace``): a crash mid-write leaves any previous
    file intact, and the temporary file is removed.

    Args:
        obj: either a flat ``{name: array}`` dict (str names; ndarrays or Tensors), written
            as those tensors and nothing else, or a nested structure of dicts (str or int
            keys), lists and tuples whose leaves are ndarrays, Tensors (their ``.data``),
            NumPy scalars, Python ints, floats, bools, strings and None: e.g.
            ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}``.
            Arrays may have dtype bool, (u)int8/16/32/64, float16/32/64 or complex64;
            everything round-trips bit-exactly, the types of containers and keys included.
        path: the destination file.
        metadata: optional str -> str pairs stored in the header (``load_metadata``).

    Raises:
        TypeError: anything else (a function, an object, a set, a key that is neither str
            nor int, an unsupported dtype, a structure that contains itself): the message
            names its key path. Nothing is written.
    """
    if metadata is not None:
        metadata = dict(metadata)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("checkpoint metadata must map str to str")
        if TREE_KEY in metadata:
            raise TypeError(f"checkpoint metadata key {TREE_KEY!r} is reserved")
    arrays: dict[str, np.ndarray] = {}
    if _is_flat(obj):
        for name, value in obj.items():
            if name == "__metadata__":
                raise TypeError(f"checkpoint names must be str (not '__metadata__'), got {name!r}")
            arrays[name] = _storable(value, repr(name))
    else:
        root = _pack(obj, (), arrays, set())
        tree = json.dumps({"version": _TREE_VERSION, "root": root}, allow_nan=False)
        metadata = {**(metadata or {}), TREE_KEY: tree}
    payload = safetensors.numpy.save(arrays, metadata=metadata)
    _atomic_write(os.fspath(path), payload)


def _is_flat(obj: Any) -> bool:
    """A ``{str: array}`` dict: written as before nested states existed, name for name."""
    return isinstance(obj, Mapping) and all(
        isinstance(name, str) and isinstance(value, (np.ndarray, Tensor))
        for name, value in obj.items()
    )


def _storable(value: Any, where: str) -> np.ndarray:
    """``value`` as the C-contiguous little-endian ndarray the safetensors library reads."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where}: expected an ndarray or Tensor, got {type(value).__name__}")
    if value.dtype.newbyteorder("=") not in _SAVABLE:
        raise TypeError(f"{where}: dtype {value.dtype} cannot be stored in safetensors")
    return np.require(value, value.dtype.newbyteorder("<"), requirements="C")


def _pack(node: Any, path: tuple[Any, ...], arrays: dict[str, np.ndarray], open_: set[int]) -> Any:
    """The JSON form of ``node``; its arrays are moved into ``arrays`` under path names.

    Arrays become ``{"array": name}`` (NumPy scalars ``{"scalar": name}``), floats
    ``{"float": repr}`` (exact, inf and nan included), containers ``{"dict": [[key,
    node], ...]}``, ``{"list": [...]}`` or ``{"tuple": [...]}``; ints, bools, strings and
    None are themselves.
    """
    where = "/".join(str(part) for part in path) or "the object"
    if isinstance(node, (Tensor, np.ndarray, np.generic)):
        name = _tensor_name(path, arrays)
        arrays[name] = _storable(node, f"cr.save: {where}")
        return {"scalar" if isinstance(node, np.generic) else "array": name}
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, float):
        return {"float": repr(node)}
    if not isinstance(node, (Mapping, list, tuple)):
        raise TypeError(
            f"cr.save: {where}: cannot store a {type(node).__name__}; a checkpoint holds "
            "dicts, lists, tuples, arrays, Tensors, numbers, strings, bools and None "
            "(nothing is pickled)"
        )
    if id(node) in open_:
        raise TypeError(f"cr.save: {where}: the structure contains itself")
    open_.add(id(node))
    if isinstance(node, Mapping):
        items = []
        for key, value in node.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(
                    f"cr.save: {where}: a key must be a str or an int, got {key!r} "
                    f"({type(key).__name__})"
                )
            items.append([key, _pack(value, (*path, key), arrays, open_)])
        packed: Any = {"dict": items}
    else:
        kind = "list" if isinstance(node, list) else "tuple"
        packed = {kind: [_pack(v, (*path, i), arrays, open_) for i, v in enumerate(node)]}
    open_.discard(id(node))
    return packed


def _tensor_name(path: tuple[Any, ...], taken: Mapping[str, Any]) -> str:
    """The key path joined by "/" (with "~" and "/" escaped as "~0" and "~1", as JSON
    pointers do); a trailing "~" (which no escaped path ends with) keeps names unique."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    name = "/".join(parts) if parts else "~root"
    while name in taken or name == "__metadata__":
        name += "~"
    return name


def _atomic_write(path: str, payload: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never follow or clobber an existing file; 0o666 lets the umask decide.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            _write_all(stream, payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _write_all(stream: IO[bytes], payload: bytes) -> None:
    stream.write(payload)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ----------------------------------------------------------------------------- load
@overload
def load(path: str | os.PathLike[str], with_metadata: Literal[False] = False) -> Any: ...


@overload
def load(
    path: str | os.PathLike[str], with_metadata: Literal[True]
) -> tuple[Any, dict[str, str]]: ...


def load(path: str | os.PathLike[str], with_metadata: bool = False) -> Any:
    """Read a safetensors checkpoint, validated in full before anything is allocated.

    Args:
        path: the file.
        with_metadata: also return the header's metadata (an empty dict if none).

    Returns:
        What ``save`` was given: for a flat dict (and any safetensors file written
        elsewhere), ``{name: ndarray}`` in the header's order; for a nested state, the
        same structure (dicts, lists, tuples, keys and scalars of the same types) with
        ndarrays where arrays or Tensors were. Arrays are writable, in native byte order.
        With ``with_metadata=True``, ``(that, metadata)``.

    Raises:
        CheckpointError: the file is not a valid safetensors file: empty or truncated, a
            header length beyond the file or above 100 MB, a header that is not UTF-8 JSON
            of an object (lone surrogate escapes and numbers Python will not parse
            included), duplicate names, an unknown dtype, a shape that is not a list of
            non-negative ints or that no NumPy array can have (too many dimensions, too
            many elements), data offsets past the end, overlapping or leaving gaps, byte
            sizes that do not match shape × dtype size, a nested structure that does not
            account for each tensor exactly once, or a pickle / zip (``torch.save``) /
            ``.npy`` file, which is never unpickled. It is a ``ValueError``.
        OSError: the file cannot be opened (``FileNotFoundError`` if it does not exist).
    """
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        header, data_size = _read_header(stream, size, path)
        entries, metadata = _validate(header, data_size, path)
        tree = _parse_tree(metadata.pop(TREE_KEY, None), entries, path)
        arrays = {}
        for name, dtype, shape, _begin, _end in sorted(entries, key=_by_offsets):
            arrays[name] = _read_array(stream, dtype, shape, name, path)
    if tree is None:
        result: Any = {entry[0]: arrays[entry[0]] for entry in entries}
    else:
        result = _unpack(tree, arrays)
    return (result, metadata) if with_metadata else result


def load_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The str -> str metadata of a checkpoint (its header is validated, no data read;
    the structure of a nested checkpoint is not part of it)."""
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        header, data_size = _read_header(stream, size, path)
    metadata = _validate(header, data_size, path)[1]
    metadata.pop(TREE_KEY, None)
    return metadata


def _parse_tree(text: str | None, entries: list[Any], path: Any) -> Any:
    """The validated root node of a nested checkpoint's structure, or None for a flat one.

    Checked in full before any array is read: each node has a known form, and the
    structure names every tensor of the file exactly once.
    """
    if text is None:
        return None
    try:
        tree = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
        if not isinstance(tree, dict) or tree.get("version") != _TREE_VERSION:
            raise CheckpointError(f"unknown structure version (expected {_TREE_VERSION})")
        unused = {entry[0]: entry[2] for entry in entries}
        _check_node(tree.get("root"), unused)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {TREE_KEY}: {error}") from None
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: {TREE_KEY} is not valid JSON ({error})") from None
    if unused:
        raise CheckpointError(
            f"{path}: {TREE_KEY}: tensors {sorted(unused)} are not part of the structure"
        )
    return tree["root"]


_NODE_KINDS = {"array", "scalar", "float", "dict", "list", "tuple"}


def _check_node(node: Any, unused: dict[str, tuple[int, ...]]) -> None:
    if node is None or isinstance(node, (bool, int, str)):
        return
    if not isinstance(node, dict) or len(node) != 1 or not set(node) <= _NODE_KINDS:
        raise CheckpointError(f"not a node of a chainrule structure: {node!r:.80}")
    ((kind, value),) = node.items()
    if kind in ("array", "scalar"):
        if not isinstance(value, str) or value not in unused:
            raise CheckpointError(f"names a tensor {value!r} that is missing or used twice")
        if kind == "scalar" and unused[value] != ():
            raise CheckpointError(f"scalar {value!r} has shape {list(unused[value])}, not []")
        del unused[value]
    elif kind == "float":
        try:
            float(value)
        except (TypeError, ValueError):
            raise CheckpointError(f"{value!r:.80} is not a float") from None
    elif kind == "dict":
        if not isinstance(value, list):
            raise CheckpointError("a dict node must hold a list of [key, value] pairs")
        keys = set()
        for pair in value:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise CheckpointError(f"a dict item must be a [key, value] pair: {pair!r:.80}")
            key = pair[0]
            if not isinstance(key, (str, int)) or isinstance(key, bool) or key in keys:
                raise CheckpointError(f"dict key {key!r:.80} is not a new str or int")
            keys.add(key)
            _check_node(pair[1], unused)
    else:
        if not isinstance(value, list):
            raise CheckpointError(f"a {kind} node must hold a list")
        for item in value:
            _check_node(item, unused)


def _unpack(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The object ``_pack`` made ``node`` from (``node`` was checked by ``_check_node``)."""
    if not isinstance(node, dict):
        return node
    ((kind, value),) = node.items()
    if kind == "array":
        return arrays[value]
    if kind == "scalar":
        return arrays[value][()]
    if kind == "float":
        return float(value)
    if kind == "dict":
        return {key: _unpack(item, arrays) for key, item in value}
    items = [_unpack(item, arrays) for item in value]
    return items if kind == "list" else tuple(items)


def _read_header(stream: IO[bytes], size: int, path: Any) -> tuple[dict[str, Any], int]:
    """The parsed JSON header and the number of data bytes after it."""
    if size < 8:
        raise CheckpointError(
            f"{path}: {size} bytes is too short for a safetensors file (it starts with an "
            "8-byte header length)"
        )
    prefix = stream.read(8)
    hint = _foreign_format(prefix)
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: header length {length} is absurdly large (limit {MAX_HEADER_BYTES} "
            f"bytes): not a safetensors file{hint}"
        )
    if length > size - 8:
        raise CheckpointError(
            f"{path}: header length {length} is larger than the {size - 8} bytes after it: "
            f"truncated or not a safetensors file{hint}"
        )
    raw = stream.read(length)
    if len(raw) != length:
        raise CheckpointError(f"{path}: the file shrank while its header was read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path}: header is not valid UTF-8 ({error}){hint}") from None
    try:
        header = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (ValueError, RecursionError) as error:
        # ValueError also covers Python's limit on the digits of an int (a 5,000-digit
        # number is valid JSON): one documented exception type, whatever the parser says.
        raise CheckpointError(f"{path}: header is not valid JSON ({error}){hint}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header must be a JSON object, got {type(header).__name__}")
    try:
        json.dumps(header, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" escapes decode to lone surrogates: names that are not text (the
        # reference safetensors parser rejects them too)
        raise CheckpointError(
            f"{path}: header holds a lone surrogate escape (not valid Unicode text)"
        ) from None
    return header, size - 8 - length


def _foreign_format(prefix: bytes) -> str:
    if prefix.startswith(b"PK\x03\x04"):
        return " (it is a zip archive, e.g. a torch.save .pt file; chainrule never unpickles)"
    if prefix.startswith(b"\x93NUMPY"):
        return " (it is a NumPy .npy file, which may hold pickles; chainrule never unpickles)"
    if prefix[:1] == b"\x80" and 2 <= prefix[1] <= 5:
        return " (it looks like a pickle; chainrule never unpickles)"
    return ""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CheckpointError(f"header has the name {key!r} twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise CheckpointError(f"header holds the non-JSON constant {name}")


def _validate(
    header: dict[str, Any], data_size: int, path: Any
) -> tuple[list[tuple[str, np.dtype, tuple[int, ...], int, int]], dict[str, str]]:
    """Check every entry against the data size; the entries and the metadata."""
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: __metadata__ must be an object of strings")
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != _ENTRY_KEYS:
            raise CheckpointError(
                f"{where}: expected an object with exactly {sorted(_ENTRY_KEYS)}, got {info!r}"
            )
        code = info["dtype"]
        if not isinstance(code, str) or code not in _DTYPES:
            raise CheckpointError(f"{where}: unknown dtype {code!r} (known: {', '.join(_DTYPES)})")
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise CheckpointError(f"{where}: shape must be a list of ints >= 0, got {shape!r}")
        if len(shape) > _MAX_DIMS:
            raise CheckpointError(
                f"{where}: shape has {len(shape)} dimensions, NumPy allows {_MAX_DIMS}"
            )
        offsets = info["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(n) for n in offsets)
            or offsets[0] > offsets[1]
        ):
            raise CheckpointError(
                f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                f"got {offsets!r}"
            )
        begin, end = offsets
        if end > data_size:
            raise CheckpointError(
                f"{where}: data_offsets {offsets} run past the end of the data "
                f"({data_size} bytes): truncated or lying header"
            )
        dtype = _DTYPES[code]
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected:
            raise CheckpointError(
                f"{where}: shape {shape} of {code} needs {expected} bytes, data_offsets "
                f"{offsets} span {end - begin}"
            )
        # NumPy refuses an array whose nonzero dimensions overflow its index type even when
        # another dimension is 0 (so it holds no bytes): refuse it here, before any read.
        if math.prod(n for n in shape if n) * dtype.itemsize > sys.maxsize:
            raise CheckpointError(f"{where}: shape {shape} is too big for any array")
        entries.append((name, dtype, tuple(shape), begin, end))
    position = 0
    for name, _dtype, _shape, begin, end in sorted(entries, key=_by_offsets):
        if begin != position:
            kind = "overlaps the previous tensor" if begin < position else "leaves a gap"
            raise CheckpointError(
                f"{path}: tensor {name!r} at data_offsets [{begin}, {end}] {kind} (expected "
                f"it to start at byte {position})"
            )
        position = end
    if position != data_size:
        raise CheckpointError(
            f"{path}: the tensors cover {position} bytes but {data_size} bytes of data follow "
            "the header (trailing bytes)"
        )
    return entries, dict(metadata)


def _by_offsets(entry: tuple[Any, ...]) -> tuple[int, int]:
    return entry[3], entry[4]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_array(
    stream: io.BufferedReader, dtype: np.dtype, shape: tuple[int, ...], name: str, path: Any
) -> np.ndarray:
    array = np.empty(shape, dtype=dtype.newbyteorder("="))
    if array.size == 0:
        return array
    view = array.reshape(-1).view(np.uint8).data  # a writable memoryview of the array
    filled = 0
    while filled < array.nbytes:
        count = stream.readinto(view[filled:])
        if not count:
            raise CheckpointError(f"{path}: the file shrank while tensor {name!r} was read")
        filled += count
    if not np.little_endian:
        array.byteswap(inplace=True)
    if dtype == np.bool_ and array.view(np.uint8).max() > 1:
        raise CheckpointError(f"{path}: tensor {name!r} of dtype BOOL holds bytes other than 0/1")
    return array
