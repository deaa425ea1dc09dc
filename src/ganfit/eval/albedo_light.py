"""Albedo under changing light: ``python -m ganfit.eval.albedo_light textures=DIR out=DIR [seed=N] [n=N] ...``.

Renders the same synthetic faces (ICT identities and expressions from the prior, ``n`` real UV textures from
``textures``) under several lights (``lights:`` — neutral, dim warm, bright cool, side light by default), each light a
shading (ambient + one directional light) times a camera gain (exposure x white balance) that acts on the whole
photo, the face and the background around it alike. Every photo is fitted once per variant (``variants:`` — the gain
off and on by default; each a partial fitting preset merged over ``fitting``), and the fitted albedo's mean colour
over the face region (UV texels of the mean-face triangles within ``region_radius_mm`` of the nose tip) is compared
with the true texture's mean there: **CIEDE2000** colour difference in CIELAB (D65; the textures' [0, 1] values read
as sRGB, as ``texture.png`` is viewed). Reported per light, per skin-tone group (terciles of the true texture's L*)
and overall (medians), with the signed lightness error and its regression slope on the true L* (a trend with skin tone
shows as a slope), for the GAN albedo and, with ``detail=true``, for the detail texture the export writes.

Writes ``out/results.json`` (every photo's row and the summaries) and ``out/results.md`` (the tables), and
``out/inputs.png`` (the first face under every light).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from ganfit.args import compose_command
from ganfit.atomic import atomic_write_json, atomic_write_text
from ganfit.config.compose import ConfigUsageError
from ganfit.eval.synthetic import detect_all, load_textures, sample_scenes
from ganfit.exit_codes import run_command
from ganfit.face_model import FaceModel
from ganfit.fitting.detail_texture import DetailConfig, build_detail_texture
from ganfit.fitting.export import photo_camera
from ganfit.fitting.prepare import prepare_photo
from ganfit.fitting.shading import FaceScene
from ganfit.gan.data import find_images
from ganfit.gan.generator_file import GeneratorFileError
from ganfit.jobs.components import build_fitter, fitting_config
from ganfit.metrics.scores import face_region

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

TONE_GROUPS = ("light", "medium", "dark")


# ------------------------------------------------------------------------------------------ ground truth
def neutral_background(rng: np.random.Generator, size: int, chroma: float) -> np.ndarray:
    """A smooth near-grey gradient, float32 [S, S, 3] in [0, 1]: corner lightness U(0.25, 0.75), each channel
    scaled by U(1 - chroma, 1 + chroma) (a scene whose mean is roughly grey, as grey-world assumes)."""
    corners = rng.uniform(0.25, 0.75, size=(2, 2, 1)) * rng.uniform(1 - chroma, 1 + chroma, size=(2, 2, 3))
    t = np.linspace(0.0, 1.0, size)
    top = corners[0, 0] * (1 - t)[:, None] + corners[0, 1] * t[:, None]
    bottom = corners[1, 0] * (1 - t)[:, None] + corners[1, 1] * t[:, None]
    image = top[None] * (1 - t)[:, None, None] + bottom[None] * t[:, None, None]
    return np.clip(image + rng.normal(0.0, 0.01, size=image.shape), 0.0, 1.0).astype(np.float32)


def light_of(spec: DictConfig, n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(renderer light dict with [n, 3] entries, camera gain [n, 3]) of one ``lights:`` entry."""
    ambient = torch.tensor([float(spec.ambient)] * 3).repeat(n, 1)
    diffuse = torch.tensor([float(spec.diffuse)] * 3).repeat(n, 1)
    direction = torch.tensor([float(v) for v in spec.direction]).repeat(n, 1)
    gain = torch.tensor([float(v) for v in spec.gain]).repeat(n, 1)
    return {"ambient": ambient, "light_color": diffuse, "light_dir": direction}, gain


def render_lights(cfg: DictConfig, face_model: FaceModel, truth: dict[str, Any]) -> dict[str, np.ndarray]:
    """uint8 [n, S, S, 3] photos per light: the true faces shaded by the light, face and background times its gain."""
    n, size = len(truth["texture"]), int(cfg.image_size)
    rng = np.random.default_rng(int(cfg.seed) + 1)
    backgrounds = np.stack([neutral_background(rng, size, float(cfg.background_chroma)) for _ in range(n)])
    background = torch.from_numpy(backgrounds).permute(0, 3, 1, 2)
    scene = FaceScene(face_model, instantiate(cfg.renderer))
    vertices = face_model(truth["ps"], truth["pe"])
    photos = {}
    with torch.no_grad():
        for name, spec in cfg.lights.items():
            light, gain = light_of(spec, n)
            lit = {**light, "ambient": light["ambient"] * gain, "light_color": light["light_color"] * gain}
            image = scene.render(
                vertices, truth["camera"], truth["texture"], lit, background * gain[:, :, None, None], (size, size)
            ).image
            photos[str(name)] = (image.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    return photos


# ----------------------------------------------------------------------------------------------- colour
def uv_region_mask(face_model: FaceModel, resolution: int, radius_mm: float) -> np.ndarray:
    """bool [R, R]: UV texels of the face triangles whose three mean-face vertices lie within ``radius_mm`` of the
    nose tip (``ganfit.metrics.scores.face_region``), eroded by one texel (row 0 = v 0)."""
    region = np.zeros(face_model.num_vertices, bool)
    region[face_region(face_model.mean, face_model.landmark_ids, radius_mm).cpu().numpy()] = True
    keep = region[face_model.triangles.cpu().numpy()].all(1)
    uv = face_model.uvs.cpu().numpy() * resolution
    triangles = uv[face_model.uv_triangles.cpu().numpy()[keep]]
    mask = np.zeros((resolution, resolution), np.uint8)
    shift = 4
    cv2.fillPoly(mask, list(np.round((triangles - 0.5) * (1 << shift)).astype(np.int32)), 1, cv2.LINE_8, shift=shift)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)


def mean_lab(texture: torch.Tensor, face_model: FaceModel, radius_mm: float) -> np.ndarray:
    """CIELAB (D65) [3] of the mean colour of ``texture`` [3, R, R] (sRGB values in [0, 1]) over the face region."""
    mask = uv_region_mask(face_model, int(texture.shape[-1]), radius_mm)
    rgb = texture.detach().float().cpu().permute(1, 2, 0).numpy()[mask].mean(0)
    return rgb2lab(np.clip(rgb, 0.0, 1.0)[None, None])[0, 0]


def tone_groups(lightness: np.ndarray) -> np.ndarray:
    """Skin-tone group per texture (index into ``TONE_GROUPS``) by terciles of the true L*."""
    low, high = np.quantile(lightness, [1 / 3, 2 / 3])
    return np.where(lightness > high, 0, np.where(lightness > low, 1, 2))


# ---------------------------------------------------------------------------------------------- fitting
def run_variant(
    name: str,
    cfg: DictConfig,
    truth: dict[str, Any],
    photos: dict[str, np.ndarray],
    detections: dict[str, list[np.ndarray]],
    face_model: FaceModel,
) -> list[dict[str, Any]]:
    """Fit every photo of every light with variant ``name``; one row per photo."""
    variant = cfg.copy()
    with open_dict(variant):
        variant.fitting = OmegaConf.merge(variant.fitting, cfg.variants[name])
    fitting = fitting_config(variant.fitting)
    torch.manual_seed(int(cfg.seed))
    fitter = build_fitter(variant)
    radius = float(cfg.region_radius_mm)
    jobs = [(light, i) for light in photos for i in range(len(truth["texture"]))]
    rows = []
    for start in range(0, len(jobs), fitting.batch_size):
        batch = jobs[start : start + fitting.batch_size]
        prepared = [
            prepare_photo(photos[light][i], detections[light][i], fitting.resolution, fitting.crop_scale)
            for light, i in batch
        ]
        started = time.perf_counter()
        result = fitter.fit(prepared)
        seconds = (time.perf_counter() - started) / len(batch)
        gain = result.params.gain
        for k, (light, i) in enumerate(batch):
            row: dict[str, Any] = {
                "variant": name,
                "light": light,
                "face": i,
                "texture": truth["texture_names"][i],
                "lab_fit": mean_lab(result.texture[k], face_model, radius).tolist(),
                "gain_fit": None if gain is None else gain[k].detach().cpu().tolist(),
                "seconds": seconds,
            }
            if cfg.detail:
                camera = photo_camera(prepared[k], result.params, k)
                light_k = {key: v[k : k + 1].detach() for key, v in result.params.light().items()}
                detail = build_detail_texture(
                    fitter.face_model,
                    result.vertices[k],
                    camera,
                    light_k,
                    prepared[k].image,
                    prepared[k].landmarks,
                    result.texture[k],
                    DetailConfig(out_resolution=int(cfg.detail_resolution)),
                )
                row["lab_detail"] = mean_lab(detail.albedo, face_model, radius).tolist()
            rows.append(row)
        logger.info("%s: %d/%d photos", name, start + len(batch), len(jobs))
    return rows


def summarise(rows: list[dict[str, Any]], truth_lab: np.ndarray, key: str) -> dict[str, Any]:
    """Median CIEDE2000 per variant, light and skin-tone group, signed L* error and its slope on the true L*."""
    groups = tone_groups(truth_lab[:, 0])
    for row in rows:
        true = truth_lab[row["face"]]
        fit = np.asarray(row[key])
        row[f"delta_e_{key}"] = float(deltaE_ciede2000(true[None], fit[None])[0])
        row[f"delta_l_{key}"] = float(fit[0] - true[0])
        row["tone"] = TONE_GROUPS[groups[row["face"]]]
        row["true_lightness"] = float(true[0])
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        errors = np.array([r[f"delta_e_{key}"] for r in mine])
        lightness = np.array([r["true_lightness"] for r in mine])
        delta_l = np.array([r[f"delta_l_{key}"] for r in mine])
        slope = float(np.polyfit(lightness, delta_l, 1)[0]) if np.ptp(lightness) > 0 else float("nan")
        out[variant] = {
            "median_delta_e": float(np.median(errors)),
            "mean_delta_e": float(np.mean(errors)),
            "per_light": {
                light: float(np.median([r[f"delta_e_{key}"] for r in mine if r["light"] == light]))
                for light in dict.fromkeys(r["light"] for r in mine)
            },
            "per_tone": {
                tone: float(np.median([r[f"delta_e_{key}"] for r in mine if r["tone"] == tone]))
                for tone in TONE_GROUPS
                if any(r["tone"] == tone for r in mine)
            },
            "per_tone_delta_l": {
                tone: float(np.median([r[f"delta_l_{key}"] for r in mine if r["tone"] == tone]))
                for tone in TONE_GROUPS
                if any(r["tone"] == tone for r in mine)
            },
            "delta_l_slope": slope,
        }
    return out


def markdown(summary: dict[str, dict[str, Any]], title: str) -> str:
    """One table: a row per variant; medians per light, per tone group, overall; the L* error's slope."""
    first = next(iter(summary.values()))
    lights, tones = list(first["per_light"]), list(first["per_tone"])
    header = (
        ["variant", "median ΔE00"]
        + [f"{light}" for light in lights]
        + [f"{tone} skin" for tone in tones]
        + [f"ΔL* {tone}" for tone in tones]
        + ["ΔL* slope on L*"]
    )
    lines = [f"**{title}** (median CIEDE2000 of the face region's mean colour)", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, row in summary.items():
        cells = [variant, f"{row['median_delta_e']:.2f}"]
        cells += [f"{row['per_light'][light]:.2f}" for light in lights]
        cells += [f"{row['per_tone'][tone]:.2f}" for tone in tones]
        cells += [f"{row['per_tone_delta_l'][tone]:+.1f}" for tone in tones]
        cells.append(f"{row['delta_l_slope']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pick_textures(cfg: DictConfig) -> tuple[list[np.ndarray], list[str]]:
    """``n`` textures of ``cfg.textures`` (a seeded random choice without repeats while they last)."""
    files = find_images(Path(str(cfg.textures)))
    if not files:
        raise FileNotFoundError(f"textures={cfg.textures}: no PNG/JPG textures found")
    order = np.random.default_rng(int(cfg.seed)).permutation(len(files))
    n = int(cfg.n) if int(cfg.n) > 0 else len(files)
    chosen = [files[order[i % len(files)]] for i in range(n)]
    textures = load_textures(str(cfg.textures), int(cfg.texture_resolution))
    by_name = dict(zip([str(p) for p in files], textures, strict=True))
    return [by_name[str(p)] for p in chosen], [Path(p).stem for p in chosen]


def run(cfg: DictConfig) -> dict[str, Any]:
    """The whole benchmark; writes ``out/results.json``, ``out/results.md``, ``out/inputs.png``."""
    if int(cfg.get("torch_threads", 0)) > 0:
        torch.set_num_threads(int(cfg.torch_threads))
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    face_model = instantiate(cfg.face_model)
    textures, names = pick_textures(cfg)
    with open_dict(cfg):
        cfg.n = len(textures)
    truth = sample_scenes(cfg, face_model, [])
    truth["texture"] = torch.from_numpy(np.stack(textures)).permute(0, 3, 1, 2).float() / 255.0
    truth["texture_names"] = names
    truth_lab = np.stack([mean_lab(t, face_model, float(cfg.region_radius_mm)) for t in truth["texture"]])
    photos = render_lights(cfg, face_model, truth)
    Image.fromarray(np.concatenate([p[0] for p in photos.values()], axis=1)).save(out / "inputs.png")
    detections, fallbacks = {}, 0
    for light, images in photos.items():
        detections[light], missed = detect_all(images, truth["landmarks"], str(cfg.landmarks.backend))
        fallbacks += missed
    rows: list[dict[str, Any]] = []
    for name in cfg.variants:
        started = time.perf_counter()
        rows += run_variant(str(name), cfg, truth, photos, detections, face_model)
        logger.info("%s done in %.0f s", name, time.perf_counter() - started)
    summaries = {"gan_albedo": summarise(rows, truth_lab, "lab_fit")}
    if cfg.detail:
        summaries["detail_albedo"] = summarise(rows, truth_lab, "lab_detail")
    meta = {
        "n": len(textures),
        "seed": int(cfg.seed),
        "textures": str(cfg.textures),
        "texture_names": names,
        "true_lab": truth_lab.tolist(),
        "detector_fallbacks": fallbacks,
        "lights": OmegaConf.to_container(cfg.lights, resolve=True),
        "variants": OmegaConf.to_container(cfg.variants, resolve=True),
        "fitting": OmegaConf.to_container(cfg.fitting, resolve=True),
        "identity": OmegaConf.to_container(cfg.identity, resolve=True) if cfg.get("identity") else None,
        "torch_threads": torch.get_num_threads(),
        "colour_difference": "CIEDE2000 (skimage.color.deltaE_ciede2000), CIELAB D65 from sRGB",
    }
    payload = {"summary": summaries, "rows": rows, "_meta": meta}
    atomic_write_json(out / "results.json", payload)
    text = "\n\n".join(markdown(summary, title) for title, summary in summaries.items())
    text += (
        f"\n\n{len(textures)} faces x {len(photos)} lights, seed {int(cfg.seed)}, textures {cfg.textures}, "
        f"detector fallbacks {fallbacks}\n"
    )
    atomic_write_text(out / "results.md", text)
    return payload


def main(argv: list[str] | None = None) -> int:
    """``python -m ganfit.eval.albedo_light key=value ...``. Exit codes: 0 measured, 1 a median is not finite,
    2 bad usage (unknown key, bad value, no textures), 130 Ctrl-C."""
    return run_command(lambda: _main(argv), (ConfigUsageError, GeneratorFileError, FileNotFoundError))


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_command("eval_albedo_light", argv, prog="ganfit eval-albedo-light", doc=__doc__.split("\n\n")[0])
    payload = run(cfg)
    print((Path(str(cfg.out)) / "results.md").read_text())
    finite = all(math.isfinite(v["median_delta_e"]) for s in payload["summary"].values() for v in s.values())
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
