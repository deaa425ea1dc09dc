"""Differentiable rasterization primitives with nvdiffrast's API (``nvdiffrast/torch/ops.py``).

``import ganfit.render as dr`` can replace ``import nvdiffrast.torch as dr``: the same four primitives with the same
signatures, tensor layouts and semantics. On CPU tensors they run our compiled numba backend; with a
:class:`RasterizeCudaContext` / CUDA tensors they delegate to nvdiffrast itself when it is installed.

Conventions (nvdiffrast's):
    * Clip space is OpenGL-style: ``pos = (x, y, z, w)``, NDC = ``(x, y, z) / w`` with x right, y up, visible depth
      ``-1 <= z/w <= 1`` (smaller is closer). Pixel ``(x, y)`` of the output (column x, row y) is sampled at its
      centre, NDC ``(2 (x + 0.5) / W - 1, 2 (y + 0.5) / H - 1)``: **row 0 is the bottom of the image (NDC y = -1)**.
      Flip rows (``torch.flip(img, dims=[1])``) to get a picture stored top row first.
    * Barycentrics ``(u, v)`` are perspective-correct and weight vertices 0 and 1 of the triangle; vertex 2 gets
      ``1 - u - v``.
    * Texture coordinates: ``uv = (0, 0)`` is the corner of texel row 0 / column 0 (for an image stored top row
      first, the top-left corner); texel ``(i, j)`` has its centre at ``((j + 0.5) / Wt, (i + 0.5) / Ht)``.

CPU backend specifics: watertight fill rule (on a closed mesh every covered pixel belongs to exactly one triangle);
triangles crossing the near/far planes are clipped per pixel (homogeneous rasterization), ones behind the eye are
invisible; no backface culling (as nvdiffrast). Supported: instanced and range mode ``rasterize``, ``interpolate``
with and without ``rast_db``/``diff_attrs``, ``texture`` with ``'nearest'``/``'linear'`` filtering and
``'wrap'``/``'clamp'``/``'zero'`` boundaries (mipmapped filtering and cube maps are not implemented on the CPU),
``antialias``. float32 (as nvdiffrast) and float64 (for gradient checks) inputs are accepted.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ganfit.render import _cpu
from ganfit.render._allocator import tune_allocator
from ganfit.render._cpu import TopologyHash

__all__ = [
    "BackendUnavailableError",
    "RasterizeCpuContext",
    "RasterizeCudaContext",
    "RasterizeGLContext",
    "TopologyHash",
    "antialias",
    "antialias_construct_topology_hash",
    "interpolate",
    "nvdiffrast_available",
    "rasterize",
    "texture",
    "texture_construct_mip",
]


class BackendUnavailableError(RuntimeError):
    """The requested rasterization backend (nvdiffrast / CUDA) is not available in this environment."""


def _nvdiffrast() -> Any | None:
    """``nvdiffrast.torch`` if importable, else None."""
    try:
        import nvdiffrast.torch as nvdr  # type: ignore[import-not-found]
    except ImportError:
        return None
    return nvdr


def nvdiffrast_available() -> bool:
    """True when nvdiffrast can be imported and a CUDA device is present."""
    return torch.cuda.is_available() and _nvdiffrast() is not None


def _require_nvdiffrast(what: str) -> Any:
    nvdr = _nvdiffrast()
    if nvdr is None:
        raise BackendUnavailableError(
            f"{what} needs nvdiffrast (CUDA), which is not importable. Install it from "
            "https://github.com/NVlabs/nvdiffrast on a CUDA machine, or use RasterizeCpuContext / CPU tensors "
            "(config renderer=cpu)."
        )
    return nvdr


# ----------------------------------------------------------------------------------------------------------------
# Contexts.


class RasterizeCpuContext:
    """Context of the CPU rasterizer (cheap to create; holds no state but the options). Creating the first one fixes
    glibc's malloc thresholds for the process (``ganfit.render._allocator``; ``GANFIT_MALLOC_TUNING=0`` opts out).

    Args:
        output_db: also compute the image-space derivatives of the barycentrics (``rast_db``). Costs a pass over
            the covered pixels; switch off when no mipmapping / attribute derivatives are needed.
        device: accepted for symmetry with nvdiffrast's contexts; must be None or a CPU device.
    """

    def __init__(self, output_db: bool = True, device: torch.device | str | None = None) -> None:
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"RasterizeCpuContext: device must be the CPU, got {device!r}")
        self.output_db = bool(output_db)
        self.active_depth_peeler = None
        tune_allocator()


class RasterizeCudaContext:
    """nvdiffrast's CUDA rasterizer context (delegates to ``nvdiffrast.torch.RasterizeCudaContext``).

    Raises:
        BackendUnavailableError: nvdiffrast is not importable.
    """

    def __init__(self, device: torch.device | str | int | None = None) -> None:
        nvdr = _require_nvdiffrast("RasterizeCudaContext")
        self.inner = nvdr.RasterizeCudaContext(device=device)
        self.output_db = True


class RasterizeGLContext:
    """nvdiffrast's OpenGL rasterizer context (delegates to ``nvdiffrast.torch.RasterizeGLContext``)."""

    def __init__(self, output_db: bool = True, mode: str = "automatic", device: Any = None) -> None:
        nvdr = _require_nvdiffrast("RasterizeGLContext")
        self.inner = nvdr.RasterizeGLContext(output_db=output_db, mode=mode, device=device)
        self.output_db = bool(output_db)


def _delegate_context(glctx: Any) -> Any | None:
    """nvdiffrast context to delegate to, or None for the CPU backend."""
    if isinstance(glctx, RasterizeCpuContext):
        return None
    if isinstance(glctx, (RasterizeCudaContext, RasterizeGLContext)):
        return glctx.inner
    nvdr = _nvdiffrast()
    if nvdr is not None and type(glctx).__module__.startswith("nvdiffrast"):
        return glctx
    raise TypeError(
        f"rasterize: glctx must be a RasterizeCpuContext or RasterizeCudaContext, got {type(glctx).__name__}"
    )


# ----------------------------------------------------------------------------------------------------------------
# Input checks.


def _check_float(name: str, t: Any, dims: Sequence[int]) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() not in dims:
        raise ValueError(f"{name} must have {' or '.join(str(d) for d in dims)} dims, got shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 (or float64), got {t.dtype}")
    if t.device.type != "cpu":
        raise BackendUnavailableError(
            f"{name} is on {t.device}; the CPU backend needs CPU tensors (CUDA tensors need nvdiffrast installed)"
        )


def _check_tri(tri: Any, n_vert: int | None) -> torch.Tensor:
    if not isinstance(tri, torch.Tensor) or tri.dim() != 2 or tri.shape[1] != 3:
        raise ValueError(f"tri must be an integer tensor of shape [F, 3], got {getattr(tri, 'shape', type(tri))}")
    if tri.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"tri must be int32 (or int64), got {tri.dtype}")
    tri32 = tri.detach().to(device="cpu", dtype=torch.int32).contiguous()
    arr = tri32.numpy()  # numpy reductions: no wake-up of torch's thread pool for a tiny check
    if n_vert is not None and arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_vert):
        raise ValueError(f"tri indexes vertices outside [0, {n_vert}): min {int(arr.min())}, max {int(arr.max())}")
    return tri32


def _check_rast(rast: Any) -> None:
    _check_float("rast", rast, (4,))
    if rast.shape[3] != 4:
        raise ValueError(f"rast must be [B, H, W, 4] (output of rasterize), got {tuple(rast.shape)}")


# ----------------------------------------------------------------------------------------------------------------
# Rasterize.


def rasterize(
    glctx: Any,
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: Sequence[int],
    ranges: torch.Tensor | None = None,
    grad_db: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterize triangles.

    Args:
        glctx: :class:`RasterizeCpuContext` (CPU backend) or :class:`RasterizeCudaContext` (nvdiffrast).
        pos: clip-space vertex positions, float32. Instanced mode: ``[B, V, 4]`` (one mesh per image). Range mode:
            ``[V, 4]`` with ``ranges``; ``[V, 4]`` without ``ranges`` renders one image of all triangles.
        tri: triangles ``[F, 3]`` int32 (int64 accepted), vertex indices into ``pos``.
        resolution: output ``(height, width)`` in pixels.
        ranges: range mode only: ``[B, 2]`` int32 on the CPU, (first triangle, triangle count) per output image.
        grad_db: propagate gradients of ``rast_db`` into ``pos`` (only when the context outputs ``rast_db``).

    Returns:
        ``(rast, rast_db)``: ``rast [B, H, W, 4]`` float = ``(u, v, z/w, triangle_id + 1)``, zeros where no triangle
        covers the pixel centre; row 0 is the bottom of the image (NDC y = -1). ``rast_db [B, H, W, 4]`` =
        ``(du/dX, du/dY, dv/dX, dv/dY)`` in units of pixels (Y = increasing row), or ``[B, H, W, 0]`` when the
        context has ``output_db=False``. Gradients reach ``pos`` (x, y, w) through ``u, v`` (and ``rast_db``);
        ``z/w`` and the triangle id carry none.
    """
    inner = _delegate_context(glctx)
    if inner is not None:
        nvdr = _require_nvdiffrast("rasterize")
        return nvdr.rasterize(inner, pos, tri, resolution, ranges=ranges, grad_db=grad_db)
    _check_float("pos", pos, (2, 3))
    if pos.shape[-1] != 4:
        raise ValueError(f"pos must end in 4 clip coordinates (x, y, z, w), got shape {tuple(pos.shape)}")
    res = tuple(int(r) for r in resolution)
    if len(res) != 2 or min(res) <= 0:
        raise ValueError(f"resolution must be (height, width) with positive entries, got {resolution!r}")
    n_vert = pos.shape[-2]
    tri32 = _check_tri(tri, n_vert)
    n_tri = tri32.shape[0]
    if pos.dim() == 3:
        n_batch = pos.shape[0]
        lo = np.zeros(n_batch, np.int64)
        hi = np.full(n_batch, n_tri, np.int64)
        pos3 = pos
    else:
        if ranges is None:
            lo = np.zeros(1, np.int64)
            hi = np.full(1, n_tri, np.int64)
        else:
            if not isinstance(ranges, torch.Tensor) or ranges.dim() != 2 or ranges.shape[1] != 2:
                raise ValueError(f"ranges must be [B, 2] (start, count), got {getattr(ranges, 'shape', ranges)}")
            r = ranges.detach().cpu().to(torch.int64).numpy()
            lo = np.clip(r[:, 0], 0, n_tri)
            hi = np.clip(r[:, 0] + r[:, 1], 0, n_tri)
        pos3 = pos.unsqueeze(0)
    return _cpu.RasterizeFunction.apply(pos3, tri32, lo, hi, res, glctx.output_db, bool(grad_db))


# ----------------------------------------------------------------------------------------------------------------
# Interpolate.


def interpolate(
    attr: torch.Tensor,
    rast: torch.Tensor,
    tri: torch.Tensor,
    rast_db: torch.Tensor | None = None,
    diff_attrs: Sequence[int] | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate vertex attributes.

    Args:
        attr: float attributes ``[B, V, C]`` (instanced), ``[1, V, C]`` or ``[V, C]`` (shared by all images).
        rast: ``[B, H, W, 4]`` from :func:`rasterize`.
        tri: ``[F, 3]`` int32, as given to :func:`rasterize`.
        rast_db: optional ``[B, H, W, 4]`` second output of :func:`rasterize`; needed with ``diff_attrs``.
        diff_attrs: attribute indices whose image-space derivatives to output, or ``'all'``.

    Returns:
        ``(out, out_da)``: ``out [B, H, W, C]`` interpolated with rast's perspective-correct barycentrics (zeros on
        empty pixels); ``out_da [B, H, W, 2 * len(diff_attrs)]`` = ``(dA/dX, dA/dY)`` per selected attribute (per
        pixel, Y = row), or ``[B, H, W, 0]``. Gradients reach ``attr``, ``rast`` (u, v) and ``rast_db``.
    """
    if attr.is_cuda:
        nvdr = _require_nvdiffrast("interpolate on CUDA tensors")
        return nvdr.interpolate(attr, rast, tri, rast_db=rast_db, diff_attrs=diff_attrs)
    _check_float("attr", attr, (2, 3))
    _check_rast(rast)
    attr3 = attr.unsqueeze(0) if attr.dim() == 2 else attr
    if attr3.shape[0] not in (1, rast.shape[0]):
        raise ValueError(f"attr batch {attr3.shape[0]} must be 1 or rast's batch {rast.shape[0]}")
    tri32 = _check_tri(tri, attr3.shape[1])
    rast_c = rast.to(attr3.dtype)
    out = _cpu.InterpolateFunction.apply(attr3, rast_c, tri32)
    if diff_attrs is None or (not isinstance(diff_attrs, str) and len(diff_attrs) == 0):
        return out, out.new_zeros((*rast.shape[:3], 0))
    if rast_db is None:
        raise ValueError("interpolate: diff_attrs needs rast_db (the second output of rasterize)")
    if isinstance(diff_attrs, str):
        if diff_attrs != "all":
            raise ValueError(f"diff_attrs must be a list of indices or 'all', got {diff_attrs!r}")
        idx = list(range(attr3.shape[2]))
    else:
        idx = [int(i) for i in diff_attrs]
    return out, _attribute_derivatives(attr3[..., idx], rast_c, tri32, rast_db.to(attr3.dtype))


def _attribute_derivatives(
    attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor, rast_db: torch.Tensor
) -> torch.Tensor:
    """``[B, H, W, 2 Cd]`` = (dA/dX, dA/dY) per attribute, differentiable torch ops (attr ``[Ba, V, Cd]``)."""
    n_batch, height, width = rast.shape[:3]
    tid = rast[..., 3].detach().long() - 1
    covered = tid >= 0
    b_idx, y_idx, x_idx = torch.nonzero(covered, as_tuple=True)
    ab = b_idx if attr.shape[0] > 1 else torch.zeros_like(b_idx)
    a = attr[ab[:, None], tri.long()[tid[covered]]]  # [N, 3, Cd]
    db = rast_db[b_idx, y_idx, x_idx]  # [N, 4]
    d0 = a[:, 0] - a[:, 2]
    d1 = a[:, 1] - a[:, 2]
    dx = d0 * db[:, 0:1] + d1 * db[:, 2:3]
    dy = d0 * db[:, 1:2] + d1 * db[:, 3:4]
    da = torch.stack([dx, dy], dim=-1).reshape(dx.shape[0], -1)
    out = attr.new_zeros((n_batch, height, width, da.shape[1]))
    return out.index_put((b_idx, y_idx, x_idx), da)


# ----------------------------------------------------------------------------------------------------------------
# Texture.


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None = None,
    mip_level_bias: torch.Tensor | None = None,
    mip: Any = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
) -> torch.Tensor:
    """Texture sampling.

    Args:
        tex: ``[B, Ht, Wt, C]`` float texture (``B`` may be 1 to share it); texel row 0 is at ``v = 0``.
        uv: ``[B, H, W, 2]`` texture coordinates (u along texel columns, v along texel rows), texel ``(i, j)``
            centred at ``((j + 0.5) / Wt, (i + 0.5) / Ht)``.
        uv_da: optional ``[B, H, W, 4]`` image-space derivatives of ``uv`` (only for mipmapped modes).
        mip_level_bias: optional ``[B, H, W]`` (only for mipmapped modes).
        mip: optional prebuilt mip stack (only for mipmapped modes).
        filter_mode: ``'auto'``, ``'nearest'``, ``'linear'``, ``'linear-mipmap-nearest'``,
            ``'linear-mipmap-linear'``. ``'auto'`` is ``'linear'`` unless ``uv_da``/``mip_level_bias`` is given.
            The CPU backend implements ``'nearest'`` and ``'linear'``.
        boundary_mode: ``'wrap'`` (fractional part of uv), ``'clamp'`` (to the centres of the edge texels),
            ``'zero'`` (texture extended with zeros) or ``'cube'`` (cube maps; CUDA only).
        max_mip_level: limit of mip levels; 0 turns mipmapped modes into ``'linear'``.

    Returns:
        ``[B, H, W, C]`` sampled values. Gradients reach ``tex`` and, for ``'linear'``, ``uv``.
    """
    if tex.is_cuda:
        nvdr = _require_nvdiffrast("texture on CUDA tensors")
        return nvdr.texture(
            tex,
            uv,
            uv_da=uv_da,
            mip_level_bias=mip_level_bias,
            mip=mip,
            filter_mode=filter_mode,
            boundary_mode=boundary_mode,
            max_mip_level=max_mip_level,
        )
    if filter_mode == "auto":
        filter_mode = "linear-mipmap-linear" if (uv_da is not None or mip_level_bias is not None) else "linear"
    if max_mip_level == 0 and filter_mode in ("linear-mipmap-nearest", "linear-mipmap-linear"):
        filter_mode = "linear"
    if filter_mode not in ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"):
        raise ValueError(f"texture: unknown filter_mode {filter_mode!r}")
    if filter_mode not in ("nearest", "linear"):
        raise NotImplementedError(
            f"texture: filter_mode {filter_mode!r} (mipmapping) is not implemented by the CPU backend; use "
            "'linear' or 'nearest', or max_mip_level=0"
        )
    if boundary_mode not in _cpu.BOUNDARY_CODES:
        if boundary_mode == "cube":
            raise NotImplementedError("texture: cube maps (boundary_mode='cube') are not implemented on the CPU")
        raise ValueError(f"texture: unknown boundary_mode {boundary_mode!r}")
    _check_float("tex", tex, (4,))
    _check_float("uv", uv, (4,))
    if uv.shape[3] != 2:
        raise ValueError(f"uv must be [B, H, W, 2], got {tuple(uv.shape)}")
    if tex.shape[0] not in (1, uv.shape[0]):
        raise ValueError(f"tex batch {tex.shape[0]} must be 1 or uv's batch {uv.shape[0]}")
    return _cpu.TextureFunction.apply(
        tex, uv.to(tex.dtype), filter_mode == "linear", _cpu.BOUNDARY_CODES[boundary_mode]
    )


def texture_construct_mip(tex: torch.Tensor, max_mip_level: int | None = None, cube_mode: bool = False) -> Any:
    """Mip stack construction: delegated to nvdiffrast for CUDA tensors; not implemented on the CPU."""
    if tex.is_cuda:
        return _require_nvdiffrast("texture_construct_mip").texture_construct_mip(tex, max_mip_level, cube_mode)
    raise NotImplementedError("texture_construct_mip: mipmapping is not implemented by the CPU backend")


# ----------------------------------------------------------------------------------------------------------------
# Antialias.

_TOPOLOGY_CACHE: OrderedDict[tuple[Any, ...], TopologyHash] = OrderedDict()
_TOPOLOGY_CACHE_SIZE = 8


def antialias_construct_topology_hash(tri: torch.Tensor) -> Any:
    """Edge adjacency for :func:`antialias`, built once for a triangle tensor that stays constant.

    Args:
        tri: ``[F, 3]`` int32 triangles.
    Returns:
        An opaque object for ``antialias(..., topology_hash=...)`` (a :class:`TopologyHash` on the CPU).
    """
    if tri.is_cuda:
        return _require_nvdiffrast("antialias_construct_topology_hash").antialias_construct_topology_hash(tri)
    return TopologyHash.build(_check_tri(tri, None).numpy())


def _cached_topology(tri32: torch.Tensor) -> TopologyHash:
    arr = tri32.numpy()
    key = (arr.shape, hashlib.blake2b(arr.tobytes(), digest_size=16).digest())
    hit = _TOPOLOGY_CACHE.get(key)
    if hit is not None:
        _TOPOLOGY_CACHE.move_to_end(key)
        return hit
    topo = TopologyHash.build(arr)
    _TOPOLOGY_CACHE[key] = topo
    while len(_TOPOLOGY_CACHE) > _TOPOLOGY_CACHE_SIZE:
        _TOPOLOGY_CACHE.popitem(last=False)
    return topo


def antialias(
    color: torch.Tensor,
    rast: torch.Tensor,
    pos: torch.Tensor,
    tri: torch.Tensor,
    topology_hash: Any = None,
    pos_gradient_boost: float = 1.0,
) -> torch.Tensor:
    """Analytic antialiasing of silhouette edges (nvdiffrast's method).

    For every pair of horizontally / vertically adjacent pixels showing different triangles, the silhouette edge of
    the front triangle that crosses the segment between the two pixel centres blends the two colours in proportion
    to where it crosses; moving that edge moves the blend, which gives gradients w.r.t. the vertex positions.

    Args:
        color: ``[B, H, W, C]`` image to antialias (typically shaded + composited over the background).
        rast: ``[B, H, W, 4]`` from :func:`rasterize`.
        pos: the clip positions given to :func:`rasterize` (``[B, V, 4]`` or ``[V, 4]``).
        tri: the triangles given to :func:`rasterize`.
        topology_hash: optional result of :func:`antialias_construct_topology_hash` for ``tri`` (saves rebuilding
            the edge adjacency; otherwise a small cache keyed on the content of ``tri`` is used).
        pos_gradient_boost: multiplier for the gradients propagated to ``pos``.

    Returns:
        ``[B, H, W, C]`` antialiased image. Gradients reach ``color`` and ``pos``.
    """
    if color.is_cuda:
        nvdr = _require_nvdiffrast("antialias on CUDA tensors")
        return nvdr.antialias(color, rast, pos, tri, topology_hash=topology_hash, pos_gradient_boost=pos_gradient_boost)
    _check_float("color", color, (4,))
    _check_rast(rast)
    _check_float("pos", pos, (2, 3))
    if color.shape[:3] != rast.shape[:3]:
        raise ValueError(f"color {tuple(color.shape)} and rast {tuple(rast.shape)} must share [B, H, W]")
    pos3 = pos.unsqueeze(0) if pos.dim() == 2 else pos
    if pos3.shape[0] not in (1, rast.shape[0]):
        raise ValueError(f"pos batch {pos3.shape[0]} must be 1 or rast's batch {rast.shape[0]}")
    if topology_hash is None:
        topology = _cached_topology(_check_tri(tri, pos3.shape[1]))
    elif isinstance(topology_hash, TopologyHash):
        topology = topology_hash
        if topology.tri.shape[0] != tri.shape[0]:
            raise ValueError("antialias: topology_hash was built for a different triangle tensor")
    else:
        raise TypeError(
            f"antialias: topology_hash must come from antialias_construct_topology_hash, got {topology_hash!r}"
        )
    return _cpu.AntialiasFunction.apply(color, rast.to(pos3.dtype), pos3, tri, topology, float(pos_gradient_boost))
