"""Ctrl-C in the other photo jobs, through their real entry points in subprocesses (issue 17): the dataset builder
(``python -m ganfit.data_build``) and the real-photo evaluation (``python -m ganfit.eval.photos``) exit 130 after
writing the summary of what finished. Real photos (Face Research Lab London, downsized), the real model, the
``fitting=smoke`` preset, one photo per batch so that the first photo is done while the second is being fitted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import frl_photo, run_until_then_interrupt

pytestmark = pytest.mark.slow

FAST = ("fitting=smoke", "fitting.batch_size=1", "progress=false", "torch_threads=1")


def _two_photos(photos_root: Path, folder: Path) -> Path:
    for index in range(2):
        frl_photo(photos_root, index, folder / f"p{index}.jpg")
    return folder


def test_data_build_sigint_exits_130_with_the_summary_of_what_finished(photos_root: Path, tmp_path: Path) -> None:
    folder = _two_photos(photos_root, tmp_path / "photos")
    out = tmp_path / "dataset"
    ran = run_until_then_interrupt(
        "ganfit.data_build", f"image={folder}", f"out={out}", *FAST,
        ready=lambda: (out / "meta" / "p0.json").is_file(), cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 130, ran.output[-3000:]
    assert "Traceback" not in ran.output
    assert "INTERRUPTED" in ran.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert [(p["name"], p["status"] in ("kept", "dropped")) for p in summary["photos"]] == [("p0", True)]
    assert not (out / "meta" / "p1.json").exists()
    assert [json.loads(line)["name"] for line in (out / "metadata.jsonl").read_text().splitlines()] == ["p0"]


def test_eval_photos_sigint_exits_130_after_the_fits_summary(photos_root: Path, tmp_path: Path) -> None:
    folder = _two_photos(photos_root, tmp_path / "photos")
    out = tmp_path / "eval"
    ran = run_until_then_interrupt(
        "ganfit.eval.photos", f"image={folder}", f"out={out}", "detail=false", *FAST,
        ready=lambda: (out / "fits" / "p0" / "metrics.json").is_file(), cwd=tmp_path,
    )  # fmt: skip
    assert ran.code == 130, ran.output[-3000:]
    assert "Traceback" not in ran.output
    lines = [line for line in ran.stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(lines) == 1 and "nothing measured" in lines[0] and str(out / "fits" / "summary.json") in lines[0]
    summary = json.loads((out / "fits" / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert [(p["name"], p["status"]) for p in summary["photos"]] == [("p0", "fitted")]
    assert not (out / "results.json").exists()  # no figures from a partial set
