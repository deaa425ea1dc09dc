"""``ganfit data-split root=DIR [holdout=FILE.json] [pattern='^[^_]+']`` (= ``python -m ganfit.data_build.split
...``; ``holdout`` defaults to the packaged ``data/frl_holdout.json``; quote a pattern with brackets): split a built
dataset by person into ``DIR/split/train/`` and ``DIR/split/holdout/`` (symbolic links to ``DIR/textures/*.png``
only, so the folders can be given to ``train_texture_gan.py data.root=`` as they are).

A texture belongs to the held-out split when its person id (the first match of ``pattern`` in the file stem:
``001_03`` and ``001_08`` -> ``001``) is listed in the hold-out file *and* it comes from the set the ids refer to
(``set`` in the file, matched against the source path in ``metadata.jsonl``), so e.g. FRL-Canada's ``003f`` is never
confused with London's ``003``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING

from ganfit.args import parse_args
from ganfit.assets import DATA_DIR
from ganfit.exit_codes import run_command


def split_dataset(root: Path, holdout_file: Path, pattern: str = r"^[^_]+") -> dict[str, list[str]]:
    """Create ``root/split/{train,holdout}`` link folders; returns the stems in each."""
    holdout = json.loads(holdout_file.read_text())
    ids, dataset = set(holdout["holdout_ids"]), str(holdout.get("set", ""))
    records = [json.loads(line) for line in (root / "metadata.jsonl").read_text().splitlines() if line.strip()]
    out: dict[str, list[str]] = {"train": [], "holdout": []}
    for part in out:
        folder = root / "split" / part
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    for record in records:
        if record.get("status") != "kept":
            continue
        stem = record["name"]
        match = re.search(pattern, stem)
        person = match.group(0) if match else stem
        held = person in ids and (not dataset or f"/{dataset}/" in str(record.get("source", "")))
        part = "holdout" if held else "train"
        folder = root / "split" / part
        os.symlink((root / record["texture"]).resolve(), folder / f"{stem}.png")
        out[part].append(stem)
    return out


@dataclass
class SplitArgs:
    """The keys of ``ganfit data-split``."""

    root: Path = field(default=MISSING, metadata={"help": "a data_build output folder (metadata.jsonl, textures/)"})
    holdout: Path = field(default=DATA_DIR / "frl_holdout.json", metadata={"help": "hold-out file (ids, set)"})
    pattern: str = field(default=r"^[^_]+", metadata={"help": "regular expression of the person id in a stem"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None) -> int:
    args = parse_args(SplitArgs, argv, prog="ganfit data-split", doc=__doc__.split("\n\n")[0])
    parts = split_dataset(args.root, args.holdout, args.pattern)
    print(f"train {len(parts['train'])}, holdout {len(parts['holdout'])} -> {args.root / 'split'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
