"""Writing one fitted photo's outputs into ``out/<name>/`` atomically.

Files (all written to a temporary folder inside ``out/<name>/`` first and moved into place with ``os.replace``;
``metrics.json`` is moved last, so its presence means the photo is done):

    mesh.obj, mesh.mtl, texture.png   model-space mesh (mm) with UVs and the full-resolution UV texture
    mesh.glb                          the same, textured, as binary glTF
    params.npz, params.json           fitted parameters; camera in original-photo pixels
    render.png                        the reconstruction alone (RGBA, alpha = coverage), photo resolution
    overlay.png                       the rendering over the photo
    compare.png                       photo | overlay | render | texture | landmarks
    loss.png                          loss curves per term
    landmarks.json                    detected and projected 68 points, original-photo pixels
    metrics.json                      final loss terms, identity cosine, landmark error, seconds
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganfit.fitting.photos import PreparedPhoto
from ganfit.landmarks.types import interocular_distance
from ganfit.render.camera import Camera, axis_angle_to_matrix

logger = logging.getLogger(__name__)

OUTPUT_FILES = (
    "mesh.obj",
    "mesh.mtl",
    "texture.png",
    "mesh.glb",
    "params.npz",
    "params.json",
    "render.png",
    "overlay.png",
    "compare.png",
    "loss.png",
    "landmarks.json",
    "metrics.json",
)
DONE_MARKER = "metrics.json"


def is_done(folder: Path) -> bool:
    """True when ``folder`` holds a finished fit (its ``metrics.json``, written last)."""
    return (folder / DONE_MARKER).is_file()


def photo_camera(photo: PreparedPhoto, params, index: int, k: float = 1.0) -> Camera:
    """The fitted camera of photo ``index`` for the original photo's pixels, scaled by ``k`` display pixels per
    original pixel (the crop camera's focal length and principal point mapped through the crop's scale and offset)."""
    focal = params.focal[index : index + 1].detach() / photo.scale
    offset = torch.tensor(photo.offset, dtype=focal.dtype, device=focal.device)
    principal = params.principal[index : index + 1].detach() / photo.scale + offset
    return Camera(
        rotation=params.rotation[index : index + 1].detach(),
        translation=params.translation[index : index + 1].detach(),
        focal=focal * k,
        principal=principal * k,
    )


def _write_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="PNG")


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2))


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3 or 4, H, W] float in [0, 1] -> uint8 [H, W, C]."""
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def render_full(
    fitter, photo: PreparedPhoto, index: int, result, max_side: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Render photo ``index`` of ``result`` at the photo's resolution (long side capped at ``max_side``).

    Returns ``(render RGBA uint8 [h, w, 4], photo uint8 [h, w, 3] resized alike, k)`` where ``k`` is the display
    pixels per original pixel.
    """
    height, width = photo.image.shape[:2]
    k = min(1.0, max_side / max(height, width))
    h, w = max(1, round(height * k)), max(1, round(width * k))
    shown = photo.image if k == 1.0 else np.asarray(Image.fromarray(photo.image).resize((w, h), Image.BILINEAR))
    camera = photo_camera(photo, result.params, index, k)
    light = {name: value[index : index + 1].detach() for name, value in result.params.light().items()}
    with torch.no_grad():
        out = fitter.scene.render(
            result.vertices[index : index + 1], camera, result.texture[index : index + 1], light, None, (h, w)
        )
    rgba = torch.cat([out.image[0], out.mask[0]], dim=0)
    return _to_uint8(rgba), shown, k


def projected_landmarks(fitter, photo: PreparedPhoto, index: int, result) -> np.ndarray:
    """The fitted model's 68 landmarks in original-photo pixels, float32 [68, 2]."""
    camera = photo_camera(photo, result.params, index)
    with torch.no_grad():
        points = fitter.face_model.landmarks(result.vertices[index : index + 1])
        pixels = camera.project(points, photo.image.shape[:2])
    return pixels[0].cpu().numpy().astype(np.float32)


def _draw_landmarks(image: np.ndarray, detected: np.ndarray, projected: np.ndarray) -> np.ndarray:
    import cv2

    canvas = np.ascontiguousarray(image.copy())
    radius = max(1, round(max(image.shape[:2]) / 250))
    for point in detected:
        cv2.circle(canvas, (int(point[0]), int(point[1])), radius + 1, (0, 255, 0), -1, lineType=cv2.LINE_AA)
    for point in projected:
        cv2.circle(canvas, (int(point[0]), int(point[1])), radius, (255, 0, 0), -1, lineType=cv2.LINE_AA)
    return canvas


def _panel(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        image = (image[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _loss_plot(path: Path, history: list[dict[str, Any]], index: int) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    names = sorted({k for entry in history for k, v in entry.items() if isinstance(v, np.ndarray)})
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name in names:
        steps = [i for i, entry in enumerate(history) if name in entry]
        values = np.array([float(history[i][name][index]) for i in steps])
        if values.size and np.abs(values).max() > 0:
            shown = np.where(values > 0, values, np.nan)  # log axis: terms that are 0 (not yet active) are left out
            axis.plot(steps, shown, label=name, linewidth=2.0 if name == "total" else 1.0)
    previous = None
    for i, entry in enumerate(history):
        if entry["stage"] != previous and i > 0:
            axis.axvline(i, color="grey", linestyle="--", linewidth=0.8)
        previous = entry["stage"]
    axis.set_yscale("log")
    axis.set_xlabel("step (stages: rigid | align | full)")
    axis.set_ylabel("loss (unweighted)")
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def _write_obj(face_model, folder: Path, vertices: torch.Tensor, texture: np.ndarray) -> None:
    """mesh.obj + mesh.mtl + texture.png via FaceModel.export (whose image name is renamed to texture.png)."""
    face_model.export(folder / "mesh.obj", vertices, texture)
    mtl = folder / "mesh.mtl"
    text = mtl.read_text()
    image_names = [line.split(maxsplit=1)[1].strip() for line in text.splitlines() if line.startswith("map_Kd")]
    for name in image_names:
        if name != "texture.png" and (folder / name).is_file():
            os.replace(folder / name, folder / "texture.png")
        text = text.replace(f"map_Kd {name}", "map_Kd texture.png")
    mtl.write_text(text)
    if not (folder / "texture.png").is_file():
        _write_png(folder / "texture.png", texture)


def export_photo(fitter, photo: PreparedPhoto, index: int, result, out_dir: Path, extra: dict | None = None) -> Path:
    """Write all outputs of photo ``index`` of ``result`` into ``out_dir / photo.name`` (atomically per file)."""
    folder = Path(out_dir) / photo.name
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        params = result.params
        texture = _to_uint8(result.texture[index])
        vertices = result.vertices[index].detach().cpu()
        _write_obj(fitter.face_model, staging, vertices, texture)
        fitter.face_model.export(staging / "mesh.glb", vertices, texture)

        state = {key: value[index] for key, value in params.state_numpy().items() if key != "uv_texture"}
        original = photo_camera(photo, params, index)
        focal = float(original.focal[0])
        principal = original.principal[0].cpu().numpy().astype(np.float32)
        camera = {
            "rotation_axis_angle": state["rotation"].tolist(),
            "rotation_matrix": axis_angle_to_matrix(torch.from_numpy(state["rotation"])[None])[0].tolist(),
            "translation_mm": state["translation"].tolist(),
            "focal_px": focal,
            "principal_px": principal.tolist(),
            "image_size_wh": [int(photo.image.shape[1]), int(photo.image.shape[0])],
            "convention": "X_cam = R X_model + t (mm); camera looks down -Z, +Y up; x_px = cx + f X/(-Z), "
            "y_px = cy - f Y/(-Z); pixels top-left origin",
        }
        light = {k: state[k].tolist() for k in ("ambient", "light_color", "light_dir", "sh") if k in state}
        np.savez(
            staging / "params.npz",
            **{k: v for k, v in state.items()},
            focal_px=np.float32(focal),
            principal_px=principal,
            crop_scale=np.float32(photo.scale),
            crop_offset=np.asarray(photo.offset, np.float32),
        )
        payload: dict[str, Any] = {
            "source": None if photo.path is None else str(photo.path),
            "ps": state["ps"].tolist(),
            "pe": dict(zip(fitter.face_model.expression_names, state["pe"].tolist(), strict=True)),
            "pt": state["pt"].tolist() if "pt" in state else None,
            "texture": fitter.texture_mode,
            "camera": camera,
            "light": light,
            "units": "ps in standard deviations; pe ARKit blendshape weights; lengths mm; angles radians",
        }
        _write_json(staging / "params.json", payload)

        render, shown, k = render_full(fitter, photo, index, result, max_side=1024)
        _write_png(staging / "render.png", render)
        alpha = render[..., 3:4].astype(np.float32) / 255.0
        overlay = (shown.astype(np.float32) * (1 - alpha) + render[..., :3].astype(np.float32) * alpha).astype(np.uint8)
        _write_png(staging / "overlay.png", overlay)
        projected = projected_landmarks(fitter, photo, index, result)
        marked = _draw_landmarks(shown, photo.landmarks * k, projected * k)
        height = 384
        panels = [_panel(x, height) for x in (shown, overlay, render, texture, marked)]
        _write_png(staging / "compare.png", np.concatenate(panels, axis=1))
        _loss_plot(staging / "loss.png", result.history, index)
        interocular = float(interocular_distance(photo.landmarks))
        error = float(np.linalg.norm(projected - photo.landmarks, axis=1).mean())
        _write_json(
            staging / "landmarks.json",
            {
                "convention": "iBUG-68 order; original-photo pixels, x right, y down, origin at the top-left corner",
                "image_size_wh": [int(photo.image.shape[1]), int(photo.image.shape[0])],
                "detected": photo.landmarks.tolist(),
                "projected": projected.tolist(),
                "mean_error_px": error,
                "interocular_px": interocular,
            },
        )
        metrics = dict(result.metrics[index])
        metrics["landmark_error_px"] = error
        metrics["landmark_error_iod"] = error / max(interocular, 1e-6)
        if extra:
            metrics.update(extra)
        _write_json(staging / "metrics.json", metrics)
        for name in OUTPUT_FILES:  # metrics.json last: it marks the photo as done
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
