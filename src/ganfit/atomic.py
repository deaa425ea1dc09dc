"""Writing files atomically, and the project's one JSON encoder.

Every output ganfit writes goes through these helpers: the bytes land in a temporary file in the destination's
folder and are moved into place with ``os.replace``, so a reader (or a rerun after a kill) sees either the old file
or the complete new one, never a truncated one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".tmp-"
"""Prefix of staging files and folders; a run removes stale ones it finds in its output folder."""


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the process's umask (read once)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()
"""Staging files are created 0o600 by ``tempfile.mkstemp``; they get this mode before they are moved into place."""


def atomic_write(path: str | os.PathLike[str], write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it to ``path``. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON (numpy values, paths and tuples converted by :func:`to_jsonable`) atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=indent, default=to_jsonable) + "\n")


def atomic_save(path: str | os.PathLike[str], save: Callable[[Any], None]) -> Path:
    """Atomically write what ``save(file_object)`` writes (``PIL.Image.save``, ``np.save``, ``torch.save``)."""
    return atomic_write(path, save)


def to_jsonable(value: Any) -> Any:
    """``json.dumps(default=...)`` for the project's values: numpy scalars and arrays, paths, sets and tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return str(value)


def remove_stale_staging(root: str | os.PathLike[str], depth: int = 2) -> list[Path]:
    """Delete staging files and folders (``.tmp-*``) left under ``root`` by a killed run, down to ``depth``
    levels (``out/.tmp-*`` and ``out/<name>/.tmp-*``). Returns what was removed."""
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    patterns = [f"{'*/' * level}{TMP_PREFIX}*" for level in range(depth)]
    for pattern in patterns:
        for stale in root.glob(pattern):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
