"""Writing one fitted photo's outputs into ``out/<name>/`` atomically.

Files (all written to a temporary folder inside ``out/<name>/`` first and moved into place with ``os.replace``;
``metrics.json`` is moved last, so its presence means the photo is done):

    mesh.obj, mesh.mtl, texture.png   model-space mesh (mm) with UVs: the face (texture.png, the final albedo at
                                      ``texture.out_resolution``) and the eyes / mouth interior (parts.png)
    texture_gan.png                   the GAN's (or free texture's) albedo alone, at the same resolution
    texture_confidence.png            how much each texel was seen in the photo (detail texture only)
    mesh.glb                          the same two meshes, textured, as binary glTF
    params.npz, params.json           fitted parameters; camera in original-photo pixels
    render.png                        the reconstruction alone (RGBA, alpha = coverage), photo resolution
    overlay.png                       the rendering over the photo
    compare.png                       photo | overlay | render | texture | GAN texture | landmarks
    loss.png                          loss curves per term
    landmarks.json                    detected and projected 68 points, original-photo pixels
    metrics.json                      final loss terms, identity cosine, landmark error, seconds
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganfit.face_model import vertex_normals
from ganfit.fitting.detail_texture import DetailConfig, build_detail_texture
from ganfit.fitting.eyes import HeadRenderer, eye_colours, head_topology, part_texture
from ganfit.fitting.mesh_files import TexturedMesh, write_glb, write_obj
from ganfit.fitting.prepare import PreparedPhoto
from ganfit.landmarks.types import interocular_distance
from ganfit.render.camera import Camera, axis_angle_to_matrix

logger = logging.getLogger(__name__)

OUTPUT_FILES = (
    "mesh.obj",
    "mesh.mtl",
    "texture.png",
    "texture_gan.png",
    "texture_confidence.png",
    "parts.png",
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


@dataclass(frozen=True)
class ExportOptions:
    """What :func:`export_photo` builds (config: top-level ``detail`` and ``eyes``, ``texture.out_resolution``).

    detail: build the detail texture from the photo (False: the GAN/free albedo alone, as before).
    out_resolution: side of texture.png / texture_gan.png / texture_confidence.png (detail on), texels.
    eyes: add the eyes and mouth interior to renders and meshes.
    max_side: long side cap of render.png / overlay.png, pixels.
    skin_colour: the detail texture's seen region also takes the photo's skin-coloured pixels joined to the face
        past its outline (``DetailConfig.skin_colour``; config ``texture.skin_colour``).
    gan_tone: colour of the GAN fill where neither the photo nor the mirror texel shows the face
        (``DetailConfig.gan_tone``; config ``texture.gan_tone``: ``local`` | ``gain``).
    """

    detail: bool = True
    out_resolution: int = 1024
    eyes: bool = True
    max_side: int = 1024
    skin_colour: bool = True
    gan_tone: str = "local"


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


PNG_COMPRESS_LEVEL = 1
"""zlib level of the written PNGs: the same pixels as PIL's default 6 at a quarter of the encoding time (about 0.4 s
of CPU less per photo for the 1024x1024 maps, compare.png and overlay.png), files about 30 % larger."""


def _write_png(path: Path, image: np.ndarray) -> bytes:
    """Write ``image`` (uint8 [H, W, C]) as a PNG; returns the file's bytes."""
    data = _png_bytes(image)
    path.write_bytes(data)
    return data


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2))


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3 or 4, H, W] float in [0, 1] -> uint8 [H, W, C]."""
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def render_full(
    fitter,
    photo: PreparedPhoto,
    index: int,
    result,
    max_side: int,
    texture: torch.Tensor | None = None,
    head: tuple[HeadRenderer, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Render photo ``index`` of ``result`` at the photo's resolution (long side capped at ``max_side``).

    ``texture`` [3, R, R] replaces the fit's albedo (e.g. the detail texture); ``head`` = (renderer, full vertices
    [V + Vp, 3], part texture [3, R, S]) draws the eyes and mouth interior too.
    Returns ``(render RGBA uint8 [h, w, 4], photo uint8 [h, w, 3] resized alike, k)`` where ``k`` is the display
    pixels per original pixel.
    """
    height, width = photo.image.shape[:2]
    k = min(1.0, max_side / max(height, width))
    h, w = max(1, round(height * k)), max(1, round(width * k))
    shown = photo.image if k == 1.0 else np.asarray(Image.fromarray(photo.image).resize((w, h), Image.BILINEAR))
    camera = photo_camera(photo, result.params, index, k)
    device = result.params.ps.device
    light = {name: value[index : index + 1].detach() for name, value in result.params.light().items()}
    albedo = (result.texture[index] if texture is None else texture).to(device)[None]
    with torch.no_grad():
        if head is None:
            out = fitter.scene.render(result.vertices[index : index + 1], camera, albedo, light, None, (h, w))
        else:
            renderer, full_vertices, parts = head
            out = renderer.render(full_vertices[None].to(device), camera, albedo, parts[None], light, None, (h, w))
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
    from matplotlib.figure import Figure  # the object API: no pyplot import, no global backend or figure state

    names = sorted({k for entry in history for k, v in entry.items() if isinstance(v, np.ndarray)})
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axis = figure.subplots()
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


def _png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] -> PNG file bytes (zlib level :data:`PNG_COMPRESS_LEVEL`)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _face_and_parts(
    face_model, full_vertices: torch.Tensor, texture_png: bytes, parts_png: bytes | None
) -> list[TexturedMesh]:
    """The face (UVs into ``texture.png``) and, when ``parts_png`` is given, the eyes / mouth interior (UVs into
    ``parts.png``), split at UV seams, with smooth normals from the unsplit meshes (no shading seam at UV seams)."""
    count = face_model.num_vertices
    vertices = full_vertices.detach().cpu().float()
    positions = vertices.numpy()
    with torch.no_grad():
        face_normals = vertex_normals(vertices[None, :count], face_model.triangles.cpu())[0].numpy()
    vertex_ids, uv, triangles = face_model.seam_split()
    meshes = [
        TexturedMesh("face", positions[vertex_ids], face_normals[vertex_ids], uv, triangles, "texture.png", texture_png)
    ]
    if parts_png is not None:
        part_triangles = face_model.part_triangles.cpu()
        with torch.no_grad():
            normals = vertex_normals(vertices[None], part_triangles)[0].numpy()
        used, local = np.unique(part_triangles.numpy(), return_inverse=True)  # drop the vertices no triangle uses
        part_uv = head_topology(face_model).part_uvs.numpy()
        meshes.append(
            TexturedMesh(
                "eyes_mouth",
                positions[used],
                normals[used],
                part_uv[used],
                local.reshape(-1, 3),
                "parts.png",
                parts_png,
            )
        )
    return meshes


def _write_meshes(
    face_model, folder: Path, full_vertices: torch.Tensor, texture_png: bytes, parts_png: bytes | None
) -> None:
    """mesh.obj + mesh.mtl (texture.png, parts.png) and mesh.glb of the face and, with ``parts_png``, its parts."""
    meshes = _face_and_parts(face_model, full_vertices, texture_png, parts_png)
    write_obj(folder, meshes)
    write_glb(folder / "mesh.glb", meshes)


def _head_renderer(fitter) -> HeadRenderer:
    """The fitter's face + parts renderer (built once, with the scene's renderer options)."""
    head = getattr(fitter, "_head_renderer", None)
    if head is None:
        factory = fitter.scene.make_renderer if fitter.scene is not None else None
        options = dict(getattr(factory, "keywords", {}) or {})  # the configured renderer's backend / antialias
        head = HeadRenderer(fitter.face_model, **options)
        fitter._head_renderer = head
    return head


def _upsampled(texture: torch.Tensor, size: int) -> torch.Tensor:
    """[3, r, r] -> [3, size, size] (bicubic, clamped to [0, 1]); unchanged when already that size."""
    if texture.shape[-1] == size:
        return texture
    return torch.nn.functional.interpolate(texture[None], size=(size, size), mode="bicubic", align_corners=False)[
        0
    ].clamp(0, 1)


def export_photo(
    fitter,
    photo: PreparedPhoto,
    index: int,
    result,
    out_dir: Path,
    extra: dict | None = None,
    options: ExportOptions | None = None,
) -> Path:
    """Write all outputs of photo ``index`` of ``result`` into ``out_dir / photo.name`` (atomically per file).

    ``options`` (default :class:`ExportOptions` ()) choose the detail texture, its resolution and the eyes.
    """
    options = options or ExportOptions()
    folder = Path(out_dir) / photo.name
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        params = result.params
        face_model = fitter.face_model
        camera_px = photo_camera(photo, params, index)
        light = {name: value[index : index + 1].detach().cpu() for name, value in params.light().items()}
        gan_albedo = result.texture[index].detach().cpu()
        appearance: dict[str, Any] = {"detail": options.detail, "eyes": options.eyes}
        if options.detail:
            started = time.perf_counter()
            detail = build_detail_texture(
                face_model,
                result.vertices[index],
                camera_px,
                light,
                photo.image,
                photo.landmarks,
                gan_albedo,
                DetailConfig(
                    out_resolution=options.out_resolution, skin_colour=options.skin_colour, gan_tone=options.gan_tone
                ),
            )
            final, gan_shown = detail.albedo, detail.gan
            _write_png(staging / "texture_confidence.png", _to_uint8(detail.confidence)[..., 0])
            appearance["detail_seconds"] = time.perf_counter() - started
            appearance["seen_fraction"] = detail.seen_fraction()
        else:
            final = gan_shown = gan_albedo
        texture = _to_uint8(final)
        texture_png = _write_png(staging / "texture.png", texture)
        _write_png(staging / "texture_gan.png", _to_uint8(gan_shown))
        ps, pe = params.ps[index : index + 1].detach(), params.pe[index : index + 1].detach()
        with torch.no_grad():
            full_vertices = face_model.full_vertices(ps, pe)[0].cpu()
        head = None
        parts_png = None
        if options.eyes:
            colours = eye_colours(face_model, full_vertices, camera_px, light, photo.image, photo.landmarks)
            appearance["eye_colour_from_photo"] = list(colours.from_photo)
            parts = part_texture(colours, final.shape[-1])
            parts_png = _write_png(staging / "parts.png", _to_uint8(part_texture(colours, 64)))
            head = (_head_renderer(fitter), full_vertices, parts)
        _write_meshes(face_model, staging, full_vertices, texture_png, parts_png)

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

        render, shown, k = render_full(fitter, photo, index, result, options.max_side, texture=final, head=head)
        _write_png(staging / "render.png", render)
        alpha = render[..., 3:4].astype(np.float32) / 255.0
        overlay = (shown.astype(np.float32) * (1 - alpha) + render[..., :3].astype(np.float32) * alpha).astype(np.uint8)
        _write_png(staging / "overlay.png", overlay)
        projected = projected_landmarks(fitter, photo, index, result)
        marked = _draw_landmarks(shown, photo.landmarks * k, projected * k)
        height = 384
        shown_textures = (texture, _to_uint8(_upsampled(gan_shown, final.shape[-1])))
        panels = [_panel(x, height) for x in (shown, overlay, render, *shown_textures, marked)]
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
        metrics["appearance"] = appearance
        if extra:
            metrics.update(extra)
        _write_json(staging / "metrics.json", metrics)
        for name in OUTPUT_FILES:  # metrics.json last: it marks the photo as done
            if (staging / name).is_file():
                os.replace(staging / name, folder / name)
            elif name != DONE_MARKER:
                (folder / name).unlink(missing_ok=True)  # e.g. a confidence map of an earlier detail run
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
