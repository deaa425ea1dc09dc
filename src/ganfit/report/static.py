"""The vendored mesh viewer (``static/ganfit-viewer.min.js``: three.js + GLTFLoader + OrbitControls as one classic
script, see ``static/README.md``) and the data scripts that hand a GLB to it on ``file://`` pages."""

from __future__ import annotations

import base64
import json
import shutil
from importlib import resources
from pathlib import Path

VIEWER_FILE = "ganfit-viewer.min.js"
LICENSE_FILE = "LICENSE.three.txt"


def viewer_source() -> Path:
    """Path of the vendored viewer bundle inside the installed package."""
    path = Path(str(resources.files("ganfit.report") / "static" / VIEWER_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"the vendored viewer {path} is missing (rebuild it with static/build.sh)")
    return path


def install_viewer(folder: Path) -> Path:
    """Copy the viewer bundle (and three.js's licence) into ``folder``; returns the bundle's path there."""
    folder.mkdir(parents=True, exist_ok=True)
    source = viewer_source()
    target = folder / VIEWER_FILE
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)
    licence = source.parent / LICENSE_FILE
    if licence.is_file():
        shutil.copyfile(licence, folder / LICENSE_FILE)
    return target


def write_glb_script(glb: Path, target: Path, mesh_id: str) -> Path:
    """``target`` = a classic script that registers ``glb``'s bytes (base64) with the viewer under ``mesh_id``.

    ``file://`` pages may not fetch() local files, but they may load classic scripts: this is how the GLB reaches
    the viewer without embedding every mesh in the page itself (pages of many photos stay small and load lazily).
    """
    payload = base64.b64encode(Path(glb).read_bytes()).decode("ascii")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    tmp.write_text(f'GanfitViewer.register({json.dumps(mesh_id)}, "{payload}");\n', encoding="ascii")
    tmp.replace(target)
    return target
