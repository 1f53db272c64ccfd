"""The public names of chainrule, for the docstring tests: each name in a module's
``__all__``, and each public method and property of a public class, with the module that
defines it (so that a name is counted once, where it is written)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings
from collections.abc import Iterator
from typing import Any

import chainrule

#: the packages whose public names users see: cr, cr.nn, cr.optim, cr.data and the rest
OPTIONAL = {"chainrule.onnx": "onnx"}


def modules() -> list[Any]:
    """Every importable module of the package (the optional ones whose extra is missing
    are left out)."""
    found = [chainrule]
    for info in pkgutil.walk_packages(chainrule.__path__, "chainrule."):
        if info.name == "chainrule.__main__":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # ops.either, an alias
                found.append(importlib.import_module(info.name))
        except ImportError as error:
            # only the optional extra may be missing: a broken import of our own fails
            missing = (error.name or "").partition(".")[0]
            if OPTIONAL.get(info.name) != missing:
                raise
    return found


def _own(obj: Any) -> Any:
    return obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj


def _documented(obj: Any) -> bool:
    target = obj.fget if isinstance(obj, property) and obj.fget is not None else obj
    doc = getattr(target, "__doc__", None)
    return bool(doc and doc.strip())


def public_names() -> Iterator[tuple[str, str, bool]]:
    """(qualified name, defining module, has a docstring) for every public name, once."""
    seen: set[int] = set()
    for module in modules():
        yield module.__name__, module.__name__, _documented(module)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue  # constants and re-exported modules
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            home = getattr(obj, "__module__", module.__name__) or module.__name__
            qualified = f"{home}.{obj.__qualname__}"
            yield qualified, home, _documented(obj)
            if inspect.isclass(obj):
                for attribute, value in vars(obj).items():
                    value = _own(value)
                    if attribute.startswith("_"):
                        continue
                    if inspect.isfunction(value) or isinstance(value, property):
                        yield f"{qualified}.{attribute}", home, _documented(value)
