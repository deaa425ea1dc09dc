"""The demo page in a real browser (headless Chromium, loopback only): a corrupt upload and a no-face photo show the
fit's message on the page; the example is fitted and its 3D view renders; nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fit_helpers import SMOKE
from ganfit.demo import DemoServer
from ganfit.report.browser import HeadlessChromium
from report_helpers import changed_fraction, no_face_jpeg, require_chromium, viewer_background

FINISHED = "['done', 'failed'].includes(document.getElementById('status').dataset.state)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> Iterator[DemoServer]:
    require_chromium()
    demo = DemoServer(tmp_path_factory.mktemp("demo_browser"), port=0, overrides=[*SMOKE, "torch_threads=1"])
    demo.start_background()
    yield demo
    demo.shutdown()
    demo.server_close()


def _upload_and_wait(browser: HeadlessChromium, path: Path) -> str:
    browser.set_file_input("#photo", path)
    browser.evaluate("document.getElementById('fit-upload').click()")
    browser.wait_for("document.getElementById('status').dataset.state !== undefined", timeout=30)
    browser.wait_for(FINISHED, timeout=120)
    return browser.evaluate("document.getElementById('message').textContent")


def test_bad_uploads_show_the_reason_on_the_page(server: DemoServer, tmp_path: Path) -> None:
    """~15 s: two failing jobs through the page's own file input and button."""
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG file")
    coffee = tmp_path / "coffee.jpg"
    coffee.write_bytes(no_face_jpeg())
    with HeadlessChromium() as browser:
        browser.navigate(server.url)
        assert _upload_and_wait(browser, broken).startswith("UnreadableImageError")
        assert browser.evaluate("document.getElementById('message').className") == "error"
        browser.evaluate("delete document.getElementById('status').dataset.state")
        assert _upload_and_wait(browser, coffee).startswith("NoFaceError")
        assert browser.evaluate("document.getElementById('results').hidden") is True
        assert browser.remote_requests() == [], browser.remote_requests()


@pytest.mark.slow
def test_example_fit_shows_a_turnable_mesh(server: DemoServer, tmp_path: Path) -> None:
    with HeadlessChromium(width=1280, height=1000) as browser:
        browser.navigate(server.url)
        browser.evaluate("document.getElementById('fit-example').click()")
        browser.wait_for("document.getElementById('status').dataset.state === 'running'", timeout=60)
        assert browser.evaluate("document.getElementById('progress').value") >= 0
        browser.wait_for(FINISHED, timeout=240)
        assert browser.evaluate("document.getElementById('status').dataset.state") == "done", browser.evaluate(
            "document.getElementById('message').textContent"
        )
        browser.wait_for("['ready', 'error'].includes(document.getElementById('viewer').dataset.viewerState)", 60)
        assert browser.evaluate("document.getElementById('viewer').dataset.viewerState") == "ready", browser.console
        browser.wait_for("[...document.images].every((i) => i.complete && i.naturalWidth > 0)", timeout=30)
        before = browser.screenshot(clip=browser.rect("#viewer"))
        assert changed_fraction(before, viewer_background()) > 0.5, "the 3D view looks blank"
        # turn the face: drag across the canvas
        box = browser.rect("#viewer canvas")
        x, y = box.x + box.width / 2, box.y + box.height / 2
        browser.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "button": "left"})
        for step in range(1, 11):
            browser.send(
                "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + 12 * step, "y": y, "button": "left"}
            )
        browser.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x + 120, "y": y, "button": "left"})
        turned = browser.screenshot(clip=browser.rect("#viewer"))
        assert turned != before and changed_fraction(turned, viewer_background()) > 0.3
        assert browser.evaluate("document.getElementById('download').href").endswith("/bundle.zip")
        browser.screenshot(tmp_path / "demo.png", full_page=True)
        assert browser.requests and browser.remote_requests() == [], browser.remote_requests()
        assert all(url.startswith((server.url, "data:", "blob:", "about:")) for url in browser.requests)
