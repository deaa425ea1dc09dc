"""Synthetic ground-truth benchmark: ``python -m ganfit.eval.synthetic n=8 seed=0 out=DIR [fitting=fast] ...``.

Samples ICT identities and expressions from the prior, renders them with ``ganfit.render`` (random pose with yaw up
to +-45 deg, random light, random smooth background, UV textures from a folder — e.g. the held-out split of the
dataset — or flat skin tones) through a truth camera drawn per face (``camera=random``, the default: a distance band
— selfie 15-30 cm, near 30-60 cm, portrait 60-150 cm —, a distance in it and the focal length of the band's real
cameras that frames the face, see ``sample_cameras``; ``camera=fixed``: focal 1.5 x image_size = the fit's initial
focal, 1 m away, as sessions 1-5), runs the project's real landmark detector on the renders (its dense points go to
the fit when ``landmarks.dense``, as in ``fit.py``), fits them with each variant of the objective, and reports per
variant:

* ``median_shape_error_mm`` / ``mean_shape_error_mm``: per-vertex error of the fitted *neutral* identity shape
  ``fm(ps, 0)`` against the true one, after rigid (Kabsch) alignment, over the face region (mean-face vertices within
  ``region_radius_mm`` of the nose tip); the median/mean over all vertices of all faces;
* ``scaled_median_shape_error_mm``: the same median after a similarity alignment (rotation, translation and uniform
  scale, as the NoW benchmark aligns): what remains once the monocular size/distance ambiguity is taken out;
* ``expressed_median_error_mm``: the same for the expressed shapes ``fm(ps, pe)``;
* ``landmark_error_px`` / ``landmark_nme``: the fitted model's 68 projected landmarks against the true model's, in
  photo pixels / as a fraction of the true inter-ocular distance;
* ``photometric_error``: mean L1 (RGB, [0, 1]) of the rendering against the photo inside the rendered face;
* ``identity_distance``: dlib-descriptor Euclidean distance between the photo and the rendering composited over it
  (aligned by the detected landmarks; 0.6 = dlib's same-person threshold);
* ``seconds_per_face``: fitting time (batched), on this machine;
* ``region_median_mm`` / ``region_scaled_median_mm``: the rigid / similarity-aligned median per face part (nose,
  mouth, forehead, cheeks: ``ganfit.metrics.regions``), the alignment being the whole face's;
* ``distance_median_abs_rel_error`` and ``distance_by_band``: median |d_fit / d_true - 1| of the camera's distance
  to the face centre (the mean of the 68 landmarks), over all faces and per distance band (with the median ratio).

Variants (``VARIANTS``): ``mean_shape`` (camera only; the floor to beat), ``landmarks_68_only`` (stage 1 from the
68 landmarks alone), ``landmarks_only`` (stage 1 with the dense points too), ``landmarks_pixel`` (+ stage 2 without
identity terms), ``landmarks_pixel_identity`` (+ identity, no content/moment),
``landmarks_pixel_identity_random_view`` (+ GANFIT's randomised-view identity term at the paper's 0.2), ``full`` (the
preset's whole objective; ``fitting=default`` has the randomised-view term at 0), ``full_free_texture`` (the same
with the free UV texture). With
``texture=gan`` (the default; ``texture.generator: default`` is the shipped generator) the stage-2 variants fit the GAN
latent (``mean_shape`` and ``landmarks_only`` have no texture to fit); with ``texture=free`` every variant uses the free
texture (then ``full`` and ``full_free_texture`` coincide: say so when reporting).

Several photos per face (``views=V``): each of the ``n`` faces is photographed ``V`` times, each photo with its own
pose, expression, light, camera and background and the face's one shape and texture. The single-photo variants fit
every photo alone (each fit scored against its face's truth); ``full_shared`` fits each face's ``V`` photos together
with one shape and texture (``fit.py shared_identity=true``); ``shared_table`` pairs them per face.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image
from scipy.spatial.transform import Rotation

from ganfit.args import compose_command
from ganfit.atomic import atomic_write_json
from ganfit.config.compose import ConfigUsageError, conf_dir
from ganfit.config.schema import AblationConfig, TextureInit
from ganfit.exit_codes import run_command
from ganfit.fitting.export import render_full
from ganfit.fitting.prepare import PreparedPhoto, prepare_photo
from ganfit.fitting.shading import FaceScene
from ganfit.gan.data import find_images, load_square_image
from ganfit.gan.generator_file import GeneratorFileError
from ganfit.identity import load_identity_network
from ganfit.identity.api import embed_image
from ganfit.jobs.components import build_fitter, fitting_config
from ganfit.landmarks import FaceDetection, NoFaceError, detect_face
from ganfit.metrics.regions import FACE_PARTS, face_parts
from ganfit.metrics.scores import (
    face_region,
    identity_distance,
    landmark_error,
    masked_photometric_error,
    shape_error_mm,
)
from ganfit.render.camera import Camera

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

VARIANTS = (
    "mean_shape",
    "landmarks_68_only",
    "landmarks_only",
    "landmarks_pixel",
    "landmarks_pixel_identity",
    "landmarks_pixel_identity_random_view",
    "full",
    "full_free_texture",
    "full_shared",
)
IDENTITY_TERMS = ("identity", "content", "moment")
FACE_WIDTH_MM = 150.0
CAMERA_SEED_OFFSET = 15  # the random camera's RNG is seeded with (seed, this): the other draws stay as camera=fixed's


# ------------------------------------------------------------------------------------------ ground truth
def load_textures(folder: str | None, resolution: int = 256) -> list[np.ndarray]:
    """UV textures (uint8 [R, R, 3]) from ``folder`` (PNG/JPG, recursively), or [] when ``folder`` is None."""
    if not folder:
        return []

    files = find_images(Path(folder))
    if not files:
        raise FileNotFoundError(f"textures={folder}: no PNG/JPG textures found")
    return [load_square_image(path, resolution) for path in files]


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour gradient with mild noise, uint8 [S, S, 3]."""
    corners = rng.uniform(20, 235, size=(2, 2, 3))
    t = np.linspace(0.0, 1.0, size)
    top = corners[0, 0] * (1 - t)[:, None] + corners[0, 1] * t[:, None]
    bottom = corners[1, 0] * (1 - t)[:, None] + corners[1, 1] * t[:, None]
    image = top[None] * (1 - t)[:, None, None] + bottom[None] * t[:, None, None]
    image = image + rng.normal(0.0, 6.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def sample_cameras(cfg: DictConfig, n: int) -> dict[str, np.ndarray]:
    """The truth cameras of ``n`` faces: ``distance_mm`` [n] (camera to the face centre), ``focal_factor`` [n]
    (focal length / image_size) and ``band`` [n] (the distance band's name; "fixed" for camera=fixed).

    ``camera=random`` (``camera_distribution``): the bands are dealt out evenly (a seeded shuffle of n faces over the
    bands), the distance is log-uniform in the band, the framing (face width / image width) uniform in
    ``face_fill``; the focal length is the one that gives that framing at that distance, clipped to the band's
    35 mm-equivalent range (so a selfie at 15 cm has the phone's short lens and its strong perspective).
    ``camera=fixed``: every face at ``focal_factor`` and the distance that makes the face fill ``face_fill``."""
    if str(cfg.get("camera", "fixed")) == "fixed":
        focal_factor = float(cfg.focal_factor)
        distance = focal_factor * FACE_WIDTH_MM / float(cfg.face_fill)
        return {
            "distance_mm": np.full(n, distance),
            "focal_factor": np.full(n, focal_factor),
            "band": np.array(["fixed"] * n),
        }
    spec = cfg.camera_distribution
    bands = list(spec.bands)
    if not bands:
        raise ValueError("camera=random needs camera_distribution.bands")
    rng = np.random.default_rng([int(cfg.seed), CAMERA_SEED_OFFSET])
    which = rng.permutation(np.resize(np.arange(len(bands)), n))
    low = np.log([float(bands[b].min_mm) for b in which])
    high = np.log([float(bands[b].max_mm) for b in which])
    distance = np.exp(rng.uniform(low, high))
    fill = rng.uniform(float(spec.face_fill[0]), float(spec.face_fill[1]), n)
    frame = float(spec.frame_mm)
    lo = np.array([float(bands[b].focal_equiv_mm[0]) for b in which]) / frame
    hi = np.array([float(bands[b].focal_equiv_mm[1]) for b in which]) / frame
    focal_factor = np.clip(fill * distance / FACE_WIDTH_MM, lo, hi)
    return {"distance_mm": distance, "focal_factor": focal_factor, "band": np.array([bands[b].name for b in which])}


def band_order(cfg: DictConfig) -> list[str]:
    """The distance bands' names in the order of ``camera_distribution.bands``, then "fixed"."""
    return [str(b.name) for b in cfg.camera_distribution.bands] + ["fixed"]


def camera_distance(camera: Camera, centre: torch.Tensor) -> torch.Tensor:
    """[B] mm: the distance from ``camera``'s centre to the model-space points ``centre`` [B, 3] (the face centre)."""
    return (camera.rotation_matrix() @ centre[..., None])[..., 0].add(camera.translation).norm(dim=-1)


def sample_scenes(cfg: DictConfig, face_model, textures: list[np.ndarray]) -> dict[str, Any]:
    """Ground truth for ``cfg.n`` faces x ``cfg.views`` photos each (photo ``k`` shows face ``k // views``):
    parameters, camera, light, texture, background, and the rendered photos. One view per face draws as before."""
    views = max(1, int(cfg.get("views", 1)))
    n, size = int(cfg.n) * views, int(cfg.image_size)
    face_of = np.arange(n) // views
    generator = torch.Generator().manual_seed(int(cfg.seed))
    rng = np.random.default_rng(int(cfg.seed))
    ps, pe = face_model.sample(
        n,
        generator=generator,
        shape_scale=float(cfg.shape_scale),
        expression_scale=float(cfg.expression_scale),
        expression_fraction=float(cfg.expression_fraction),
    )
    ps = ps[torch.from_numpy(face_of * views)]  # a face's views share its first draw's shape
    angles = np.stack(
        [
            rng.uniform(-cfg.max_pitch_deg, cfg.max_pitch_deg, n),
            rng.uniform(-cfg.max_yaw_deg, cfg.max_yaw_deg, n),
            rng.uniform(-cfg.max_roll_deg, cfg.max_roll_deg, n),
        ],
        axis=1,
    )
    rotation = torch.from_numpy(Rotation.from_euler("xyz", angles, degrees=True).as_rotvec()).float()
    cameras = sample_cameras(cfg, n)
    focal = torch.from_numpy(cameras["focal_factor"] * size).float()
    distance = torch.from_numpy(cameras["distance_mm"]).float()
    with torch.no_grad():
        vertices = face_model(ps, pe)
        centre = face_model.landmarks(vertices).mean(1)  # [B, 3] mm
        matrix = Camera(rotation=rotation, translation=torch.zeros(n, 3), focal=torch.ones(n)).rotation_matrix()
        translation = -(matrix @ centre[..., None])[..., 0]
        translation[:, 2] -= distance
        translation[:, :2] += torch.from_numpy(rng.uniform(-15, 15, size=(n, 2))).float()  # off-centre faces
        camera = Camera(rotation=rotation, translation=translation, focal=focal)
        direction = np.stack([rng.uniform(-1, 1, n), rng.uniform(-0.5, 1, n), rng.uniform(0.5, 1.5, n)], 1)
        light = {
            "ambient": torch.from_numpy(rng.uniform(0.35, 0.65, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))).float(),
            "light_color": torch.from_numpy(rng.uniform(0.2, 0.6, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3))).float(),
            "light_dir": torch.from_numpy(direction).float(),
        }
        if textures:
            picks = rng.integers(0, len(textures), n)[face_of * views]
            texture = torch.from_numpy(np.stack([textures[i] for i in picks])).permute(0, 3, 1, 2).float() / 255
        else:
            picks = np.full(n, -1)
            tone = rng.uniform([0.45, 0.3, 0.2], [0.9, 0.7, 0.6], size=(n, 3))[face_of * views]
            texture = torch.from_numpy(tone).float()[:, :, None, None].expand(n, 3, 64, 64).contiguous()
        backgrounds = np.stack([random_background(rng, size) for _ in range(n)])
        scene = FaceScene(face_model, instantiate(cfg.renderer))
        background = torch.from_numpy(backgrounds).permute(0, 3, 1, 2).float() / 255
        rendered = scene.render(vertices, camera, texture, light, background, (size, size))
        photos = (rendered.image.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
        landmarks = camera.project(face_model.landmarks(vertices), (size, size)).numpy()
    return {
        "ps": ps,
        "pe": pe,
        "face_of": face_of,
        "angles_deg": angles,
        "photos": photos,
        "landmarks": landmarks.astype(np.float32),
        "texture_index": picks,
        "camera": camera,
        "distance_mm": camera_distance(camera, centre).numpy(),
        "focal_factor": cameras["focal_factor"],
        "band": cameras["band"],
        "texture": texture,
        "light": light,
    }


# ---------------------------------------------------------------------------------------------- variants
def variant_config(name: str, cfg: DictConfig) -> DictConfig:
    """The composed config of ablation variant ``name``: ``conf/ablation/<name>.yaml`` applied to ``cfg``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    ablation = OmegaConf.merge(
        OmegaConf.structured(AblationConfig), OmegaConf.load(conf_dir() / "ablation" / f"{name}.yaml")
    )
    variant = copy.deepcopy(cfg)
    with open_dict(variant):
        variant.fitting = OmegaConf.merge(variant.fitting, ablation.fitting)
        if not ablation.identity:
            variant.identity = None
        if ablation.free_texture:
            variant.texture.mode = "free"
        variant.landmarks.dense = bool(variant.landmarks.dense) and bool(ablation.dense)
        variant.shared_identity = bool(ablation.shared_identity)
    return variant


def variant_photos(
    variant: DictConfig, truth: dict[str, Any], detections: list[FaceDetection], indices: list[int]
) -> list[PreparedPhoto]:
    """The prepared photos ``indices`` for the fit of ``variant`` (``variant_config``): cropped like the fit job
    (``jobs.engine``), the dense points passed when ``landmarks.dense`` (and the variant keeps them), the true focal
    length as the start when ``known_focal`` (the synthetic photos' EXIF)."""
    fitting = fitting_config(variant.fitting)
    dense = bool(variant.landmarks.dense)
    photos = [
        prepare_photo(
            truth["photos"][i],
            detections[i].landmarks,
            fitting.resolution,
            fitting.crop_scale,
            name=f"face{i:03d}",
            dense=detections[i].dense if dense else None,
        )
        for i in indices
    ]
    if variant.get("known_focal") and fitting.exif_focal:  # what a photo's EXIF focal length gives fit.py
        for photo, i in zip(photos, indices, strict=True):
            photo.focal_factor = float(truth["focal_factor"][i])
    return photos


def run_variant(name: str, cfg: DictConfig, truth: dict[str, Any], face_model, judge, detections) -> dict[str, Any]:
    """Fit all synthetic photos with variant ``name``; per-face metrics and their summary."""
    variant = variant_config(name, cfg)
    pinned = oracle_parts(cfg) if name != "mean_shape" else ()
    with open_dict(variant):
        if "texture" in pinned:
            variant.texture.mode = "free"
            variant.fitting.texture_init = TextureInit.skin.value  # the true albedo below, not the unwrapped photo
        for part in pinned:
            variant.fitting.full.lr[part] = 0.0
    fitting = fitting_config(variant.fitting)
    torch.manual_seed(int(cfg.seed))
    fitter = build_fitter(variant)
    region = face_region(face_model.mean, face_model.landmark_ids, float(cfg.region_radius_mm))
    with torch.no_grad():
        parts = face_parts(
            face_model.mean, face_model.triangles, face_model.landmarks(face_model.mean[None])[0], region
        )
    n = len(truth["photos"])
    shared = bool(variant.shared_identity)
    if shared:  # one batch per face: its views, fitted with one shape and texture
        batches = [list(np.flatnonzero(truth["face_of"] == face)) for face in np.unique(truth["face_of"])]
    else:
        batches = [list(range(start, min(n, start + fitting.batch_size))) for start in range(0, n, fitting.batch_size)]
    per_face: list[dict[str, Any]] = []
    for indices in batches:
        photos = variant_photos(variant, truth, detections, indices)
        if pinned:
            pin_appearance(fitter, truth, indices, pinned)
        started = time.perf_counter()
        result = fitter.fit(photos, shared=shared)
        seconds = (time.perf_counter() - started) / len(indices)
        with torch.no_grad():
            ps_fit = result.params.ps.detach()
            neutral_fit = face_model(ps_fit, torch.zeros_like(result.params.pe))
            neutral_true = face_model(truth["ps"][indices], torch.zeros_like(truth["pe"][indices]))
            neutral_err = shape_error_mm(neutral_fit, neutral_true, region)
            scaled_err = shape_error_mm(neutral_fit, neutral_true, region, scale=True)
            expressed_err = shape_error_mm(
                result.vertices, face_model(truth["ps"][indices], truth["pe"][indices]), region
            )
            projected = result.params.project(face_model.landmarks(result.vertices)).cpu().numpy()
            fitted_distance = camera_distance(result.params.camera(), face_model.landmarks(result.vertices).mean(1))
            fitted_focal = result.params.focal.detach()
        for k, i in enumerate(indices):
            photo = photos[k]
            landmarks = photo.to_original(projected[k])
            px, nme = landmark_error(landmarks[None], truth["landmarks"][i][None])
            rgba, shown, _ = render_full(fitter, photo, k, result, max_side=int(cfg.image_size))
            alpha = rgba[..., 3:4].astype(np.float32) / 255.0
            overlay = (rgba[..., :3] * alpha + shown * (1 - alpha)).astype(np.uint8)
            photometric = masked_photometric_error(rgba[..., :3], shown, alpha[..., 0] > 0.5)
            distance = float("nan")
            if judge is not None:
                a = embed_image(shown, detections[i].landmarks, judge).descriptor
                b = embed_image(overlay, detections[i].landmarks, judge).descriptor
                distance = identity_distance(a, b)[0]
            per_face.append(
                {
                    "face": i,
                    "person": int(truth["face_of"][i]),
                    "yaw_deg": float(truth["angles_deg"][i][1]),
                    "errors_mm": neutral_err[k].numpy(),
                    "scaled_errors_mm": scaled_err[k].numpy(),
                    "expressed_errors_mm": expressed_err[k].numpy(),
                    "landmark_error_px": float(px[0]),
                    "landmark_nme": float(nme[0]),
                    "photometric_error": photometric,
                    "identity_distance": distance,
                    "seconds": seconds,
                    "band": str(truth["band"][i]),
                    "distance_true_mm": float(truth["distance_mm"][i]),
                    "distance_fit_mm": float(fitted_distance[k]),
                    "focal_factor_true": float(truth["focal_factor"][i]),
                    "focal_factor_fit": float(fitted_focal[k]) / photo.scale / max(truth["photos"][i].shape[:2]),
                    "dense": photo.crop_dense is not None,
                }
            )
        logger.info("%s: %d/%d faces", name, indices[-1] + 1, n)
    errors = np.concatenate([f["errors_mm"] for f in per_face])
    expressed = np.concatenate([f["expressed_errors_mm"] for f in per_face])
    scaled = np.concatenate([f["scaled_errors_mm"] for f in per_face])

    def mean(key: str) -> float:
        return float(np.nanmean([f[key] for f in per_face]))

    def part_median(key: str, part: str) -> float:
        return float(np.median(np.concatenate([f[key][parts[part]] for f in per_face])))

    ratio = np.array([f["distance_fit_mm"] / f["distance_true_mm"] for f in per_face])
    bands = [f["band"] for f in per_face]
    distance_by_band = {
        band: {
            "faces": int(sum(b == band for b in bands)),
            "median_abs_rel_error": float(np.median(np.abs(ratio[[b == band for b in bands]] - 1.0))),
            "median_ratio": float(np.median(ratio[[b == band for b in bands]])),
        }
        for band in sorted(set(bands), key=band_order(cfg).index)
    }

    return {
        "median_shape_error_mm": float(np.median(errors)),
        "mean_shape_error_mm": float(np.mean(errors)),
        "expressed_median_error_mm": float(np.median(expressed)),
        "scaled_median_shape_error_mm": float(np.median(scaled)),
        "landmark_error_px": mean("landmark_error_px"),
        "landmark_nme": mean("landmark_nme"),
        "photometric_error": mean("photometric_error"),
        "identity_distance": mean("identity_distance"),
        "seconds_per_face": mean("seconds"),
        "texture": fitter.texture_mode,
        "identity_in_loss": bool(fitter.judges) and fitting.full.steps > 0 and fitting.full.weights.identity > 0,
        "per_face_median_mm": [float(np.median(f["errors_mm"])) for f in per_face],
        "per_face_scaled_median_mm": [float(np.median(f["scaled_errors_mm"])) for f in per_face],
        "per_face_yaw_deg": [f["yaw_deg"] for f in per_face],
        "per_face_person": [f["person"] for f in per_face],
        "shared_identity": shared,
        "region_median_mm": {part: part_median("errors_mm", part) for part in FACE_PARTS},
        "region_scaled_median_mm": {part: part_median("scaled_errors_mm", part) for part in FACE_PARTS},
        "region_vertices": {part: int(parts[part].sum()) for part in FACE_PARTS},
        "distance_median_abs_rel_error": float(np.median(np.abs(ratio - 1.0))),
        "distance_by_band": distance_by_band,
        "dense_landmarks": all(f["dense"] for f in per_face),
        "per_face_band": bands,
        "per_face_distance_true_mm": [f["distance_true_mm"] for f in per_face],
        "per_face_distance_fit_mm": [f["distance_fit_mm"] for f in per_face],
        "per_face_focal_factor_true": [f["focal_factor_true"] for f in per_face],
        "per_face_focal_factor_fit": [f["focal_factor_fit"] for f in per_face],
    }


ORACLE_PARTS = ("texture", "light")


def oracle_parts(cfg: DictConfig) -> tuple[str, ...]:
    """The parts of the appearance that ``oracle_appearance`` pins to the truth (a subset of ``ORACLE_PARTS``)."""
    parts = tuple(str(p) for p in (cfg.get("oracle_appearance") or ()))
    unknown = sorted(set(parts) - set(ORACLE_PARTS))
    if unknown:
        raise ValueError(f"oracle_appearance: unknown parts {unknown}; choose from {list(ORACLE_PARTS)}")
    return parts


def pin_appearance(fitter, truth: dict[str, Any], indices: list[int], parts: tuple[str, ...]) -> None:
    """Diagnostic (``oracle_appearance=[texture,light]``): make ``fitter`` start every fit of the faces ``indices``
    from their *true* albedo (as a free texture, resized to the fitting's texture size) and/or light. With those
    learning rates at 0 they stay there, so the remaining shape error is what the geometry terms and the optimiser
    leave once the pinned part of the appearance is exact."""
    init_params = type(fitter).init_params

    def pinned(photos):
        params = init_params(fitter, photos)
        with torch.no_grad():
            if "texture" in parts:
                size = params.uv_texture.shape[-1]
                texture = truth["texture"][indices].to(params.uv_texture)
                if texture.shape[-1] != size:
                    texture = F.interpolate(texture, size=(size, size), mode="area")
                params.uv_texture.copy_(texture)
            if "light" in parts:
                if params.sh is not None:
                    raise ValueError("oracle_appearance=[light] needs fitting.lighting=phong (the scenes' light model)")
                for key in ("ambient", "light_color", "light_dir"):
                    getattr(params, key).copy_(truth["light"][key][indices])
        return params

    fitter.init_params = pinned


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a markdown table (one row per variant)."""
    columns = [
        ("median_shape_error_mm", "median shape err (mm)", "{:.2f}"),
        ("mean_shape_error_mm", "mean shape err (mm)", "{:.2f}"),
        ("scaled_median_shape_error_mm", "median err, similarity-aligned (mm)", "{:.2f}"),
        ("expressed_median_error_mm", "median expressed err (mm)", "{:.2f}"),
        ("landmark_error_px", "landmark err (px)", "{:.1f}"),
        ("landmark_nme", "landmark NME", "{:.3f}"),
        ("photometric_error", "photometric L1", "{:.3f}"),
        ("identity_distance", "identity dist (dlib)", "{:.3f}"),
        ("seconds_per_face", "s / face", "{:.1f}"),
        ("texture", "texture", "{}"),
    ]
    lines = ["| variant | " + " | ".join(title for _, title, _ in columns) + " |"]
    lines.append("|---|" + "---|" * len(columns))
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")
    return "\n".join(lines)


def region_table(results: dict[str, dict[str, Any]]) -> str:
    """Region-wise median shape errors (mm; rigid / similarity-aligned) per variant, as a markdown table."""
    lines = ["| variant | " + " | ".join(f"{p} rigid / sim" for p in ("face", *FACE_PARTS)) + " |"]
    lines.append("|---|" + "---|" * (1 + len(FACE_PARTS)))
    for name, row in results.items():
        cells = [f"{row['median_shape_error_mm']:.2f} / {row['scaled_median_shape_error_mm']:.2f}"]
        cells += [f"{row['region_median_mm'][p]:.2f} / {row['region_scaled_median_mm'][p]:.2f}" for p in FACE_PARTS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def distance_table(results: dict[str, dict[str, Any]]) -> str:
    """The fitted camera distance per band: median |d_fit / d_true - 1| (median d_fit / d_true), markdown."""
    bands = list(dict.fromkeys(b for row in results.values() for b in row["distance_by_band"]))
    lines = ["| variant | all | " + " | ".join(bands) + " |", "|---|---|" + "---|" * len(bands)]
    for name, row in results.items():
        cells = [f"{row['distance_median_abs_rel_error']:.1%}"]
        for band in bands:
            cell = row["distance_by_band"].get(band)
            cells.append(f"{cell['median_abs_rel_error']:.1%} ({cell['median_ratio']:.2f}x, n={cell['faces']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shared_table(results: dict[str, dict[str, Any]], single: str = "full", shared: str = "full_shared") -> str:
    """Per face: the single-photo fits' median shape error (the mean over the face's views) against the shared fit's,
    rigid / similarity-aligned (mm), as a markdown table; empty when either variant is missing."""
    if single not in results or shared not in results:
        return ""

    def by_person(row: dict[str, Any], key: str) -> dict[int, float]:
        values: dict[int, list[float]] = {}
        for person, value in zip(row["per_face_person"], row[key], strict=True):
            values.setdefault(int(person), []).append(float(value))
        return {person: float(np.mean(v)) for person, v in values.items()}

    lines = [f"| face | {single} rigid / sim (mean over views) | {shared} rigid / sim | shared better |"]
    lines.append("|---|---|---|---|")
    a, a_sim = by_person(results[single], "per_face_median_mm"), by_person(results[single], "per_face_scaled_median_mm")
    b, b_sim = by_person(results[shared], "per_face_median_mm"), by_person(results[shared], "per_face_scaled_median_mm")
    for person in sorted(a):
        better = "yes" if b[person] < a[person] else "no"
        lines.append(
            f"| {person} | {a[person]:.2f} / {a_sim[person]:.2f} | {b[person]:.2f} / {b_sim[person]:.2f} | {better} |"
        )
    wins = sum(b[p] < a[p] for p in a)
    lines.append(
        f"| median | {np.median(list(a.values())):.2f} / {np.median(list(a_sim.values())):.2f} | "
        f"{np.median(list(b.values())):.2f} / {np.median(list(b_sim.values())):.2f} | {wins} of {len(a)} |"
    )
    return "\n".join(lines)


def detect_scenes(photos: np.ndarray, fallback: np.ndarray, backend: str) -> tuple[list[FaceDetection], int]:
    """The detection (68 landmarks and, with mediapipe, the dense points) per synthetic photo; where the detector
    finds no face, the true projected model landmarks without dense points (counted and reported)."""
    out, fallbacks = [], 0
    for index, photo in enumerate(photos):
        try:
            out.append(detect_face(photo, backend=backend))
        except NoFaceError:
            size = float(photo.shape[1])
            out.append(FaceDetection((0.0, 0.0, size, size), 0.0, np.asarray(fallback[index], np.float32)))
            fallbacks += 1
    return out, fallbacks


def detect_all(photos: np.ndarray, fallback: np.ndarray, backend: str) -> tuple[list[np.ndarray], int]:
    """Detected 68 landmarks per synthetic photo (``detect_scenes``' landmarks)."""
    detections, fallbacks = detect_scenes(photos, fallback, backend)
    return [d.landmarks.astype(np.float32) for d in detections], fallbacks


def run(cfg: DictConfig) -> dict[str, Any]:
    """The whole benchmark; writes ``out/results.json`` and ``out/inputs.png`` and returns the results."""
    if int(cfg.get("torch_threads", 0)) > 0:
        torch.set_num_threads(int(cfg.torch_threads))
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    face_model = instantiate(cfg.face_model)
    textures = load_textures(cfg.textures)
    truth = sample_scenes(cfg, face_model, textures)
    tiles = truth["photos"][: min(8, len(truth["photos"]))]
    Image.fromarray(np.concatenate(list(tiles), axis=1)).save(out / "inputs.png")
    if cfg.get("oracle_landmarks"):  # diagnostic: fit to the true projected model landmarks, no detector
        size = float(cfg.image_size)
        detections = [FaceDetection((0.0, 0.0, size, size), 0.0, marks) for marks in truth["landmarks"]]
        fallbacks = 0  # (no dense points: the oracle has only the 68)
    else:
        detections, fallbacks = detect_scenes(truth["photos"], truth["landmarks"], str(cfg.landmarks.backend))
    judge = load_identity_network("dlib")
    results: dict[str, Any] = {}
    meta = {
        "n": int(cfg.n),
        "views": max(1, int(cfg.get("views", 1))),
        "seed": int(cfg.seed),
        "detector_fallbacks": fallbacks,
        "oracle_landmarks": bool(cfg.get("oracle_landmarks")),
        "known_focal": bool(cfg.get("known_focal")),
        "oracle_appearance": list(oracle_parts(cfg)),
        "textures": str(cfg.textures) if cfg.textures else "flat skin tones (no texture folder given)",
        "fitting": OmegaConf.to_container(cfg.fitting, resolve=True),
        "generator": str(cfg.texture.get("generator")) if cfg.texture.mode == "gan" else None,
        "torch_threads": torch.get_num_threads(),
        "camera": str(cfg.get("camera", "fixed")),
        "bands": [str(b) for b in truth["band"]],
        "distance_mm": [float(d) for d in truth["distance_mm"]],
        "focal_factor": [float(f) for f in truth["focal_factor"]],
    }
    for name in cfg.variants:
        if name == "full_shared" and meta["views"] < 2:
            logger.warning("full_shared needs views >= 2 (several photos per face); skipped")
            continue
        started = time.perf_counter()
        results[name] = run_variant(str(name), cfg, truth, face_model, judge, detections)
        logger.info("%s done in %.0f s", name, time.perf_counter() - started)
        atomic_write_json(out / "results.json", {**results, "_meta": meta})  # after each variant: a partial run counts
    payload = {**results, "_meta": meta}
    atomic_write_json(out / "results.json", payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    """``python -m ganfit.eval.synthetic key=value ...``. Exit codes: 0 every variant measured, 1 some variant has
    no finite shape error, 2 bad usage (unknown key, bad value, a missing textures= folder: one line), 130 Ctrl-C."""
    return run_command(lambda: _main(argv), (ConfigUsageError, GeneratorFileError, FileNotFoundError))


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_command("eval_synthetic", argv, prog="ganfit eval-synthetic", doc=__doc__.split("\n\n")[0])
    payload = run(cfg)
    results = {k: v for k, v in payload.items() if not k.startswith("_")}
    print(markdown_table(results))
    print("\nRegion-wise median shape error, mm (rigid / similarity-aligned):\n" + region_table(results))
    print("\nFitted camera distance, median |d_fit/d_true - 1| per band (median ratio):\n" + distance_table(results))
    if shared := shared_table(results):
        print("\nSeveral photos per face, median shape error per face, mm:\n" + shared)
    meta = payload["_meta"]
    print(
        f"\n{meta['n']} faces, seed {meta['seed']}, textures: {meta['textures']}, "
        f"detector fallbacks: {meta['detector_fallbacks']}; results in {Path(str(cfg.out)) / 'results.json'}"
    )
    return 0 if all(math.isfinite(r["median_shape_error_mm"]) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
