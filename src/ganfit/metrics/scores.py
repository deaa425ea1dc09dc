"""Reconstruction metrics: shape error after rigid alignment, landmark error, masked photometric error, identity
distance. Pure functions on batched tensors / arrays; units in every docstring."""

from __future__ import annotations

import numpy as np
import torch

from ganfit.identity.api import compare_descriptors
from ganfit.landmarks.types import IBUG_NOSE_TIP, interocular_distance

NOSE_TIP = IBUG_NOSE_TIP


def rigid_align(source: torch.Tensor, target: torch.Tensor, scale: bool = False) -> torch.Tensor:
    """Kabsch / Procrustes: the rotation + translation (+ uniform scale when ``scale``) of ``source`` that best fits
    ``target`` in the least-squares sense, applied to ``source``.

    Args:
        source, target: [B, N, 3] corresponding points (e.g. mm).
    Returns:
        [B, N, 3] aligned source.
    """
    if source.shape != target.shape or source.ndim != 3 or source.shape[-1] != 3:
        raise ValueError(f"rigid_align needs two [B, N, 3] tensors, got {tuple(source.shape)}, {tuple(target.shape)}")
    src = source.double()
    tgt = target.double()
    mu_s, mu_t = src.mean(1, keepdim=True), tgt.mean(1, keepdim=True)
    a, b = src - mu_s, tgt - mu_t
    u, s, vt = torch.linalg.svd(a.transpose(1, 2) @ b)  # [B, 3, 3]
    d = torch.sign(torch.det(u @ vt))  # reflection guard
    correction = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    rotation = u @ correction @ vt  # applied as a @ rotation
    k = torch.ones_like(d)
    if scale:
        k = (s * torch.diagonal(correction, dim1=1, dim2=2)).sum(-1) / (a * a).sum(dim=(1, 2)).clamp_min(1e-12)
    aligned = k[:, None, None] * (a @ rotation) + mu_t
    return aligned.to(source.dtype)


def shape_error_mm(
    predicted: torch.Tensor,
    truth: torch.Tensor,
    vertex_ids: torch.Tensor | np.ndarray | None = None,
    scale: bool = False,
) -> torch.Tensor:
    """Per-vertex Euclidean error [B, N] (mm) between ``predicted`` and ``truth`` [B, V, 3] (mm), over
    ``vertex_ids`` (default all), after rigidly aligning the prediction to the truth on those vertices (with a
    uniform scale too when ``scale``: a similarity alignment, as the NoW benchmark does)."""
    if vertex_ids is not None:
        ids = torch.as_tensor(np.asarray(vertex_ids), dtype=torch.long, device=predicted.device)
        predicted, truth = predicted[:, ids], truth[:, ids]
    aligned = rigid_align(predicted, truth, scale=scale)
    return (aligned - truth).norm(dim=-1)


def face_region(mean_vertices: torch.Tensor, landmark_ids: torch.Tensor, radius_mm: float = 95.0) -> torch.Tensor:
    """Vertex ids [N] of the evaluated face region: mean-face vertices within ``radius_mm`` of the nose tip
    (iBUG landmark 30) — the face proper, without the ears, neck and back of the face-area mesh."""
    nose = mean_vertices[landmark_ids[NOSE_TIP]]
    return torch.nonzero((mean_vertices - nose).norm(dim=-1) < radius_mm).reshape(-1)


def landmark_error(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean 2-D landmark error per face: ``(pixels [B], NME [B])``, NME = error / inter-ocular (outer eye corners)
    distance of ``truth``. Both arguments [B, 68, 2] pixels."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    error = np.linalg.norm(predicted - truth, axis=-1).mean(-1)
    iod = interocular_distance(truth)
    return error, error / np.maximum(iod, 1e-9)


def masked_photometric_error(render: np.ndarray, photo: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute colour difference in [0, 1] units (mean over RGB) inside ``mask``.

    Args:
        render, photo: uint8 [H, W, 3]; mask: [H, W] bool or weights in [0, 1].
    """
    weights = np.asarray(mask, np.float64)
    if weights.sum() <= 0:
        return float("nan")
    diff = np.abs(render.astype(np.float64) - photo.astype(np.float64)).mean(-1) / 255.0
    return float((diff * weights).sum() / weights.sum())


def identity_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(Euclidean distance, cosine similarity)`` of two raw identity descriptors [D]; for dlib's network the
    same-person threshold is distance < 0.6."""
    return compare_descriptors(a, b)


def rank1(probe: np.ndarray, gallery: np.ndarray, probe_ids: list[str], gallery_ids: list[str]) -> tuple[float, list]:
    """Rank-1 identification rate: each probe descriptor [P, D] is matched to its nearest gallery descriptor [G, D]
    (Euclidean); correct when the identities agree. Returns ``(rate, [(probe_id, nearest_gallery_id), ...])``."""
    distances = np.linalg.norm(np.asarray(probe)[:, None] - np.asarray(gallery)[None], axis=-1)
    nearest = distances.argmin(1)
    matches = [(probe_ids[i], gallery_ids[int(j)]) for i, j in enumerate(nearest)]
    rate = float(np.mean([p == g for p, g in matches])) if matches else float("nan")
    return rate, matches
