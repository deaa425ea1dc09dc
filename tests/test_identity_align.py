"""Differentiable alignment: dlib/ArcFace templates, gradients through the warp, and verification on real photos."""

from __future__ import annotations

import math

import dlib
import numpy as np
import pytest
import torch
from PIL import Image

from ganfit.identity import load_identity_network
from ganfit.identity.align import (
    ARCFACE_TEMPLATE,
    _pixels_per_chip_pixel,
    chip_to_image_matrix,
    estimate_alignment,
    similarity_least_squares,
    warp_to_chip,
)
from ganfit.identity.api import embed_image, image_to_tensor
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face
from identity_helpers import dlib_models_dir, one_torch_thread, roc_auc, to_chip_tensor  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dlib_net() -> torch.nn.Module:
    dlib_models_dir()
    return load_identity_network("dlib")


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def test_similarity_least_squares_recovers_exact_transforms() -> None:
    g = torch.Generator().manual_seed(0)
    src = torch.rand(4, 7, 2, generator=g, dtype=torch.float64) * 100
    m_true = _rotation(torch.rand(4, generator=g, dtype=torch.float64) * 2 - 1) * (
        torch.rand(4, 1, 1, generator=g, dtype=torch.float64) * 3 + 0.5
    )
    t_true = torch.rand(4, 2, generator=g, dtype=torch.float64) * 50
    dst = src @ m_true.transpose(1, 2) + t_true[:, None]
    m, t = similarity_least_squares(src, dst)
    torch.testing.assert_close(m, m_true)
    torch.testing.assert_close(t, t_true)


def test_arcface_template_maps_its_points_onto_the_landmarks() -> None:
    """If the 5 ArcFace source points are an exact similarity image of the template, the chip->image map is it."""
    m_true = _rotation(torch.tensor(0.3, dtype=torch.float64)) * 2.5
    t_true = torch.tensor([40.0, 70.0], dtype=torch.float64)
    tpl = torch.tensor(ARCFACE_TEMPLATE.points, dtype=torch.float64)
    targets = tpl @ m_true.T + t_true
    landmarks = torch.full((1, 68, 2), 123.0, dtype=torch.float64)
    for point, group in zip(targets, ARCFACE_TEMPLATE.point_groups, strict=True):
        landmarks[0, list(group)] = point
    a = chip_to_image_matrix(landmarks, "arcface")[0]
    torch.testing.assert_close(a[:, :2], m_true)
    torch.testing.assert_close(a[:, 2], t_true)
    # and the chip really contains those points where the template says: warp a dot image
    theta = estimate_alignment(landmarks.float(), (400, 400), "arcface")
    image = torch.zeros(1, 1, 400, 400)
    x, y = targets[2].round().long().tolist()  # nose tip: one bright pixel
    image[0, 0, y - 1, x - 1] = 1.0  # pixel (x-1, y-1) has its centre at continuous (x-0.5, y-0.5)
    chip = warp_to_chip(image, theta, 112, antialias=False)[0, 0]
    peak = divmod(int(chip.argmax()), 112)
    expected = tpl[2] + (torch.tensor([x - 0.5, y - 0.5], dtype=torch.float64) - targets[2]) / 2.5
    assert abs(peak[1] + 0.5 - expected[0].item()) <= 1.0 and abs(peak[0] + 0.5 - expected[1].item()) <= 1.0


def test_dlib_template_reproduces_dlib_get_face_chip(photos_root) -> None:
    """With dlib's own 68 landmarks, our grid_sample chip equals dlib.get_face_chip(img, shape, 150, 0.25) up to uint8
    rounding (photos scaled so that dlib does not use its image pyramid, i.e. < 2 image pixels per chip pixel)."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"))
    checked = 0
    for path in sorted((photos_root / "deep3d-examples").glob("*.jpg"))[:6]:
        photo = Image.open(path).convert("RGB")
        image = np.asarray(photo.resize((photo.width // 2, photo.height // 2), Image.BILINEAR))
        faces = detector(image, 1)
        if not faces:
            continue
        shape = predictor(image, faces[0])
        reference = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        landmarks = np.array([[p.x + 0.5, p.y + 0.5] for p in shape.parts()], np.float64)  # dlib: integer indices
        theta = estimate_alignment(torch.from_numpy(landmarks)[None], image.shape[:2], "dlib")
        ours = warp_to_chip(image_to_tensor(image).double(), theta, 150)
        error = (ours - to_chip_tensor(reference, torch.float64)).abs() * 255
        assert error.mean() < 0.6, f"{path.name}: mean abs difference {error.mean():.3f} grey levels"
        checked += 1
    assert checked >= 4


def _face_crop(photos_root, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A real photo cropped around its face and resized to ``side`` px, with its landmarks."""

    image = read_image(photos_root / "face-recognition-examples/knn_examples/train/obama/obama.jpg")
    face = detect_face(image)
    x0, y0, x1, y1 = face.box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
    box = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    crop = np.asarray(Image.fromarray(image).crop(box).resize((side, side), Image.BILINEAR))
    scale = side / (box[2] - box[0])
    landmarks = (face.landmarks - np.array(box[:2], np.float32)) * scale
    return crop, landmarks


@pytest.mark.parametrize("side", [64, 560])  # upsampling into the chip / shrinking with the antialias pyramid step
def test_identity_gradient_matches_finite_differences(dlib_net, photos_root, side: int) -> None:
    crop, landmarks = _face_crop(photos_root, side)
    net = dlib_net.double()
    try:
        image = image_to_tensor(crop).double().requires_grad_(True)
        theta = estimate_alignment(torch.from_numpy(landmarks.astype(np.float64))[None], crop.shape[:2], "dlib")
        shrink = float(_pixels_per_chip_pixel(theta, crop.shape[:2], 150))
        assert (shrink < 1.0) if side == 64 else (2.0 <= shrink < 4.0), shrink  # 560 px: antialiasing branch
        with torch.no_grad():
            target = net(torch.rand(1, 3, 150, 150, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))

        def distance(img: torch.Tensor) -> torch.Tensor:
            return (net(warp_to_chip(img, theta, 150)) - target).norm()

        distance(image).backward()
        grad = image.grad[0]
        assert torch.isfinite(grad).all()
        flat = grad.abs().flatten()
        rng = np.random.default_rng(0)
        picks = list(flat.topk(6).indices.tolist()) + list(rng.choice(flat.numel(), 6, replace=False))
        eps = 1e-6
        with torch.no_grad():
            for index in picks:
                c, rest = divmod(int(index), side * side)
                y, x = divmod(rest, side)
                plus, minus = image.detach().clone(), image.detach().clone()
                plus[0, c, y, x] += eps
                minus[0, c, y, x] -= eps
                numeric = (distance(plus) - distance(minus)).item() / (2 * eps)
                analytic = grad[c, y, x].item()
                assert math.isclose(numeric, analytic, rel_tol=1e-4, abs_tol=1e-8), (c, y, x, numeric, analytic)
        assert flat.max() > 1e-4  # gradients actually reach the pixels
    finally:
        dlib_net.float()


def _embed_all(paths, net, backend: str = "mediapipe") -> np.ndarray:
    out = []
    for path in paths:
        image = read_image(path)
        out.append(embed_image(image, detect_face(image, backend=backend).landmarks, net).descriptor)
    return np.stack(out)


def _pair_distances(descriptors: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    same, different = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = float(np.linalg.norm(descriptors[i] - descriptors[j]))
            (same if labels[i] == labels[j] else different).append(d)
    return np.array(same), np.array(different)


def test_verification_auc_face_recognition_examples(dlib_net, photos_root, record_property) -> None:
    """5 identities (1-2 photos each): same-person distances below different-person ones (AUC >= 0.95)."""
    paths = sorted((photos_root / "face-recognition-examples/knn_examples/train").glob("*/*"))
    assert len(paths) >= 9
    descriptors = _embed_all(paths, dlib_net)
    same, different = _pair_distances(descriptors, [p.parent.name for p in paths])
    auc = roc_auc(same, different)
    record_property("auc_knn_train", auc)
    print(
        f"knn_examples/train: AUC {auc:.4f} ({len(same)} same / {len(different)} different pairs; "
        f"same max {same.max():.3f}, different min {different.min():.3f})"
    )
    assert auc >= 0.95


@pytest.mark.slow
def test_verification_auc_frl_london(dlib_net, photos_root, record_property) -> None:
    """80 people, neutral_front/NNN_03.jpg vs smiling_front/NNN_08.jpg: AUC of neutral-vs-smiling pairs >= 0.95."""
    root = photos_root / "frl-london"
    neutral = sorted((root / "neutral_front").glob("*_03.jpg"))
    ids = [p.name.split("_")[0] for p in neutral]
    smiling = [root / "smiling_front" / f"{i}_08.jpg" for i in ids]
    assert len(ids) == 80 and all(p.is_file() for p in smiling)
    a = _embed_all(neutral, dlib_net)
    b = _embed_all(smiling, dlib_net)
    distances = np.linalg.norm(a[:, None] - b[None], axis=-1)  # [neutral i, smiling j]
    same = np.diag(distances)
    different = distances[~np.eye(len(ids), dtype=bool)]
    auc = roc_auc(same, different)
    record_property("auc_frl_london", auc)
    print(
        f"frl-london: AUC {auc:.4f} (80 same / {different.size} different pairs; same median "
        f"{np.median(same):.3f}, different median {np.median(different):.3f}; "
        f"accuracy at dlib's 0.6: {((same < 0.6).sum() + (different >= 0.6).sum()) / distances.size:.4f})"
    )
    assert auc >= 0.95
