"""Eyes and mouth interior for renders and exported meshes: ICT FaceKit's inner parts (eyeballs, eye and mouth
sockets, gums, teeth; :meth:`ganfit.face_model.FaceModel.parts`) posed by the fitted shape and expression, coloured
by a small procedural texture (:func:`part_texture`) whose iris and sclera colours come from the photo where the eye
is open (:func:`eye_colours`) and are neutral defaults otherwise.

The fit's losses keep ignoring the parts; :class:`HeadRenderer` draws face + parts in one pass (one depth test, one
antialiasing) from an atlas texture: the face's UV albedo ``[R, R]`` on the left, the parts' strip ``[R, S]`` on the
right.

Part texture layout (``part_uvs``): one block of columns per part, ``PART_BLOCKS`` in order; inside the two eye
blocks, ``v`` is a radial coordinate from the pupil: ``v = t / 2`` with ``t`` in [0, 1] across the iris (0 = centre)
and in [1, 2] over the sclera (2 = the back of the eyeball).
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

import ganfit.render as dr
from ganfit.face_model import PART_LABELS, FaceModel, vertex_normals
from ganfit.fitting.shading import make_light
from ganfit.render.camera import Camera
from ganfit.render.pipeline import FaceRenderer, RenderOutput

logger = logging.getLogger(__name__)

PART_BLOCKS = ("mouth_socket", "eye_socket", "gums_tongue", "teeth", "eye_right", "eye_left")
BLOCK_TEXELS = 8  # columns per block in the part texture
IRIS_HALF_ANGLE = math.radians(23.0)  # iris edge seen from the eyeball centre (11.8 mm iris on a 15.7 mm sphere)
PUPIL_T = 0.42  # pupil radius as a fraction of the iris radius
LIMBUS_T = 0.9  # the dark limbal ring starts here


OCCLUDED_EYE_RATIO = 0.45
"""An eye opening whose brightest pixels (90th percentile of luminance) are darker than this fraction of the nose
bridge's median is covered (sunglasses, a deep shadow): its colours stay the defaults. An open eye's sclera is about
as bright as the skin beside it."""


@dataclass
class PartColours:
    """Albedo colours (RGB in [0, 1]) of the inner parts. ``iris`` / ``sclera``: [2, 3], rows (right eye, left eye)
    of the subject; ``from_photo``: per eye whether the photo gave the colours."""

    iris: np.ndarray = field(default_factory=lambda: np.array([[0.32, 0.23, 0.16]] * 2, np.float32))
    sclera: np.ndarray = field(default_factory=lambda: np.array([[0.82, 0.78, 0.74]] * 2, np.float32))
    mouth_socket: tuple[float, float, float] = (0.22, 0.07, 0.07)
    eye_socket: tuple[float, float, float] = (0.55, 0.32, 0.30)
    gums_tongue: tuple[float, float, float] = (0.58, 0.26, 0.26)
    teeth: tuple[float, float, float] = (0.86, 0.82, 0.72)
    pupil: tuple[float, float, float] = (0.03, 0.03, 0.03)
    from_photo: tuple[bool, bool] = (False, False)


def _sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares centre of a sphere through ``points`` [N, 3]."""
    a = np.concatenate([2 * points, np.ones((len(points), 1))], axis=1)
    b = (points**2).sum(1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    return solution[:3]


def part_uvs(face_model: FaceModel) -> np.ndarray:
    """Texture coordinates of the part vertices in the part texture: float32 [Vp, 2] (u right, v down, [0, 1])."""
    labels = face_model.part_labels.cpu().numpy()
    side = face_model.part_side.cpu().numpy()
    mean = face_model.part_mean.cpu().numpy().astype(np.float64)
    blocks = np.zeros(len(labels), np.int64)
    v = np.full(len(labels), 0.5)
    for name in ("mouth_socket", "eye_socket", "gums_tongue", "teeth"):
        blocks[labels == PART_LABELS.index(name)] = PART_BLOCKS.index(name)
    # ICT's "sclera" is the eyeball's outer shell (cornea + sclera, a whole sphere) and its "iris" an inner sphere
    # behind it: without transparency only the shell shows, so the iris is painted on the shell by its angle from
    # the gaze axis (+Z: the neutral eyes look straight ahead; gaze blendshapes rotate the vertices with it).
    sclera_label, iris_label = PART_LABELS.index("sclera"), PART_LABELS.index("iris")
    axis = np.array([0.0, 0.0, 1.0])
    for eye, sign in (("eye_right", -1), ("eye_left", 1)):
        sclera = (labels == sclera_label) & (side == sign)
        both = sclera | ((labels == iris_label) & (side == sign))
        centre = _sphere_centre(mean[sclera])
        direction = mean[both] - centre
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        angle = np.arccos(np.clip(direction @ axis, -1.0, 1.0))
        edge = IRIS_HALF_ANGLE
        t = np.where(angle < edge, angle / edge, 1.0 + (angle - edge) / (math.pi - edge))
        blocks[both] = PART_BLOCKS.index(eye)
        v[both] = np.clip(t, 0.0, 2.0) / 2.0
    u = (blocks + 0.5) / len(PART_BLOCKS)
    return np.stack([u, v], 1).astype(np.float32)


def part_texture(colours: PartColours, height: int) -> torch.Tensor:
    """The part texture [3, height, len(PART_BLOCKS) * BLOCK_TEXELS] in [0, 1] (see the module docstring)."""
    t = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2.0  # radial coordinate per row
    columns = []
    for block in PART_BLOCKS:
        if block in ("eye_right", "eye_left"):
            row = 0 if block == "eye_right" else 1
            iris = torch.tensor(colours.iris[row], dtype=torch.float32)
            sclera = torch.tensor(colours.sclera[row], dtype=torch.float32)
            pupil = torch.tensor(colours.pupil)
            ring = ((t - PUPIL_T) / (LIMBUS_T - PUPIL_T)).clamp(0, 1)[:, None]
            profile = iris * (1.15 - 0.3 * ring)  # lighter near the pupil
            profile = torch.where((t < PUPIL_T)[:, None], pupil, profile)
            limbus = ((t - LIMBUS_T) / (1.0 - LIMBUS_T)).clamp(0, 1)[:, None]
            profile = torch.where((t >= LIMBUS_T)[:, None], iris * (1.0 - 0.4 * limbus), profile)
            to_sclera = ((t - 1.0) / 0.08).clamp(0, 1)[:, None]
            profile = torch.where((t >= 1.0)[:, None], iris * 0.6 * (1 - to_sclera) + sclera * to_sclera, profile)
        else:
            profile = torch.tensor(getattr(colours, block), dtype=torch.float32).expand(height, 3)
        columns.append(profile[:, None, :].expand(height, BLOCK_TEXELS, 3))
    return torch.cat(columns, 1).permute(2, 0, 1).clamp(0, 1).contiguous()


class HeadTopology:
    """Face + parts as one mesh over ``FaceModel.full_vertices``: triangles, atlas UVs and UV triangles for a face
    texture of side ``face_side`` beside a part texture of width ``part_width``.

    Attributes: ``triangles`` int64 [F + Fp, 3]; ``face_uvs`` [T, 2] and ``part_uvs`` [V + Vp, 2] in their own
    textures; ``uv_triangles`` int64 [F + Fp, 3] into ``cat(face_uvs, part_uvs)``.
    """

    def __init__(self, face_model: FaceModel) -> None:
        face_tri = face_model.triangles.cpu()
        part_tri = face_model.part_triangles.cpu()
        vertex_count = face_model.num_vertices
        uvs = torch.from_numpy(part_uvs(face_model))
        # Face-rim corners of socket triangles take the socket's colour (their triangle's part label).
        rim_uvs = torch.full((vertex_count, 2), 0.5)
        socket_u = (PART_BLOCKS.index("eye_socket") + 0.5) / len(PART_BLOCKS)
        mouth_u = (PART_BLOCKS.index("mouth_socket") + 0.5) / len(PART_BLOCKS)
        mouth_label = PART_LABELS.index("mouth_socket")
        labels = face_model.part_labels.cpu()
        for triangle in part_tri[(part_tri < vertex_count).any(1)].tolist():
            part = [c - vertex_count for c in triangle if c >= vertex_count]
            mouth = bool(part) and int(labels[part[0]]) == mouth_label
            for corner in triangle:
                if corner < vertex_count:
                    rim_uvs[corner, 0] = mouth_u if mouth else socket_u
        self.face_uvs = face_model.uvs.cpu()
        self.part_uvs = torch.cat([rim_uvs, uvs])  # indexed by full-vertex id
        self.triangles = torch.cat([face_tri, part_tri])
        self.uv_triangles = torch.cat([face_model.uv_triangles.cpu(), part_tri + self.face_uvs.shape[0]])
        self.face_triangle_count = int(face_tri.shape[0])

    def atlas_uvs(self, face_side: int, part_width: int) -> torch.Tensor:
        """UVs [T + V + Vp, 2] of the atlas ``[face texture | part texture]`` (width face_side + part_width)."""
        total = face_side + part_width
        face = self.face_uvs * torch.tensor([face_side / total, 1.0])
        part = self.part_uvs * torch.tensor([part_width / total, 1.0]) + torch.tensor([face_side / total, 0.0])
        return torch.cat([face, part])


_TOPOLOGIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def head_topology(face_model: FaceModel) -> HeadTopology:
    """:class:`HeadTopology` of ``face_model`` (built once per model)."""
    if face_model not in _TOPOLOGIES:
        _TOPOLOGIES[face_model] = HeadTopology(face_model)
    return _TOPOLOGIES[face_model]


class HeadRenderer:
    """Renders face + inner parts in one pass through :class:`ganfit.render.pipeline.FaceRenderer` (CPU backend or
    whatever ``renderer_options`` choose), one renderer per (resolution, atlas size)."""

    def __init__(self, face_model: FaceModel, **renderer_options) -> None:
        self.face_model = face_model
        self.topology = head_topology(face_model)
        self.options = {k: v for k, v in renderer_options.items() if k not in ("_target_", "resolution")}
        self._renderers: dict[tuple[int, int, int, int], FaceRenderer] = {}

    def _renderer(self, resolution: tuple[int, int], face_side: int, part_width: int) -> FaceRenderer:
        key = (int(resolution[0]), int(resolution[1]), face_side, part_width)
        if key not in self._renderers:
            uvs = self.topology.atlas_uvs(face_side, part_width)
            self._renderers[key] = FaceRenderer(
                self.topology.triangles, uvs, self.topology.uv_triangles, key[:2], **self.options
            )
        return self._renderers[key]

    def render(
        self,
        full_vertices: torch.Tensor,
        camera,
        face_texture: torch.Tensor,
        parts: torch.Tensor,
        light: dict[str, torch.Tensor],
        background: torch.Tensor | None,
        resolution: tuple[int, int],
    ) -> RenderOutput:
        """Render a batch.

        Args:
            full_vertices: [B, V + Vp, 3] mm (``FaceModel.full_vertices``).
            camera: ``ganfit.render.camera.Camera`` for an image of ``resolution``.
            face_texture: [B, 3, R, R] face albedo in [0, 1].
            parts: [B, 3, R, S] part texture (:func:`part_texture` at height R).
            light: the fitting's light parameters (``ganfit.fitting.shading.make_light``).
            background: [B, 3, H, W] or None (black).
            resolution: (H, W).
        """
        side, width = face_texture.shape[-1], parts.shape[-1]
        renderer = self._renderer(resolution, side, width)
        atlas = torch.cat([face_texture, parts.to(face_texture)], dim=-1)
        normals = vertex_normals(full_vertices, self.topology.triangles.to(full_vertices.device))
        return renderer(full_vertices, normals, atlas, camera, make_light(light), background=background)


def _inside_polygon(points: np.ndarray, polygon: np.ndarray, shrink: float) -> np.ndarray:
    """Which of ``points`` [N, 2] lie inside ``polygon`` [M, 2] shrunk towards its centroid by ``shrink``."""
    from matplotlib.path import Path as PolygonPath

    centre = polygon.mean(0)
    return PolygonPath(centre + (polygon - centre) * (1.0 - shrink)).contains_points(points)


def _eye_occluded(photo: np.ndarray, contour: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether the photo's eye opening inside ``contour`` [6, 2] is lens-dark relative to the nose bridge
    (iBUG 27-30) of the same photo (uint8 [H, W, 3]; pixels)."""
    grey = np.asarray(photo, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    height, width = grey.shape
    low = np.floor(contour.min(0)).astype(int).clip(0, [width - 1, height - 1])
    high = np.ceil(contour.max(0)).astype(int).clip(0, [width - 1, height - 1])
    ys, xs = np.mgrid[low[1] : high[1] + 1, low[0] : high[0] + 1]
    pixels = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
    inside = _inside_polygon(pixels, contour, shrink=0.1)
    if inside.sum() < 4:
        return False  # too small to judge: trust the part vertices
    eye = grey[ys.ravel()[inside], xs.ravel()[inside]]
    bridge = np.asarray(landmarks[27:31], np.float64)
    radius = max(2, int(0.25 * np.linalg.norm(bridge[-1] - bridge[0])))
    samples = [
        grey[max(0, int(y) - radius) : int(y) + radius, max(0, int(x) - radius) : int(x) + radius].ravel()
        for x, y in bridge
    ]
    reference = float(np.median(np.concatenate(samples))) if samples else 0.0
    return reference > 0 and float(np.percentile(eye, 90)) < OCCLUDED_EYE_RATIO * reference


@torch.no_grad()
def eye_colours(
    face_model: FaceModel,
    full_vertices: torch.Tensor,
    camera: Camera,
    light: dict[str, torch.Tensor],
    photo: np.ndarray,
    landmarks: np.ndarray,
    work_side: int = 1024,
    min_vertices: int = 8,
) -> PartColours:
    """Iris and sclera albedo per eye from the photo: the part vertices that are visible in the photo's camera
    (depth test against face + parts) and inside the detected eye contour, their photo colours divided by the
    fitted shading, median per eye and part; an eye with fewer than ``min_vertices`` seen keeps the defaults.

    Args:
        full_vertices: [V + Vp, 3] mm; camera: the fitted camera (batch of one) in original-photo pixels; light:
            batch-1 light parameters; photo: uint8 [H, W, 3]; landmarks: [68, 2] original-photo pixels (iBUG 36-41
            subject's right eye, 42-47 left).
    """
    colours = PartColours()
    topology = head_topology(face_model)
    vertices = full_vertices.detach().float().cpu()
    photo_size = (int(photo.shape[0]), int(photo.shape[1]))
    camera = camera.detached()
    principal = camera.principal_point(photo_size).cpu()
    camera = Camera(camera.rotation.cpu(), camera.translation.cpu(), camera.focal.cpu(), principal)
    points = camera.to_camera(vertices[None])[0]
    height, width = photo_size
    scale = min(1.0, work_side / max(height, width))
    work = (max(1, round(height * scale)), max(1, round(width * scale)))
    triangles = topology.triangles.to(torch.int32).contiguous()
    clip = camera.camera_to_clip(points[None], photo_size)
    rast, _ = dr.rasterize(dr.RasterizeCpuContext(), clip.contiguous(), triangles, work)
    distance, _ = dr.interpolate((-points[:, 2:3])[None].contiguous(), rast, triangles)
    depth = torch.flip(distance * (rast[..., 3:4] > 0), dims=[1]).permute(0, 3, 1, 2)
    count = face_model.num_vertices
    labels = face_model.part_labels.cpu().numpy()
    side = face_model.part_side.cpu().numpy()
    pixels = camera.camera_to_pixels(points[None, count:], photo_size)[0]  # [Vp, 2]
    grid = torch.stack([pixels[:, 0] / width * 2 - 1, pixels[:, 1] / height * 2 - 1], -1)[None, None]
    buffer = F.grid_sample(depth, grid, mode="nearest", align_corners=False)[0, 0, 0]
    visible = ((buffer > 0) & (-points[count:, 2] <= buffer + 1.0)).numpy()
    image = torch.from_numpy(np.array(photo, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    sampled = F.grid_sample(image, grid, mode="bilinear", align_corners=False)[0, :, 0].T  # [Vp, 3]
    normals = vertex_normals(vertices[None], topology.triangles)[0, count:] @ camera.rotation_matrix()[0].T
    shading = make_light({k: v.detach().float().cpu() for k, v in light.items()}).shade(
        torch.ones(1, 1, len(normals), 3), normals[None, None]
    )[0, 0]
    albedo = (sampled / shading.clamp_min(0.2)).clamp(0, 1).numpy()
    found = [False, False]
    pixel_np = pixels.numpy()
    t = topology.part_uvs[count:, 1].numpy() * 2.0  # radial coordinate on the eyeball's outer shell
    shell = labels == PART_LABELS.index("sclera")
    regions = (
        ("iris", colours.iris, (t > PUPIL_T + 0.08) & (t < LIMBUS_T), 0.02, 0.7),
        ("sclera", colours.sclera, t > 1.1, 0.45, 0.95),
    )
    for row, (sign, contour) in enumerate(((-1, landmarks[36:42]), (1, landmarks[42:48]))):
        open_eye = _inside_polygon(pixel_np, np.asarray(contour, np.float64), shrink=0.15)
        sampled: dict[str, np.ndarray] = {}
        for name, _, region, _, _ in regions:
            chosen = visible & open_eye & shell & region & (side == sign)
            if int(chosen.sum()) >= min_vertices:
                sampled[name] = np.median(albedo[chosen], axis=0)
        if _eye_occluded(photo, np.asarray(contour, np.float64), landmarks):
            logger.debug("eye %d: the eye opening is dark like a lens: default colours", row)
            continue  # dark glasses or a deep shadow: the photo does not show this eye's colours
        for name, target, _, low, high in regions:
            if name in sampled:
                target[row] = np.clip(sampled[name], low, high)
                found[row] = found[row] or name == "iris"
    colours.from_photo = (found[0], found[1])
    logger.debug("eye colours from the photo: right %s, left %s", *found)
    return colours
