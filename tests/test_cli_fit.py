"""fit.py end to end in subprocesses (issue 17): mixed inputs and the exit code, strict booleans, paths that need
Hydra quoting, a fit's identity on disk, Ctrl-C and SIGKILL. Real photos (Face Research Lab London, downsized), the
real model, the ``fitting=smoke`` preset; each test runs one or two real fits, so they are marked slow."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import NATIVE_LOG_MARKERS, command, environment, frl_photo, run, run_until_then_interrupt

pytestmark = pytest.mark.slow

FAST = ("fitting=smoke", "report=false", "detail=false", "torch_threads=1")


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _status(summary: dict) -> dict[str, str]:
    return {entry["name"]: entry["status"] for entry in summary["photos"]}


def test_list_file_with_failures_then_quoted_rerun_and_changed_settings(photos_root: Path, tmp_path: Path) -> None:
    """A list file naming a photo with a non-ASCII and a '#' path, an empty file and a missing entry: exit 1, the
    summary says which failed; progress=off shows no bar; no mediapipe / TF Lite line reaches the terminal. Then the
    same photo named on the command line with Hydra quoting and overwrite=no: skipped (no means false); with other
    settings: skipped with a warning that says so."""
    photo = frl_photo(photos_root, 0, tmp_path / "fotos ü" / "a#1.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    listing = tmp_path / "photos.txt"
    listing.write_text("# my photos\nfotos ü/a#1.jpg\nempty.jpg\nmissing.jpg\n", encoding="utf-8")
    out = tmp_path / "out"

    ran = run("fit", f"image={listing}", f"out={out}", "progress=off", *FAST, cwd=tmp_path)
    assert ran.code == 1, ran.output[-3000:]
    assert "Traceback" not in ran.output
    assert "fitting:" not in ran.stderr  # progress=off
    assert not [line for line in ran.output.splitlines() if any(m in line for m in NATIVE_LOG_MARKERS)], ran.output
    assert "fitted 1, skipped 0, failed 2" in ran.stdout
    summary = _summary(out)
    assert _status(summary) == {"a#1": "fitted", "empty": "failed", "missing": "failed"}
    reasons = {entry["name"]: entry["reason"] for entry in summary["photos"]}
    assert "empty" in reasons["empty"] and "no such file" in reasons["missing"]
    settings = json.loads((out / "a#1" / "metrics.json").read_text())["settings_sha256"]

    quoted = f"image='{photo}'"  # single quotes: Hydra's grammar reads the spaces, '#' and 'ü' verbatim
    again = run("fit", quoted, f"out={out}", "overwrite=no", "progress=off", *FAST, cwd=tmp_path)
    assert again.code == 0, again.output[-3000:]
    assert "fitted 0, skipped 1, failed 0" in again.stdout
    assert "already fitted (overwrite=true to redo)" in again.stdout

    changed = run("fit", quoted, f"out={out}", "seed=1", "progress=off", *FAST, cwd=tmp_path)
    assert changed.code == 0, changed.output[-3000:]
    assert "skipped 1" in changed.stdout
    assert "already fitted with other settings (overwrite=true to refit with these)" in changed.output
    assert json.loads((out / "a#1" / "metrics.json").read_text())["settings_sha256"] == settings  # not refitted


def test_same_name_different_photo_goes_to_name_2(photos_root: Path, tmp_path: Path) -> None:
    first = frl_photo(photos_root, 0, tmp_path / "one" / "face.jpg")
    second = frl_photo(photos_root, 1, tmp_path / "two" / "face.jpg")
    out = tmp_path / "out"
    assert run("fit", f"image={first}", f"out={out}", "progress=false", *FAST, cwd=tmp_path).code == 0
    ran = run("fit", f"image={second}", f"out={out}", "progress=false", *FAST, cwd=tmp_path)
    assert ran.code == 0, ran.output[-3000:]
    assert "holds the fit of a different photo; fitting into face-2/" in ran.output
    old = json.loads((out / "face" / "metrics.json").read_text())
    new = json.loads((out / "face-2" / "metrics.json").read_text())
    assert old["source_sha256"] != new["source_sha256"] and new["source"] == str(second)
    summary = _summary(out)
    assert _status(summary) == {"face-2": "fitted", "face": "fitted"}  # both in the folder's summary
    assert {entry["name"]: entry["latest"] for entry in summary["photos"]} == {"face-2": True, "face": False}


def test_sigint_mid_batch_exits_130_with_the_summary_of_what_finished(photos_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for index in range(2):
        frl_photo(photos_root, index, folder / f"p{index}.jpg")
    out = tmp_path / "out"
    args = (f"image={folder}", f"out={out}", "progress=false", "fitting.batch_size=1", *FAST)
    ran = run_until_then_interrupt(  # Ctrl-C while p1 is being fitted
        "fit", *args, ready=lambda: (out / "p0" / "metrics.json").is_file(), cwd=tmp_path
    )
    assert ran.code == 130, ran.output[-3000:]
    assert "Traceback" not in ran.stderr
    assert "INTERRUPTED" in ran.stdout
    summary = _summary(out)
    assert summary["interrupted"] is True
    assert _status(summary) == {"p0": "fitted"}
    assert not (out / "p1" / "metrics.json").exists()


def test_sigkill_during_export_then_rerun_leaves_no_staging(photos_root: Path, tmp_path: Path) -> None:
    photo = frl_photo(photos_root, 2, tmp_path / "photos" / "k.jpg")
    (photo.parent / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))  # passed over, said so
    (photo.parent / "phone.avif").write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(200))
    out = tmp_path / "out"
    args = (f"image={photo.parent}", f"out={out}", "progress=false", *FAST)
    proc = subprocess.Popen(command("fit", *args), cwd=tmp_path, env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 500
    while not list((out / "k").glob(".tmp-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()  # SIGKILL while the export is being written
    proc.wait(timeout=60)
    assert list((out / "k").glob(".tmp-*")), "the kill did not land during the export"
    assert not (out / "k" / "metrics.json").exists()

    ran = run("fit", *args, cwd=tmp_path)
    assert ran.code == 0, ran.output[-3000:]
    assert "removed" in ran.output and "left by an interrupted run" in ran.output
    assert "not read (unsupported photo format): 1 .avif, 1 .heic; convert them to JPEG or PNG" in ran.stdout
    assert not list(out.rglob(".tmp-*"))
    assert {"metrics.json", "mesh.obj", "compare.png", "texture.png"} <= {p.name for p in (out / "k").iterdir()}
    assert _status(_summary(out)) == {"k": "fitted"}
