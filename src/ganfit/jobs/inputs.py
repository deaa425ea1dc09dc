"""What ``image=`` names: a photo file, a folder (searched recursively), a glob pattern or a list file.

List files (``.txt``/``.lst``/``.list``): one path per line, ``#`` comments, relative paths relative to the list
file; an optional second, tab-separated column is a label (e.g. the person). The list file is the way to pass paths
with spaces, commas, ``#`` or non-ASCII characters, which Hydra's command-line grammar needs quoted.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage import data as skimage_data

from ganfit.image_io import read_image

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo"})
UNSUPPORTED_PHOTO_SUFFIXES = frozenset({".avif", ".heic", ".heif", ".jxl", ".raw", ".cr2", ".nef", ".dng", ".svg"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
ASTRONAUT = "astronaut"
"""The embedded default photo: scikit-image's public-domain astronaut portrait (NASA)."""


class InputSpecError(ValueError):
    """``image=`` names nothing usable (missing file/folder, empty glob or list)."""


@dataclass
class Inputs:
    """The photos of a job, and what a folder scan passed over."""

    sources: list[str]
    skipped_by_type: dict[str, int] = field(default_factory=dict)  # suffix -> count of files not read

    def describe_skipped(self) -> str:
        """One line about the files a folder scan did not read, or ''."""
        if not self.skipped_by_type:
            return ""
        parts = ", ".join(f"{count} {suffix}" for suffix, count in sorted(self.skipped_by_type.items()))
        return f"not read (unsupported photo format): {parts}; convert them to JPEG or PNG"


def collect_inputs(spec: str | os.PathLike[str] | None) -> Inputs:
    """The photos named by ``spec`` (file, folder, glob, list file), sorted; ``None`` -> the embedded astronaut.

    Files in a folder are filtered by suffix (photo formats the reader cannot open are counted in
    ``skipped_by_type``); a single file or list-file entry is taken as given, so a bad file is reported by the
    reader, not silently dropped.

    Raises:
        InputSpecError: nothing usable is named.
    """
    if spec is None or str(spec) in ("", ASTRONAUT):
        return Inputs([ASTRONAUT])
    path = Path(os.path.expanduser(str(spec)))
    if path.is_dir():
        found, skipped = [], {}
        for candidate in sorted(path.rglob("*")):
            if not candidate.is_file() or candidate.name.startswith("."):
                continue
            suffix = candidate.suffix.lower()
            if suffix in PHOTO_SUFFIXES:
                found.append(str(candidate))
            elif suffix in UNSUPPORTED_PHOTO_SUFFIXES:
                skipped[suffix] = skipped.get(suffix, 0) + 1
        scan = Inputs(found, skipped)
        if not found:
            unread = f"; {scan.describe_skipped()}" if skipped else ""
            raise InputSpecError(
                f"image={spec}: the folder holds no photos ({', '.join(sorted(PHOTO_SUFFIXES))}){unread}"
            )
        return scan
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            entries = [entry for entry, _ in read_list_file(path)]
            if not entries:
                raise InputSpecError(f"image={spec}: the list file names no photos")
            return Inputs(entries)
        return Inputs([str(path)])
    if any(ch in str(spec) for ch in "*?["):
        found = sorted(p for p in glob.glob(os.path.expanduser(str(spec)), recursive=True) if Path(p).is_file())
        if not found:
            raise InputSpecError(f"image={spec}: the glob pattern matches no files")
        return Inputs(found)
    raise InputSpecError(
        f"image={spec}: no such file or folder (give a photo, a folder, a glob like 'dir/*.jpg' or a .txt list file)"
    )


def read_list_file(path: Path) -> list[tuple[str, str | None]]:
    """``(path, label or None)`` per entry of a list file (``path<TAB>label``; relative to the list file)."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, label = line.partition("\t")
        entry = Path(os.path.expanduser(name.strip()))
        entries.append((str(entry if entry.is_absolute() else path.parent / entry), label.strip() or None))
    return entries


def output_names(sources: list[str]) -> list[str]:
    """One output folder name per source: the file stem, prefixed by parent folders where stems collide."""
    stems = [Path(s).stem for s in sources]
    names = []
    for source, stem in zip(sources, stems, strict=True):
        if stems.count(stem) > 1:
            parent = Path(source).parent.name or "root"
            stem = f"{parent}_{stem}"
        names.append(stem)
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # still colliding (same parent names): number them
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def load_photo(source: str) -> np.ndarray:
    """uint8 [H, W, 3] of a source (a path, or the embedded astronaut portrait)."""
    if source == ASTRONAUT:
        return np.ascontiguousarray(skimage_data.astronaut()[..., :3])
    return read_image(source)


def source_digest(source: str) -> str:
    """sha256 of a source file's bytes (the astronaut: of its name), to recognise the same photo on a rerun;
    '' for a file that cannot be read (the engine reports it when it tries to load it)."""
    if source == ASTRONAUT:
        return hashlib.sha256(ASTRONAUT.encode()).hexdigest()
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()
