"""The photo-job engine's Ctrl-C handling, without a fit: a task whose batch is interrupted after the first photo's
done-marker was written (the moment a real Ctrl-C can land between a photo's last file and ``process`` returning).
The engine must keep that photo in the outcomes it returns and leave out the one that was not finished. Real photos
and the real face detector (the engine reads and crops them before ``process``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fit_helpers import deep3d_photos
from ganfit.jobs.engine import Outcome, PhotoItem, PrepareOptions, run_shard, written_during_run


class InterruptedAfterFirstPhoto:
    """Writes ``<name>.json`` for the batch's first photo, then Ctrl-C arrives."""

    progress_label = "test"

    def __init__(self, out: Path) -> None:
        self.out = out
        self.batch_size = 2
        self.prepare_options = PrepareOptions(dense=False)
        self.started = 0.0

    def check_done(self, name: str, source: str) -> Outcome | None:
        return None

    def setup(self) -> None:
        self.started = time.time()

    def prepare(self, item: PhotoItem) -> None:
        return None

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        (self.out / f"{items[0].name}.json").write_text(json.dumps({"status": "fitted"}))
        raise KeyboardInterrupt

    def recover(self, name: str, source: str) -> Outcome | None:
        marker = self.out / f"{name}.json"
        if not written_during_run(marker, self.started):
            return None
        return Outcome(name, source, json.loads(marker.read_text())["status"])


def test_ctrl_c_after_a_photo_was_written_keeps_it_in_the_outcomes(photos_root: Path, tmp_path: Path) -> None:
    sources = [str(path) for path in deep3d_photos(photos_root, 2)]
    stale = tmp_path / "b.json"
    stale.write_text(json.dumps({"status": "fitted"}))  # an earlier run's marker: not this run's work
    time.sleep(0.05)
    result = run_shard(InterruptedAfterFirstPhoto(tmp_path), sources, ["a", "b"], progress=False)
    assert result.interrupted
    assert [(o.name, o.source, o.status) for o in result.outcomes] == [("a", sources[0], "fitted")]


class RecordsFocal(InterruptedAfterFirstPhoto):
    """Records each prepared photo's start focal length (read by the engine from the file's EXIF)."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.batch_size = 1
        self.focal: dict[str, float | None] = {}

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        self.focal.update({item.name: item.photo.focal_factor for item in items})
        return [Outcome(item.name, item.source, "fitted") for item in items]


def test_the_engine_reads_the_focal_length_from_exif(photos_root: Path, tmp_path: Path) -> None:
    nikon = photos_root / "face-recognition-examples" / "knn_examples" / "test" / "alex_lacamoire1.jpg"
    plain = deep3d_photos(photos_root, 1)[0]  # no EXIF focal length
    task = RecordsFocal(tmp_path)
    result = run_shard(task, [str(nikon), str(plain)], ["nikon", "plain"], progress=False)
    assert [o.status for o in result.outcomes] == ["fitted", "fitted"]
    assert task.focal["nikon"] == pytest.approx(1.247, abs=0.01) and task.focal["plain"] is None
    task = RecordsFocal(tmp_path)
    task.prepare_options = PrepareOptions(dense=False, exif_focal=False)
    run_shard(task, [str(nikon)], ["nikon"], progress=False)
    assert task.focal["nikon"] is None
