"""Checks of the paths given on the command line, made before any data is loaded.

Every check raises ``UsageError`` with one line that names the option, so a typo in
``--out`` is reported at once, not after a dataset has loaded or a model has trained.
"""

from __future__ import annotations

import os
from pathlib import Path

from chainrule.cli.errors import UsageError

__all__ = ["new_run_dir", "output_file", "make_parent", "existing_run"]

CHECKPOINT_NAME = "checkpoint.safetensors"


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (``.`` at worst)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_creatable(path: Path, option: str) -> None:
    """The folders up to ``path`` can be created: the closest existing one is a writable folder."""
    ancestor = _nearest_existing(path)
    if ancestor == path:
        return
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot create it in {ancestor} (permission denied)")


def new_run_dir(text: str, option: str = "--out") -> Path:
    """A run directory that ``chainrule train`` may create (missing parents are created too).

    Raises:
        UsageError: an empty name, a file, a folder that already holds a run, a file among
            its parents, or a parent where folders cannot be created.
    """
    if not text.strip():
        raise UsageError(f"{option} needs a folder name, got an empty one")
    path = Path(text)
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"{option} {path}: a file of that name exists; give a folder name")
    if (path / "config.json").exists():
        raise UsageError(f"{path} already holds a run: use --resume {path} or another {option}")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable")
    _check_creatable(path, option)
    return path


def output_file(text: str, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """A file the command will write (replacing it if it exists); missing folders above it
    are created, as ``--out`` creates a run directory's (see ``make_parent``).

    Raises:
        UsageError: an empty name, a wrong suffix, an existing folder, a file where a
            folder should be, or a folder where folders or files cannot be created.
    """
    if not text.strip():
        raise UsageError(f"{option} needs a file name, got an empty one")
    path = Path(text)
    if suffixes and path.suffix.lower().lstrip(".") not in suffixes:
        allowed = ", ".join("." + suffix for suffix in suffixes)
        raise UsageError(f"{option} {path}: the file name must end in one of {allowed}")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name inside it")
    folder = path.parent
    if os.path.lexists(folder) and not folder.is_dir():
        raise UsageError(f"{option} {path}: {folder} is a file, not a folder")
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")
    _check_creatable(folder, option)
    return path


def make_parent(path: Path) -> Path:
    """Create the folders above ``path`` (checked by ``output_file``); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def existing_run(text: str, option: str) -> tuple[Path, Path]:
    """(run directory, checkpoint file) from a run directory or the checkpoint file in one.

    Raises:
        UsageError: a path that does not exist, or one that is not a run directory (no
            config.json) nor a checkpoint file beside one.
    """
    if not text.strip():
        raise UsageError(f"{option} needs a run directory, got an empty name")
    path = Path(text)
    if not os.path.lexists(path):
        raise UsageError(f"{option} {path} is not a run directory: it does not exist")
    if path.is_dir():
        folder, checkpoint = path, path / CHECKPOINT_NAME
    else:
        folder, checkpoint = path.parent, path
    if not (folder / "config.json").is_file():
        what = "a run directory" if path.is_dir() else "a checkpoint in a run directory"
        raise UsageError(f"{option} {path} is not {what} (no config.json in {folder})")
    if not checkpoint.is_file():
        raise UsageError(f"{option} {path}: the run has no {CHECKPOINT_NAME} yet")
    return folder, checkpoint
