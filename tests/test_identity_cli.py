"""``python -m ganfit.identity compare|embed`` on real photos, and its errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit.identity import load_identity_network
from ganfit.identity.__main__ import main
from ganfit.identity.api import compare_descriptors, embed_photo
from identity_helpers import dlib_models_dir, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_LINE = re.compile(r"^distance: (\d+\.\d{3}) cosine: (-?\d+\.\d{3})$")


@pytest.fixture(scope="module")
def pair(photos_root) -> tuple[Path, Path]:
    train = photos_root / "face-recognition-examples/knn_examples/train"
    return train / "obama/obama.jpg", train / "biden/biden.jpg"


def test_compare_prints_the_api_distance(pair, capsys) -> None:
    dlib_models_dir()
    net = load_identity_network("dlib")
    a, b = (embed_photo(p, net).descriptor for p in pair)
    distance, cosine = compare_descriptors(a, b)
    assert main(["compare", f"photo_a={pair[0]}", f"photo_b={pair[1]}"]) == 0
    out = capsys.readouterr().out.strip()
    match = _LINE.match(out)
    assert match, out
    assert match.group(1) == f"{distance:.3f}" and match.group(2) == f"{cosine:.3f}"
    assert distance > 0.6  # two different people


def test_module_entry_point_runs(pair) -> None:
    """The real ``python -m ganfit.identity`` process prints the same line as the API."""
    dlib_models_dir()
    net = load_identity_network("dlib")
    same = pair[0].parent / "obama2.jpg"
    distance, cosine = compare_descriptors(embed_photo(pair[0], net).descriptor, embed_photo(same, net).descriptor)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "ganfit.identity", "compare", f"photo_a={pair[0]}", f"photo_b={same}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"distance: {distance:.3f} cosine: {cosine:.3f}"
    assert distance < 0.6  # the same person


def test_embed_saves_the_descriptor(pair, tmp_path, capsys) -> None:
    dlib_models_dir()
    out = tmp_path / "obama.npy"
    assert main(["embed", f"photo={pair[0]}", f"out={out}"]) == 0
    assert "128-d" in capsys.readouterr().out
    saved = np.load(out)
    expected = embed_photo(pair[0], load_identity_network("dlib")).descriptor
    assert saved.shape == (128,) and saved.dtype == np.float32
    np.testing.assert_allclose(saved, expected, atol=1e-6)
    assert main(["embed", f"photo={pair[0]}"]) == 0
    printed = np.array(capsys.readouterr().out.split(), dtype=np.float64)
    np.testing.assert_allclose(printed, expected, atol=1e-5)


def test_errors_are_one_line_and_nonzero(pair, tmp_path, capsys) -> None:
    noise = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)).save(noise)
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a photo")
    cases = [
        (["compare", f"photo_a={pair[0]}", f"photo_b={noise}"], "no face"),
        (["embed", f"photo={not_image}"], "notes.jpg"),
        (["embed", f"photo={tmp_path / 'missing.jpg'}"], "missing.jpg"),
        (["embed", f"photo={pair[0]}", "identity=arcface"], "onnx_path"),
        (["embed", f"photo={pair[0]}", "identity=arcface", f"onnx_path={tmp_path / 'r50.onnx'}"], "r50.onnx"),
        (["embed", f"photo={pair[0]}", "identity=arcfce"], "identity='arcfce'"),
        (["embed", f"photo={pair[0]}", "face_index=first"], "face_index"),
        (["embed"], "photo is required"),
        (["embde", f"photo={pair[0]}"], "'embde' is not an action"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], (argv, err)
