"""CPU backend of the four primitives: autograd functions around the numba kernels in ``_cpu_kernels``.

Private module; use :mod:`ganfit.render.ops`. Tensors must be on the CPU; float32 (production) and float64
(gradient checks) are supported. Inputs are never modified in place.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch

from ganfit.render import _cpu_kernels as k


def _np(t: torch.Tensor) -> np.ndarray:
    """Contiguous numpy view (no copy when already contiguous) of a CPU tensor, detached."""
    return t.detach().contiguous().numpy()


MIN_PARALLEL_PIXELS = 160 * 160
"""Calls on fewer pixels (batch x height x width) than this run their kernels on the calling thread alone: waking
the sleeping workers (passive OpenMP wait policy) costs ~50-100 us per parallel region, more than a second thread
saves there. Measured on the 2-core VM (``benchmarks/render_breakeven.py``, ICT face, batch 1, load ~1): the eight
primitives took 2.4 ms on one thread and 2.9 ms on two at 128x128, 3.7 and 3.4 ms at 192x192. 0 disables the rule."""

_NOMINAL = threading.local()  # .threads: the thread count the work split is made for, inside _serial_if_small


def _threads() -> int:
    """Thread count the work is split for (chunks, row orders): numba's, or the caller's inside a serial section,
    so that results do not depend on whether a launch ran serially."""
    return getattr(_NOMINAL, "threads", 0) or max(1, numba.get_num_threads())


@contextlib.contextmanager
def _serial_if_small(n_pixels: int) -> Iterator[None]:
    """Run the block's numba kernels on one thread when ``n_pixels < MIN_PARALLEL_PIXELS``, splitting the work as
    for the current thread count (the same chunks and per-thread buffers, run one after the other: bit-identical
    results)."""
    n = numba.get_num_threads()
    if n <= 1 or n_pixels >= MIN_PARALLEL_PIXELS or getattr(_NOMINAL, "threads", 0):
        yield
        return
    _NOMINAL.threads = n
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)
        _NOMINAL.threads = 0


def _image_pixels(t: torch.Tensor) -> int:
    """Pixels of a ``[B, H, W, ...]`` image tensor."""
    return int(t.shape[0]) * int(t.shape[1]) * int(t.shape[2])


def _serial_for(pixels: Callable[..., int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator of an autograd ``forward``/``backward``: runs it inside :func:`_serial_if_small` for
    ``pixels(*args)`` pixels (``args`` without ``ctx``)."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(ctx: Any, *args: Any) -> Any:
            with _serial_if_small(pixels(*args)):
                return method(ctx, *args)

        return wrapper

    return decorate


def _chunks(
    n_batch: int, height: int, width: int, target_shape: tuple[int, ...], lazy_rows: bool = False
) -> tuple[np.ndarray, int]:
    """Cached :func:`_make_chunks` for the current thread count (the small numpy ops cost ~0.1 ms per call)."""
    return _make_chunks(n_batch, height, width, tuple(int(s) for s in target_shape), _threads(), lazy_rows)


@functools.lru_cache(maxsize=256)
def _make_chunks(
    n_batch: int, height: int, width: int, target_shape: tuple[int, ...], n_threads: int, lazy_rows: bool
) -> tuple[np.ndarray, int]:
    """Work split for scatter kernels: ``(chunks[K, 3] = (row_start, row_end, buffer), n_buffers)``.

    ``target_shape`` is the gradient target's shape (batch first). When it has one slice per image and there are at
    least as many images as threads, each image is one chunk writing into its own slice (no extra buffers).
    Otherwise each thread gets a block of rows and a private buffer summed afterwards (in parallel, by
    :func:`_reduce`), unless zeroing and summing those buffers would cost more than the parallelism saves (a texture
    far larger than the image): then one chunk. With ``lazy_rows`` (the texture gradient, whose private buffers are
    zeroed and summed only where used) that exception does not apply.

    The returned array is shared between calls: never modify it.
    """
    rows = n_batch * height
    target_batch = target_shape[0]
    if target_batch == n_batch and n_batch >= n_threads:
        starts = np.arange(n_batch, dtype=np.int64) * height
        return np.stack([starts, starts + height, np.zeros(n_batch, np.int64)], axis=1), 1
    target_numel = int(np.prod(target_shape))
    n = min(n_threads, rows)
    if target_numel > 32 * rows * width and not lazy_rows:
        n = 1
    edges = np.linspace(0, rows, n + 1).round().astype(np.int64)
    return np.stack([edges[:-1], edges[1:], np.arange(n, dtype=np.int64)], axis=1), n


def _row_chunks(
    n_batch: int, height: int, width: int, target_shape: tuple[int, ...]
) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`_chunks` over interleaved rows: ``(chunks, n_buffers, rows)``; chunk ``k`` covers the raster rows
    ``rows[chunks[k, 0] : chunks[k, 1]]``. Per-thread chunks get blocks of rows from the whole image (balanced at
    batch 1); per-image chunks keep the identity order. Shared between calls: never modify them."""
    return _make_row_chunks(n_batch, height, width, tuple(int(s) for s in target_shape), _threads())


@functools.lru_cache(maxsize=256)
def _make_row_chunks(
    n_batch: int, height: int, width: int, target_shape: tuple[int, ...], n_threads: int
) -> tuple[np.ndarray, int, np.ndarray]:
    chunks, n_buf = _make_chunks(n_batch, height, width, target_shape, n_threads, False)
    n_rows = n_batch * height
    if n_buf == 1:
        return chunks, n_buf, np.arange(n_rows, dtype=np.int64)
    rows = np.arange(n_rows, dtype=np.int64)
    blocks = [rows[i : i + _ROW_BLOCK] for i in range(0, n_rows, _ROW_BLOCK)]
    parts = [np.concatenate(blocks[t::n_buf]) if blocks[t::n_buf] else rows[:0] for t in range(n_buf)]
    edges = np.cumsum([0] + [len(part) for part in parts])
    chunks = np.stack([edges[:-1], edges[1:], np.arange(n_buf, dtype=np.int64)], axis=1)
    return chunks, n_buf, np.concatenate(parts)


_SCRATCH = threading.local()


class _ZeroScratch:
    """A reusable (per Python thread) all-zero ``[max(n, 1), size]`` buffer for private texture-gradient copies.

    Kept between calls so its pages stay mapped and need no zeroing: :func:`k.add_dirty_rows` zeroes the rows it
    sums. Use as a context manager: should a call be interrupted between the scatter and that sum, the buffer is
    zeroed in full on its next use.
    """

    def __init__(self, n: int, size: int, dtype: np.dtype) -> None:
        key = (max(n, 1), size, np.dtype(dtype).str)
        cache = getattr(_SCRATCH, "buffers", None)
        if cache is None:
            cache = _SCRATCH.buffers = {}
        entry = cache.get(key)
        if entry is None:
            if len(cache) >= 4:
                cache.clear()
            entry = cache[key] = [np.zeros(key[:2], dtype), True]
        if not entry[1]:
            entry[0].fill(0)
        self._entry = entry
        self.buf = entry[0]

    def __enter__(self) -> np.ndarray:
        self._entry[1] = False
        return self.buf

    def __exit__(self, exc_type, exc, tb) -> None:
        self._entry[1] = exc_type is None


def _reduce(gbuf: np.ndarray, dtype: np.dtype | None = None) -> torch.Tensor:
    """Sum of the per-thread gradient buffers ``gbuf[n_buf, ...]`` (summed in place into ``gbuf[0]``), as
    ``dtype`` (default: the buffers' own)."""
    if gbuf.shape[0] > 1:
        flat = gbuf.reshape(gbuf.shape[0], -1)
        if flat.shape[1] < (1 << 18):  # small (vertex gradients): numpy, no parallel region to wake threads for
            for i in range(1, flat.shape[0]):
                flat[0] += flat[i]
        else:
            k.sum_buffers(flat)
    out = gbuf[0]
    if dtype is not None and out.dtype != dtype:
        out = out.astype(dtype)
    return torch.from_numpy(out)


_ROW_BLOCK = 8  # rows per block of the interleaved row order (keeps neighbouring rows, and their texels, together)


def row_order(n_batch: int, height: int) -> np.ndarray:
    """Permutation of the ``n_batch * height`` raster rows for row-parallel kernels (cached; never modify it)."""
    return _make_row_order(n_batch, height, _threads())


@functools.lru_cache(maxsize=64)
def _make_row_order(n_batch: int, height: int, n_threads: int) -> np.ndarray:
    """Identity when every thread gets whole images; otherwise blocks of rows dealt to threads in turn, thread
    ``t``'s blocks contiguous in the result (numba runs a parallel loop as one contiguous block per thread)."""
    rows = np.arange(n_batch * height, dtype=np.int64)
    if n_threads <= 1 or (n_batch % n_threads == 0):
        return rows
    blocks = [rows[i : i + _ROW_BLOCK] for i in range(0, rows.size, _ROW_BLOCK)]
    return np.concatenate([np.concatenate(blocks[t::n_threads]) for t in range(min(n_threads, len(blocks)))])


def _band_order(n_items: int) -> np.ndarray:
    """Interleave work items so each thread's static block of the parallel loop spans the whole image."""
    return _make_band_order(n_items, _threads())


@functools.lru_cache(maxsize=64)
def _make_band_order(n_items: int, n_threads: int) -> np.ndarray:
    return np.concatenate([np.arange(t, n_items, n_threads) for t in range(n_threads)]).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Rasterize.


def rasterize_forward(
    pos: np.ndarray, tri: np.ndarray, tri_lo: np.ndarray, tri_hi: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Run coverage + depth test; returns ``rast[B, H, W, 4]`` in the dtype of ``pos``."""
    n_batch = tri_lo.shape[0]
    n_tri = tri.shape[0]
    bbox = np.empty((n_batch, n_tri, 4), np.int32)
    vert = np.empty((pos.shape[0], pos.shape[1], k.VERT_FIELDS), np.float64)
    vflag = np.empty(pos.shape[:2], np.int32)
    coef = np.empty((n_batch, n_tri, k.COEF_FIELDS), np.float64)
    k.triangle_setup(pos, tri, tri_lo, tri_hi, height, width, vert, vflag, bbox, coef)
    n_bands = (height + k.BAND_HEIGHT - 1) // k.BAND_HEIGHT
    counts = np.zeros(n_batch * n_bands, np.int64)
    offsets = np.zeros(n_batch * n_bands + 1, np.int64)
    items = np.empty(int(n_tri * n_batch * 1.25) + 16, np.int32)
    total = k.bin_triangles(bbox, n_bands, counts, offsets, items)
    if total > items.shape[0]:
        items = np.empty(total, np.int32)
        k.bin_triangles(bbox, n_bands, counts, offsets, items)
    rast = np.empty((n_batch, height, width, 4), pos.dtype)
    k.rasterize_fwd(coef, bbox, n_bands, offsets, items, _band_order(n_batch * n_bands), rast)
    return rast


class RasterizeFunction(torch.autograd.Function):
    """Autograd wrapper: gradients reach ``pos`` through (u, v) and, with ``grad_db``, through ``rast_db``."""

    @staticmethod
    @_serial_for(lambda pos, tri, lo, hi, res, *a: int(lo.shape[0]) * int(res[0]) * int(res[1]))
    def forward(ctx, pos, tri, tri_lo, tri_hi, resolution, output_db, grad_db):  # type: ignore[override]
        pos_np = _np(pos)
        tri_np = _np(tri)
        height, width = resolution
        rast = rasterize_forward(pos_np, tri_np, tri_lo, tri_hi, height, width)
        if output_db:
            rast_db = np.empty_like(rast)
            k.rasterize_db(pos_np, tri_np, rast, row_order(rast.shape[0], rast.shape[1]), rast_db)
        else:
            rast_db = np.zeros((*rast.shape[:3], 0), rast.dtype)
        rast_t = torch.from_numpy(rast)
        ctx.save_for_backward(pos, tri, rast_t)
        ctx.grad_db = bool(grad_db and output_db)
        return rast_t, torch.from_numpy(rast_db)

    @staticmethod
    @_serial_for(lambda *a: _image_pixels(a[0]))
    def backward(ctx, dy, ddb):  # type: ignore[override]
        pos, tri, rast = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None, None
        chunks, n_buf, rows = _row_chunks(rast.shape[0], rast.shape[1], rast.shape[2], tuple(pos.shape))
        pos_np = _np(pos)
        # float64 accumulation whatever the input dtype: neighbouring pixels update the same vertices, and the
        # float32 load-convert-add-convert-store chain made the kernel ~20% slower (and rounded at every step).
        gbuf = np.zeros((n_buf, *pos.shape), np.float64)
        k.rasterize_bwd(pos_np, _np(tri), _np(rast), _np(dy.to(pos.dtype)), chunks, rows, gbuf)
        g_pos = _reduce(gbuf, pos_np.dtype)
        if ctx.grad_db and ddb is not None and ddb.numel() > 0 and bool(np.any(_np(ddb))):
            with torch.enable_grad():
                pos_r = pos.detach().requires_grad_(True)
                db = barycentric_derivatives_torch(pos_r, tri, rast)
                (g_db,) = torch.autograd.grad(db, pos_r, ddb)
            g_pos = g_pos + g_db
        return g_pos, None, None, None, None, None, None


def barycentric_derivatives_torch(pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor) -> torch.Tensor:
    """``(du/dX, du/dY, dv/dX, dv/dY)`` per pixel as differentiable torch ops of ``pos`` (used for ``grad_db``).

    Args:
        pos: clip positions ``[Bp, V, 4]``.
        tri: ``[F, 3]`` int.
        rast: ``[B, H, W, 4]`` from the rasterizer (only its triangle ids are used).
    Returns:
        ``[B, H, W, 4]``, zero on empty pixels.
    """
    n_batch, height, width = rast.shape[:3]
    tid = rast[..., 3].long() - 1
    covered = tid >= 0
    b_idx, y_idx, x_idx = torch.nonzero(covered, as_tuple=True)
    t = tid[covered]
    pb = b_idx if pos.shape[0] > 1 else torch.zeros_like(b_idx)
    v = pos[pb[:, None], tri.long()[t]]  # [N, 3, 4]
    w = v[..., 3]
    hx = (v[..., 0] + w) * (0.5 * width)
    hy = (v[..., 1] + w) * (0.5 * height)
    hv = torch.stack([hx, hy, w], dim=-1)  # [N, 3, 3]
    rows = torch.stack(
        [
            torch.cross(hv[:, 1], hv[:, 2], dim=-1),
            torch.cross(hv[:, 2], hv[:, 0], dim=-1),
            torch.cross(hv[:, 0], hv[:, 1], dim=-1),
        ],
        dim=1,
    )  # [N, 3 (edge), 3 (a, b, c)]
    sample = torch.stack([x_idx + 0.5, y_idx + 0.5, torch.ones_like(x_idx, dtype=pos.dtype)], dim=-1).to(pos.dtype)
    e = (rows * sample[:, None, :]).sum(-1)  # [N, 3]
    es = e.sum(-1)
    asum = rows[..., 0].sum(-1)
    bsum = rows[..., 1].sum(-1)
    u = e[:, 0] / es
    vv = e[:, 1] / es
    db = torch.stack(
        [
            (rows[:, 0, 0] - u * asum) / es,
            (rows[:, 0, 1] - u * bsum) / es,
            (rows[:, 1, 0] - vv * asum) / es,
            (rows[:, 1, 1] - vv * bsum) / es,
        ],
        dim=-1,
    )
    out = torch.zeros(n_batch, height, width, 4, dtype=pos.dtype)
    return out.index_put((b_idx, y_idx, x_idx), db)


# ----------------------------------------------------------------------------------------------------------------
# Interpolate.


class InterpolateFunction(torch.autograd.Function):
    """Barycentric interpolation of ``attr[Ba, V, C]``; gradients to ``attr`` and to rast's (u, v)."""

    @staticmethod
    @_serial_for(lambda attr, rast, *a: _image_pixels(rast))
    def forward(ctx, attr, rast, tri):  # type: ignore[override]
        attr_np = _np(attr)
        rast_np = _np(rast)
        out = np.empty((*rast.shape[:3], attr.shape[2]), attr_np.dtype)
        k.interpolate_fwd(attr_np, rast_np, _np(tri), row_order(rast.shape[0], rast.shape[1]), out)
        ctx.save_for_backward(attr, rast, tri)
        return torch.from_numpy(out)

    @staticmethod
    @_serial_for(lambda *a: _image_pixels(a[0]))
    def backward(ctx, dy):  # type: ignore[override]
        attr, rast, tri = ctx.saved_tensors
        attr_np = _np(attr)
        rast_np = _np(rast)
        want_attr = bool(ctx.needs_input_grad[0])
        attr_shape = tuple(attr.shape) if want_attr else (1, 1, attr.shape[2])  # dummy target when not needed
        chunks, n_buf, rows = _row_chunks(rast.shape[0], rast.shape[1], rast.shape[2], attr_shape)
        gattr = np.zeros((n_buf, *attr_shape), np.float64)  # float64 accumulation, as in the rasterize backward
        grast = np.empty(rast.shape, rast_np.dtype)
        k.interpolate_bwd(attr_np, rast_np, _np(tri), _np(dy.to(attr.dtype)), chunks, rows, want_attr, gattr, grast)
        g_attr = _reduce(gattr, attr_np.dtype) if want_attr else None
        return g_attr, torch.from_numpy(grast), None


# ----------------------------------------------------------------------------------------------------------------
# Texture.

BOUNDARY_CODES = {"wrap": 0, "clamp": 1, "zero": 2}


class TextureFunction(torch.autograd.Function):
    """Nearest / bilinear texture lookup; gradients to the texture and (bilinear only) the texture coordinates."""

    @staticmethod
    @_serial_for(lambda tex, uv, *a: _image_pixels(uv))
    def forward(ctx, tex, uv, linear, boundary):  # type: ignore[override]
        tex_np = _np(tex)
        out = np.empty((*uv.shape[:3], tex.shape[3]), tex_np.dtype)
        rows = row_order(uv.shape[0], uv.shape[1])
        if linear and boundary == BOUNDARY_CODES["clamp"]:
            k.texture_fwd_clamp(tex_np, _np(uv), rows, out)
        else:
            k.texture_fwd(tex_np, _np(uv), linear, boundary, rows, out)
        ctx.save_for_backward(tex, uv)
        ctx.linear = linear
        ctx.boundary = boundary
        return torch.from_numpy(out)

    @staticmethod
    @_serial_for(lambda *a: _image_pixels(a[0]))
    def backward(ctx, dy):  # type: ignore[override]
        tex, uv = ctx.saved_tensors
        tex_np = _np(tex)
        uv_np = _np(uv)
        want_tex = bool(ctx.needs_input_grad[0])
        n_chan = tex.shape[3]
        if want_tex:
            chunks, n_buf = _chunks(uv.shape[0], uv.shape[1], uv.shape[2], tuple(tex.shape), lazy_rows=True)
            gtex = np.zeros(tex.shape, tex_np.dtype)
            n_priv = n_buf - 1
        else:  # dummy target: only the uv gradient is computed
            chunks, _ = _chunks(uv.shape[0], uv.shape[1], uv.shape[2], (uv.shape[0], 1))
            chunks = chunks.copy()
            chunks[:, 2] = 0
            gtex = np.zeros((1, 1, 1, n_chan), tex_np.dtype)
            n_priv = 0
        dirty = np.zeros((max(n_priv, 1), gtex.shape[0] * gtex.shape[1]), np.uint8)
        guv = np.empty(uv.shape if ctx.linear else (1, 1, 1, 2), uv_np.dtype)
        kernel = k.texture_bwd4 if n_chan <= 4 else k.texture_bwd
        with _ZeroScratch(n_priv, gtex.size if n_priv else 1, tex_np.dtype) as scratch:
            kernel(
                tex_np,
                uv_np,
                _np(dy.to(tex.dtype)),
                ctx.linear,
                ctx.boundary,
                chunks,
                want_tex,
                gtex,
                scratch,
                dirty,
                guv,
            )
            if n_priv > 0:
                k.add_dirty_rows(gtex, scratch, dirty)
        g_tex = torch.from_numpy(gtex) if want_tex else None
        g_uv = torch.from_numpy(guv) if ctx.linear and ctx.needs_input_grad[1] else None
        return g_tex, g_uv, None, None


# ----------------------------------------------------------------------------------------------------------------
# Antialias.


@dataclass(frozen=True)
class TopologyHash:
    """Edge adjacency of a triangle list, built once per topology (nvdiffrast's ``TopologyHashWrapper``).

    Attributes:
        tri: the triangles it was built from, ``[F, 3]`` int32 (numpy).
        opposite: ``[F, 3]`` int32: for edge ``i`` of triangle ``f`` (the edge opposite its vertex ``i``), the
            vertex of the other triangle across that edge that is not on the edge; -1 when the edge is on the mesh
            boundary (or is a third+ triangle of a non-manifold edge). Such edges are always silhouette candidates.
    """

    tri: np.ndarray
    opposite: np.ndarray

    @classmethod
    def build(cls, tri: np.ndarray) -> TopologyHash:
        tri = np.ascontiguousarray(tri, dtype=np.int32)
        n_tri = tri.shape[0]
        va = tri[:, [1, 2, 0]].reshape(-1).astype(np.int64)  # edge i of triangle f = (v[i+1], v[i+2])
        vb = tri[:, [2, 0, 1]].reshape(-1).astype(np.int64)
        apex = tri.reshape(-1)
        n_vert = int(tri.max()) + 1 if tri.size else 1
        key = np.minimum(va, vb) * n_vert + np.maximum(va, vb)
        degenerate = (tri[:, [1, 2, 0]] == tri[:, [2, 0, 1]]).reshape(-1) | np.repeat(
            (tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2]) | (tri[:, 2] == tri[:, 0]), 3
        )
        key = np.where(degenerate, -1 - np.arange(key.size), key)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        opposite = np.full(3 * n_tri, -1, np.int32)
        if sk.size > 1:
            first = np.ones(sk.size, bool)
            first[1:] = sk[1:] != sk[:-1]
            pair = first[:-1] & (sk[1:] == sk[:-1])  # first and second entry of a group
            i0 = order[:-1][pair]
            i1 = order[1:][pair]
            opposite[i0] = apex[i1]
            opposite[i1] = apex[i0]
        return cls(tri=tri, opposite=opposite.reshape(n_tri, 3))


class AntialiasFunction(torch.autograd.Function):
    """Analytic silhouette antialiasing; gradients to ``color`` and to ``pos`` (silhouette edge motion)."""

    @staticmethod
    @_serial_for(lambda *a: _image_pixels(a[0]))
    def forward(ctx, color, rast, pos, tri, topology, pos_gradient_boost):  # type: ignore[override]
        color_np = _np(color)
        rast_np = _np(rast)
        pos_np = _np(pos)
        proj = np.empty((*pos.shape[:2], 2), np.float64)
        sil = np.empty((pos.shape[0], topology.tri.shape[0]), np.int8)
        k.antialias_prepare(pos_np, topology.tri, topology.opposite, rast.shape[1], rast.shape[2], proj, sil)
        pairs = k.antialias_analyse(topology.tri, proj, sil, rast_np, row_order(rast.shape[0], rast.shape[1]))
        out = color_np.copy()
        k.antialias_fwd(color_np, pairs[0], pairs[1], out)
        ctx.save_for_backward(color, rast, pos)
        ctx.saved_misc = (topology, pairs, pos_gradient_boost)
        return torch.from_numpy(out)

    @staticmethod
    @_serial_for(lambda *a: _image_pixels(a[0]))
    def backward(ctx, dy):  # type: ignore[override]
        color, rast, pos = ctx.saved_tensors
        topology, (pair_pix, pair_alpha, pair_code), boost = ctx.saved_misc
        pos_np = _np(pos)
        dy_np = _np(dy.to(color.dtype))
        gcolor = dy_np.copy()
        gpos = np.zeros(pos.shape, pos_np.dtype)
        k.antialias_bwd(
            _np(color), _np(rast), pos_np, topology.tri, pair_pix, pair_alpha, pair_code, dy_np, gcolor, gpos
        )
        g_pos = torch.from_numpy(gpos)
        if boost != 1.0:
            g_pos = g_pos * boost
        return torch.from_numpy(gcolor), None, g_pos, None, None, None
