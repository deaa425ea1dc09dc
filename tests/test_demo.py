"""The demo app over loopback HTTP: bad uploads get the fit's own reasons, two uploads at once are fitted one after
the other, and the zip holds the mesh and images."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fit_helpers import SMOKE, deep3d_photos
from ganfit.demo import DemoServer
from report_helpers import no_face_jpeg


def _post(server: DemoServer, query: str, data: bytes = b"") -> tuple[int, dict]:
    request = urllib.request.Request(server.url + "api/fit?" + query, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _wait(server: DemoServer, ident: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{server.url}api/jobs/{ident}", timeout=30) as reply:
            status = json.load(reply)
        if status["state"] in ("done", "failed"):
            return status
        assert time.monotonic() < deadline, f"job {ident} still {status['state']} after {timeout} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> Iterator[DemoServer]:
    demo = DemoServer(tmp_path_factory.mktemp("demo"), port=0, overrides=[*SMOKE, "torch_threads=1"])
    demo.start_background()
    yield demo
    demo.shutdown()
    demo.server_close()


def test_bad_requests_are_refused_with_a_message(server: DemoServer) -> None:
    status, reply = _post(server, "preset=fast&filename=x.jpg")
    assert status == 400 and "empty" in reply["error"]
    status, reply = _post(server, "preset=turbo&example=astronaut")
    assert status == 400 and "unknown preset" in reply["error"]
    status, reply = _post(server, "preset=fast&example=mona_lisa")
    assert status == 400 and "unknown example" in reply["error"]


def test_corrupt_upload_and_no_face_photo_fail_with_the_fits_reason(server: DemoServer) -> None:
    """~10 s: both jobs go through the real fit job, which reports them as failed with its reasons."""
    status, broken = _post(server, "preset=fast&filename=broken.jpg", b"this is not a JPEG file")
    assert status == 202 and broken["state"] in ("queued", "running")
    status, coffee = _post(server, "preset=fast&filename=coffee.jpg", no_face_jpeg())
    assert status == 202
    broken, coffee = _wait(server, broken["id"], 120), _wait(server, coffee["id"], 120)
    assert broken["state"] == "failed" and broken["message"].startswith("UnreadableImageError"), broken
    assert coffee["state"] == "failed" and coffee["message"].startswith("NoFaceError"), coffee
    assert broken["files"] == [] and coffee["files"] == []
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"{server.url}jobs/{broken['id']}/bundle.zip", timeout=30)
    assert error.value.code == 404


@pytest.mark.slow
def test_two_uploads_at_once_are_fitted_one_after_the_other(server: DemoServer, photos_root: Path) -> None:
    photos = deep3d_photos(photos_root, 2)
    replies: list[dict] = []

    def upload(path: Path) -> None:
        status, reply = _post(server, f"preset=fast&filename={path.name}", path.read_bytes())
        assert status == 202
        replies.append(reply)

    threads = [threading.Thread(target=upload, args=(p,)) for p in photos]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replies) == 2
    jobs = sorted((_wait(server, r["id"], 300) for r in replies), key=lambda j: j["started"])
    elapsed = time.monotonic() - started
    assert [j["state"] for j in jobs] == ["done", "done"], jobs
    assert jobs[1]["started"] >= jobs[0]["finished"], "the two fits overlapped"
    assert elapsed < 300
    with urllib.request.urlopen(f"{server.url}jobs/{jobs[0]['id']}/bundle.zip", timeout=30) as reply:
        archive = zipfile.ZipFile(io.BytesIO(reply.read()))
    names = {Path(n).name for n in archive.namelist()}
    assert {"mesh.glb", "mesh.obj", "mesh.mtl", "texture.png", "overlay.png", "render.png"} <= names
    assert archive.read(f"{jobs[0]['name']}/mesh.glb")[:4] == b"glTF"
    with urllib.request.urlopen(f"{server.url}jobs/{jobs[1]['id']}/files/mesh.glb", timeout=30) as reply:
        assert reply.headers["Content-Type"] == "model/gltf-binary" and reply.read()[:4] == b"glTF"
