"""Asset resolution, integrity checks and error messages (no network)."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from ganfit import assets


def test_missing_model_error_names_env_var_and_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFIT_ASSETS", str(tmp_path))
    with pytest.raises(assets.AssetNotFoundError) as info:
        assets.locate_ict()
    message = str(info.value)
    assert str(tmp_path) in message
    assert "GANFIT_ASSETS" in message and "face_model.assets_dir" in message
    assert "python -m ganfit.assets fetch" in message and "ICT-FaceKit" in message


def test_locate_accepts_folder_archive_and_direct_paths(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "FaceXModel"
    folder.mkdir(parents=True)
    (folder / "generic_neutral_mesh.obj").write_text("v 0 0 0\n")
    assert assets.locate_ict(tmp_path / "a") == assets.IctSource(folder, is_archive=False)
    assert assets.locate_ict(folder) == assets.IctSource(folder, is_archive=False)
    archive = tmp_path / "b" / "FaceXModel.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(folder, arcname="FaceXModel")
    assert assets.locate_ict(tmp_path / "b") == assets.IctSource(archive, is_archive=True)
    assert assets.locate_ict(archive).is_archive
    names = [name for name, _ in assets.iter_ict_files(assets.locate_ict(archive))]
    assert names == ["generic_neutral_mesh.obj"]


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "FaceXModel.tar.xz"
    archive.write_bytes(b"not an archive at all")
    with pytest.raises(assets.AssetIntegrityError, match="cannot read ICT FaceKit archive"):
        list(assets.iter_ict_files(assets.locate_ict(tmp_path)))


def test_checksum_mismatch_is_detected() -> None:
    manifest = assets.load_manifest()
    assert len(manifest) == 160 and "generic_neutral_mesh.obj" in manifest
    with pytest.raises(assets.AssetIntegrityError, match="vertex_indices.json has sha256"):
        assets.verify_files({"vertex_indices.json": b"{}"}, manifest)
    good = b"hello"
    assets.verify_files({"x.json": good}, {"x.json": hashlib.sha256(good).hexdigest()})


def test_real_assets_verify(assets_dir: Path) -> None:
    assert assets.main(["verify", f"dir={assets_dir}"]) == 0


def test_cli_reports_missing_assets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert assets.main(["where", f"dir={tmp_path}"]) == 2  # missing assets: a usage error
    assert "ICT FaceKit model not found" in capsys.readouterr().err
