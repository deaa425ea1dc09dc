"""``ganfit screenshots [target=docs/img]`` (= ``python -m ganfit.demo.screenshots ...``): remake
``docs/img/report.png`` and ``docs/img/demo.png``.

Real fits (``fitting=fast``): two FRL-London photos (CC BY 4.0) and a corrupt file for the report, the bundled
astronaut (public domain) in the demo; both pages are shot in headless Chromium offline. Needs ``GANFIT_PHOTOS``.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ganfit.args import parse_args
from ganfit.config import compose_config
from ganfit.demo.server import DemoServer
from ganfit.jobs.fit_job import run_fit_job as run_from_config
from ganfit.report.browser import HeadlessChromium
from ganfit.report.fit_report import write_fit_report

FRL = ("frl-london/neutral_front/001_03.jpg", "frl-london/neutral_front/002_03.jpg")


def _save(png: bytes, path: Path, width: int | None = None) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


@dataclass
class ScreenshotsArgs:
    """The keys of ``ganfit screenshots``."""

    target: Path = field(default=Path("docs/img"), metadata={"help": "folder for report.png and demo.png"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    target = parse_args(ScreenshotsArgs, argv, prog="ganfit screenshots", doc=__doc__.split("\n\n")[0]).target
    photos = Path(os.environ["GANFIT_PHOTOS"])
    root = Path(tempfile.mkdtemp(prefix="ganfit-shots-"))
    broken = root / "broken.jpg"
    broken.write_bytes(b"not a photo")
    listing = root / "photos.txt"
    listing.write_text("".join(f"{photos / p}\n" for p in FRL) + f"{broken}\n")
    cfg = compose_config("fit", [f"image={listing}", f"out={root / 'out'}", "fitting=fast", "progress=false"])
    print(run_from_config(cfg).format(), flush=True)
    page = write_fit_report(root / "out")
    with HeadlessChromium(width=1100, height=1300) as browser:
        browser.navigate(page.resolve().as_uri())
        browser.wait_for("document.querySelectorAll('.ganfit-viewer[data-viewer-state=ready]').length >= 2", 120)
        _save(browser.screenshot(full_page=True), target / "report.png", width=900)
        assert not browser.remote_requests(), browser.remote_requests()
    demo = DemoServer(root / "demo", port=0)
    demo.start_background()
    try:
        with HeadlessChromium(width=1100, height=720) as browser:
            browser.navigate(demo.url)
            browser.evaluate("document.getElementById('fit-example').click()")
            browser.wait_for("['done', 'failed'].includes(document.getElementById('status').dataset.state)", 600)
            browser.wait_for("document.getElementById('viewer').dataset.viewerState === 'ready'", 60)
            browser.wait_for("[...document.images].every((i) => i.complete && i.naturalWidth > 0)", 30)
            time.sleep(0.5)
            _save(browser.screenshot(full_page=True), target / "demo.png")
            assert not browser.remote_requests(), browser.remote_requests()
    finally:
        demo.shutdown()
        demo.server_close()
    print(f"wrote {target / 'report.png'} and {target / 'demo.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
