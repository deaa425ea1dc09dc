"""The static report pages: the fit report's cards, files and links; tables (worst first); contact sheets."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from ganfit.report import image_files, write_contact_sheet, write_fit_report, write_table_report
from report_helpers import mean_face_job


class _Links(HTMLParser):
    """Every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href", "data-glb-script") and value:
                self.urls.append(value)


def _local_targets(page: Path) -> list[Path]:
    parser = _Links()
    parser.feed(page.read_text())
    assert parser.urls
    for url in parser.urls:
        assert not re.match(r"^[a-z]+://", url), f"the page refers to a remote URL: {url}"
    return [page.parent / unquote(url) for url in parser.urls]


@pytest.fixture(scope="module")
def mean_face_out(tmp_path_factory: pytest.TempPathFactory, photos_root: Path, assets_dir: Path) -> Path:
    return mean_face_job(tmp_path_factory.mktemp("report"), photos_root)


def test_fit_report_cards_links_and_mesh_data(mean_face_out: Path) -> None:
    """Fast: a card per photo, the failure with its reason, every link resolves, the mesh script holds the GLB."""
    page = write_fit_report(mean_face_out)
    assert page == mean_face_out / "index.html"
    text = page.read_text()
    assert text.count('class="card fitted"') == 1 and text.count('class="card failed"') == 1
    summary = json.loads((mean_face_out / "summary.json").read_text())
    reason = next(p["reason"] for p in summary["photos"] if p["status"] == "failed")
    assert reason and reason.split(":")[0] in text  # e.g. UnreadableImageError
    for target in _local_targets(page):
        assert target.is_file(), f"broken link {target}"
    script = (mean_face_out / "index_files" / "mean_face.glb.js").read_text()
    payload = re.search(r'"([A-Za-z0-9+/=]+)"\);\s*$', script).group(1)
    assert base64.b64decode(payload) == (mean_face_out / "mean_face" / "mesh.glb").read_bytes()
    assert (mean_face_out / "index_files" / "ganfit-viewer.min.js").stat().st_size > 100_000
    assert (mean_face_out / "index_files" / "LICENSE.three.txt").is_file()


def test_fit_report_needs_a_summary(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="summary.json"):
        write_fit_report(tmp_path)


def test_table_report_puts_the_worst_first_and_failures_on_top(tmp_path: Path) -> None:
    rows = [
        {"photo": "a", "status": "ok", "identity_distance": 0.40, "image": "a.png"},
        {"photo": "b", "status": "failed", "reason": "NoFaceError: no face"},
        {"photo": "c", "status": "ok", "identity_distance": 0.71, "link": "c/index.html"},
        {"photo": "d", "status": "ok", "identity_distance": 0.55},
    ]
    page = write_table_report(tmp_path, rows, "eval", sort_by="identity_distance")
    text = page.read_text()
    order = [m for m in re.findall(r"<tr[^>]*><td>\d+</td>(?:<td>.*?</td>)?<td[^>]*>(?:<a [^>]*>)?(\w)", text)]
    assert order == ["b", "c", "d", "a"], order
    assert 'class="failed"' in text and "NoFaceError" in text and 'src="a.png"' in text
    page = write_table_report(tmp_path, rows, "eval", sort_by="identity_distance", higher_is_worse=False)
    order = re.findall(r"<tr[^>]*><td>\d+</td>(?:<td>.*?</td>)?<td[^>]*>(?:<a [^>]*>)?(\w)", page.read_text())
    assert order == ["b", "a", "d", "c"], order


def test_contact_sheet_links_every_image(mean_face_out: Path, photos_root: Path) -> None:
    folder = photos_root / "frl-london" / "neutral_front"
    images = image_files(folder)[:6]
    page = write_contact_sheet(mean_face_out, [*images, ("the mean face texture", "mean_face/texture.png")], "sheet")
    text = page.read_text()
    assert text.count("<figure>") == 7 and "the mean face texture" in text
    for target in _local_targets(page):
        assert target.is_file(), f"broken link {target}"


@pytest.mark.slow
def test_fit_report_of_a_real_fit(real_fit_out: Path, assets_dir) -> None:
    out = real_fit_out
    page = write_fit_report(out)
    text = page.read_text()
    assert text.count('class="card fitted"') == 2 and text.count('class="card failed"') == 1
    assert text.count('class="ganfit-viewer"') == 2
    for name in ("overlay.png", "render.png", "texture.png", "mesh.obj", "mesh.glb", "metrics.json"):
        assert text.count(f'/{name}"') >= 2, name
    assert "identity cosine (after stage 2)" in text
    for target in _local_targets(page):
        assert target.is_file(), f"broken link {target}"


@pytest.mark.slow
def test_reconstruction_sheet_of_a_real_fit(real_fit_out: Path, tmp_path: Path) -> None:
    """The before/after sheet (``ganfit.tools.reconstruction_sheet``) of a real fit job against itself: one row per
    photo, seven tiles (photo; overlay, render alone, texture twice), a JPEG small enough to commit."""
    from ganfit.tools import reconstruction_sheet

    out = tmp_path / "sheet.jpg"
    code = reconstruction_sheet.main([f"before={real_fit_out}", f"after={real_fit_out}", f"out={out}", "tile=96"])
    assert code == 0
    with Image.open(out) as picture:
        assert picture.format == "JPEG" and picture.size == (7 * 96, 18 + 2 * 96)
        pixels = np.asarray(picture.convert("RGB"))
    assert out.stat().st_size < 300_000
    assert pixels[18:114, 96:192].std() > 10  # the overlay tile shows a face, not a blank
    assert reconstruction_sheet.main([f"before={real_fit_out}", f"after={tmp_path}", f"out={out}"]) == 2
