"""The fit report in a real browser (headless Chromium, offline): it opens from file://, the 3D views render a face,
the light toggle changes the picture, and no request leaves the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganfit.report import write_fit_report
from ganfit.report.browser import HeadlessChromium
from report_helpers import (
    changed_fraction,
    mean_face_job,
    require_chromium,
    viewer_background,
)

READY = "document.querySelectorAll('.ganfit-viewer[data-viewer-state=ready]').length >= {n}"
ERRORS = "document.querySelectorAll('.ganfit-viewer[data-viewer-state=error]').length"


def _check_report(out: Path, viewers: int, shots: Path | None = None) -> None:
    require_chromium()
    page = write_fit_report(out)
    with HeadlessChromium(width=1280, height=1800) as browser:
        browser.navigate(page.resolve().as_uri())
        browser.wait_for(f"{READY.format(n=viewers)} || {ERRORS} > 0", timeout=90)
        assert browser.evaluate(ERRORS) == 0, browser.console
        for index in range(viewers):
            selector = f"section.card.fitted:nth-of-type({index + 1}) .ganfit-viewer"
            lit = browser.screenshot(clip=browser.rect(selector))
            # a face fills the middle of the view: most of its central quarter differs from the background
            assert changed_fraction(lit, viewer_background()) > 0.5, f"3D view {index} looks blank"
            browser.evaluate(f"document.querySelector({selector!r} + ' .ganfit-light').click()")
            flat = browser.screenshot(clip=browser.rect(selector))
            assert flat != lit, "the light toggle changed nothing"
            assert changed_fraction(flat, viewer_background()) > 0.5
        if shots is not None:
            browser.evaluate("document.querySelectorAll('.ganfit-light').forEach((b) => b.click())")  # lit again
            browser.screenshot(shots, full_page=True)
        assert browser.requests, "no requests were recorded at all"
        assert browser.remote_requests() == [], f"requests left the machine: {browser.remote_requests()}"
        assert not browser.failed_requests, browser.failed_requests
        assert all(url.startswith(("file://", "data:", "blob:", "about:")) for url in browser.requests)


@pytest.fixture(scope="module")
def mean_face_out(tmp_path_factory: pytest.TempPathFactory, photos_root: Path, assets_dir: Path) -> Path:
    return mean_face_job(tmp_path_factory.mktemp("browser_report"), photos_root)


def test_report_3d_view_renders_offline_from_disk(mean_face_out: Path) -> None:
    """Fast (~5 s): the mean-face job's report."""
    _check_report(mean_face_out, viewers=1)


@pytest.mark.slow
def test_report_of_a_real_fit_in_the_browser(real_fit_out: Path, assets_dir: Path) -> None:
    out = real_fit_out
    _check_report(out, viewers=2, shots=out / "report_screenshot.png")
    assert (out / "report_screenshot.png").stat().st_size > 10_000
