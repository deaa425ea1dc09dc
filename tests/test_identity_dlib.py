"""dlib .dat reader and the PyTorch dlib face-recognition ResNet against dlib itself."""

from __future__ import annotations

import dlib
import numpy as np
import pytest
import torch

from ganfit.identity import load_identity_network
from ganfit.identity.dlib_reader import DlibFormatError, DlibStream, read_dlib_network
from ganfit.identity.dlib_resnet import DLIB_FEATURE_TAPS, DlibResNet, IdentityWeightsNotFoundError
from ganfit.image_io import read_image
from identity_helpers import dlib_models_dir, one_torch_thread, to_chip_tensor  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def net() -> DlibResNet:
    dlib_models_dir()
    return DlibResNet.from_dat().eval()


def test_primitives_decode_as_in_serialize_h() -> None:
    # 0 -> 01 00; -28 -> 81 1c; 1000 -> 02 e8 03; float 0.04 = 10737418 * 2**-28; string "abc"; bool '1'
    data = bytes([0x01, 0x00, 0x81, 0x1C, 0x02, 0xE8, 0x03, 0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C]) + b"\x01\x03abc1"
    s = DlibStream(data)
    assert [s.read_int(), s.read_int(), s.read_int()] == [0, -28, 1000]
    assert s.read_float() == pytest.approx(0.04, rel=1e-7)
    assert s.read_str() == "abc"
    assert s.read_bool() is True
    with pytest.raises(DlibFormatError, match="end of file"):
        s.read_int()


def test_reader_parses_the_face_recognition_model() -> None:
    parsed = read_dlib_network(dlib_models_dir() / "dlib_face_recognition_resnet_model_v1.dat")
    assert parsed.loss.kind == "loss_metric_2"
    assert parsed.loss.config["dist_thresh"] == pytest.approx(0.6)
    assert parsed.input.kind == "input_rgb_image_sized"
    avg = [parsed.input.config[k] for k in ("avg_red", "avg_green", "avg_blue")]
    assert avg == pytest.approx([122.782, 117.001, 104.298], abs=1e-3)
    families = [layer.family for layer in parsed.layers]
    assert families.count("con") == 29 and families.count("affine") == 29 and families[-1] == "fc"
    assert parsed.layers[-1].arrays["weights"].shape == (256, 128)


def test_reader_rejects_other_files(tmp_path) -> None:
    bad = tmp_path / "not_a_net.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(DlibFormatError, match="not_a_net.dat"):
        read_dlib_network(bad)
    with pytest.raises(FileNotFoundError):
        read_dlib_network(tmp_path / "missing.dat")
    with pytest.raises(IdentityWeightsNotFoundError):
        DlibResNet.from_dat(tmp_path / "missing.dat")


def test_matches_dlib_descriptor_on_real_photos(net: DlibResNet, photos_root) -> None:
    """Same 150x150 chip (dlib's HOG detector + 5-point predictor + get_face_chip) into dlib and into our port."""
    models = dlib_models_dir()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    reference = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    chips, names = [], []
    for path in sorted((photos_root / "deep3d-examples").glob("*.jpg")):
        image = read_image(path)
        faces = detector(image, 1)
        if faces:
            chips.append(dlib.get_face_chip(image, predictor(image, faces[0]), size=150, padding=0.25))
            names.append(path.name)
        if len(chips) == 12:
            break
    assert len(chips) >= 10, f"dlib found faces in only {len(chips)} photos"
    expected = np.stack([np.array(reference.compute_face_descriptor(c)) for c in chips])
    with torch.no_grad():
        ours = net(torch.cat([to_chip_tensor(c) for c in chips])).numpy().astype(np.float64)
    cosine = (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999, dict(zip(names, cosine.round(6), strict=True))
    assert np.abs(ours - expected).max() < 1e-4  # in fact ~5e-7: the same float32 computation


def test_features_and_gradients(net: DlibResNet) -> None:
    chips = torch.rand(2, 3, 150, 150, requires_grad=True)
    taps = net.features(chips)
    assert tuple(taps) == DLIB_FEATURE_TAPS
    shapes = {k: tuple(v.shape) for k, v in taps.items()}
    assert shapes["stem"] == (2, 32, 72, 72) and shapes["level1"] == (2, 256, 4, 4)
    assert shapes["level0"] == (2, 256, 2, 2) and shapes["descriptor"] == (2, 128)
    torch.testing.assert_close(taps["descriptor"], net(chips))
    (taps["descriptor"].square().sum() + taps["level3"].mean()).backward()
    assert chips.grad is not None and torch.isfinite(chips.grad).all() and chips.grad.abs().sum() > 0


def test_load_identity_network_is_frozen_module() -> None:
    dlib_models_dir()
    net = load_identity_network("dlib")
    assert isinstance(net, DlibResNet) and not net.training
    assert net.chip_size == 150 and net.template == "dlib"
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="unknown identity network"):
        load_identity_network("vggface")  # type: ignore[arg-type]
