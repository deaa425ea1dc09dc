"""Multi-photo fitting (shared_identity=true): grouping by person, tied parameters, one reconstruction per person."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganfit.fitting.fitter import share_rows
from ganfit.fitting.params import FitParameters, ParamsConfig
from ganfit.jobs.fit_job import run_fit_job
from ganfit.jobs.multi_fit import group_by_person


def test_group_by_list_labels_and_folder(tmp_path):
    for name in ("a1.jpg", "a2.jpg", "b1.jpg", "c/c1.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "people.txt"
    listing.write_text("a1.jpg\tanna\nb1.jpg\tbob\na2.jpg\tanna\nc/c1.jpg\n")
    people, inputs = group_by_person(str(listing))
    assert [p.name for p in people] == ["anna", "bob", "c"]
    assert [Path(s).name for s in people[0].sources] == ["a1.jpg", "a2.jpg"]
    assert len(inputs.sources) == 4
    folder_people, _ = group_by_person(str(tmp_path / "c"))
    assert [p.name for p in folder_people] == ["c"] and len(folder_people[0].sources) == 1


def test_shared_rows_stay_equal_under_adam():
    params = FitParameters(3, ParamsConfig(texture="gan", latent_dim=8), (64, 64))
    with torch.no_grad():
        params.ps.normal_()
        params.pt.normal_()
    share_rows(params)
    optimizer = torch.optim.Adam([params.ps, params.pt, params.pe], lr=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        weights = torch.arange(1.0, 4.0)[:, None]
        loss = ((params.ps - weights) ** 2).sum() + (params.pt * weights).sum() + ((params.pe - weights) ** 2).sum()
        loss.backward()
        optimizer.step()
    assert torch.equal(params.ps[0], params.ps[1]) and torch.equal(params.ps[0], params.ps[2])
    assert torch.equal(params.pt[0], params.pt[2])
    assert not torch.equal(params.pe[0], params.pe[1]), "per-photo parameters stay free"


@pytest.mark.slow
def test_shared_fit_writes_one_reconstruction(tmp_path, photos_root, assets_dir, compose_fit):
    london = photos_root / "frl-london"
    listing = tmp_path / "people.txt"
    listing.write_text(
        f"{london / 'neutral_front' / '001_03.jpg'}\tp001\n{london / 'smiling_front' / '001_08.jpg'}\tp001\n"
    )
    out = tmp_path / "out"
    cfg = compose_fit([f"image={listing}", f"out={out}", "shared_identity=true", "detail=false", "eyes=false"])
    summary = run_fit_job(cfg)
    assert summary.count("fitted") == 2 and summary.exit_code == 0
    person = out / "p001"
    for name in ("mesh.obj", "mesh.mtl", "texture.png", "mesh.glb", "params.json", "metrics.json"):
        assert (person / name).is_file(), name
    assert "map_Kd texture.png" in (person / "mesh.mtl").read_text()
    views = sorted(p.name for p in (person / "views").iterdir())
    assert views == ["001_03", "001_08"]
    shape = json.loads((person / "params.json").read_text())["ps"]
    for view in views:
        assert json.loads((person / "views" / view / "params.json").read_text())["ps"] == pytest.approx(shape)
        assert (person / "views" / view / "overlay.png").is_file()
    second = run_fit_job(cfg)  # same photos and settings: the person is skipped
    assert second.count("skipped") == 2 and second.count("fitted") == 0
