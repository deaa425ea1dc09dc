"""Compiled (numba) CPU kernels behind :mod:`ganfit.render.ops`.

Private module: the public, documented entry points are in ``ops.py``. Every kernel works on numpy views of
contiguous torch tensors, is compiled once per dtype (float32 for production, float64 for gradient checks) and
cached on disk (``cache=True``; set ``NUMBA_CACHE_DIR`` to a writable folder). Parallel loops run over image rows or
over (image, row band) work items, so a batch of 8 is as parallel as a single large image.

Conventions (identical to nvdiffrast):
    * ``pos`` is clip space ``[Bp, V, 4]`` (x, y, z, w); NDC = xyz / w; pixel ``(x, y)`` of the raster (row ``y``,
      column ``x``) has its centre at NDC ``(2 (x + 0.5) / W - 1, 2 (y + 0.5) / H - 1)``, so row 0 is NDC y = -1.
    * ``rast[b, y, x] = (u, v, z/w, triangle_id + 1)`` with perspective-correct barycentrics: an attribute is
      ``u a0 + v a1 + (1 - u - v) a2``; ``0`` in the last channel marks an empty pixel.

Row-parallel kernels take ``rows``, a permutation of the ``B * H`` raster rows (see ``_cpu.row_order``): numba
splits a parallel loop into one contiguous block per thread, and a permutation interleaving blocks of rows gives
every thread a share of the whole image (the face is not centred vertically: without it one thread gets ~54%).

Scatter-type backward kernels (gradients to vertices / texels) take ``chunks[K, 3] = (row_start, row_end,
buffer)`` over the flattened ``B * H`` rows and a gradient buffer ``[n_buffers, B_target, ...]``; see
``ops._chunks``: either one chunk per image writing into its own target image (no races), or one chunk per thread
writing into a private buffer that the caller sums.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ganfit.threads import prefer_numba_threading_layer

# Threading layer: OpenMP first, the work queue when numba has no OpenMP layer. Measured on the 2-core machine (idle,
# batch 1, fwd+bwd; docs/render.md): omp 5.8-10.0 ms at 256x256 and 14.3-20.9 ms at 512x512 against 10.7-15.7 and
# 17.0-31.6 ms with the work queue, whose every parallel region costs ~50 us of wake-ups; a whole fit was ~10% faster
# idle and not slower with a busy process on the other core. The fitting's processes are spawned, not forked (numba's
# OpenMP layer is not fork-safe). An explicit NUMBA_THREADING_LAYER is respected. The process's thread counts and
# OpenMP wait policy are ganfit.threads.apply_thread_policy's job.
prefer_numba_threading_layer()

_BIG = 1e30
AA_ROW_SLOTS = 64  # first-try per-row capacity of antialias_analyse's pair list (read at call time)


@njit(cache=True, parallel=True)
def sum_buffers(buf):
    """``buf[0] += buf[1] + ... + buf[K - 1]`` for per-thread gradient buffers ``buf[K, N]``, in parallel blocks."""
    n_buf, n = buf.shape
    block = 16384
    for blk in prange((n + block - 1) // block):
        i0 = blk * block
        i1 = min(i0 + block, n)
        for j in range(1, n_buf):
            for i in range(i0, i1):
                buf[0, i] += buf[j, i]


# ----------------------------------------------------------------------------------------------------------------
# Rasterization.


@njit(cache=True, inline="always")
def _edge_ok(e: float, a: float, b: float) -> bool:
    """Coverage test of one normalised edge function with a tie-break for samples exactly on the edge.

    ``e = a * x + b * y + c`` is >= 0 inside. A sample with ``e == 0`` belongs to the triangle whose inward edge
    normal ``(a, b)`` points to +x (or exactly +y): of two triangles sharing an edge with the same orientation,
    whose normalised edge functions are exact negatives of each other, exactly one takes the sample.
    """
    if e > 0.0:
        return True
    if e < 0.0:
        return False
    return a > 0.0 or (a == 0.0 and b > 0.0)


@njit(cache=True)
def _clip_bbox(v, width: int, height: int):
    """Pixel bounding box of the visible part of one triangle (clip-space vertices ``v[3, 4]``, float64).

    Clips against the near (z >= -w) and far (z <= w) planes (Sutherland-Hodgman) and projects what remains.
    Returns inclusive pixel index bounds ``(x0, x1, y0, y1)``; ``x1 < x0`` means nothing to draw.
    """
    poly = np.empty((6, 4))
    npoly = 3
    for i in range(3):
        for c in range(4):
            poly[i, c] = v[i, c]
    tmp = np.empty((6, 4))
    for plane in range(2):
        sign = 1.0 if plane == 0 else -1.0  # distance = w + sign * z
        nout = 0
        for i in range(npoly):
            j = (i + 1) % npoly
            di = poly[i, 3] + sign * poly[i, 2]
            dj = poly[j, 3] + sign * poly[j, 2]
            if di >= 0.0:
                for c in range(4):
                    tmp[nout, c] = poly[i, c]
                nout += 1
            if (di >= 0.0) != (dj >= 0.0):
                t = di / (di - dj)
                for c in range(4):
                    tmp[nout, c] = poly[i, c] + t * (poly[j, c] - poly[i, c])
                nout += 1
        npoly = nout
        for i in range(npoly):
            for c in range(4):
                poly[i, c] = tmp[i, c]
        if npoly == 0:
            return 0, -1, 0, -1
    xmin = _BIG
    xmax = -_BIG
    ymin = _BIG
    ymax = -_BIG
    for i in range(npoly):
        w = poly[i, 3]
        if not w > 1e-30:  # touches the eye point: be conservative
            return 0, width - 1, 0, height - 1
        px = (poly[i, 0] / w + 1.0) * (0.5 * width)
        py = (poly[i, 1] / w + 1.0) * (0.5 * height)
        xmin = min(xmin, px)
        xmax = max(xmax, px)
        ymin = min(ymin, py)
        ymax = max(ymax, py)
    return _bbox_to_pixels(xmin, xmax, ymin, ymax, width, height)


@njit(cache=True, inline="always")
def _bbox_to_pixels(xmin: float, xmax: float, ymin: float, ymax: float, width: int, height: int):
    slack = 1e-4  # pixels; far above the rounding of the divisions, far below a pixel
    if not (xmin <= xmax and ymin <= ymax):  # NaN or empty
        return 0, -1, 0, -1
    # Clamp before the int conversion so huge or infinite coordinates (w -> 0+) cannot overflow.
    fx0 = math.ceil(min(max(xmin - 0.5 - slack, -1.0), width + 1.0))
    fx1 = math.floor(max(min(xmax - 0.5 + slack, width + 0.0), -2.0))
    fy0 = math.ceil(min(max(ymin - 0.5 - slack, -1.0), height + 1.0))
    fy1 = math.floor(max(min(ymax - 0.5 + slack, height + 0.0), -2.0))
    x0 = max(int(fx0), 0)
    x1 = min(int(fx1), width - 1)
    y0 = max(int(fy0), 0)
    y1 = min(int(fy1), height - 1)
    if x1 < x0 or y1 < y0:
        return 0, -1, 0, -1
    return x0, x1, y0, y1


BAND_HEIGHT = 16  # raster rows per rasterization work item (a compile-time constant: shifts, not divisions)
VERT_FIELDS = 6  # per-vertex record of triangle_setup: (hx, hy, w, z, px, py)
COEF_FIELDS = 12  # per-triangle record: (a0, b0, c0, a1, b1, c1, a2, b2, c2, z0, z1, z2)
_INSIDE = 64  # vertex flag: w > 0 and -w <= z <= w (bits 0-5: outside the frustum plane 2 axis + side)


@njit(cache=True, inline="always")
def _project_vertex(pos, pb, i, xh, yh, vert, vflag):
    """One vertex's record for :func:`triangle_setup`, with the same float64 expressions as :func:`_setup`."""
    w = np.float64(pos[pb, i, 3])
    vert[pb, i, 0] = (pos[pb, i, 0] + w) * xh
    vert[pb, i, 1] = (pos[pb, i, 1] + w) * yh
    vert[pb, i, 2] = w
    vert[pb, i, 3] = pos[pb, i, 2]
    flags = 0
    for plane in range(6):
        sgn = 1.0 if plane % 2 == 0 else -1.0
        if sgn * pos[pb, i, plane // 2] > pos[pb, i, 3]:
            flags |= 1 << plane
    z = pos[pb, i, 2]
    if pos[pb, i, 3] > 0.0 and -pos[pb, i, 3] <= z <= pos[pb, i, 3]:
        flags |= _INSIDE
        vert[pb, i, 4] = (pos[pb, i, 0] / w + 1.0) * xh
        vert[pb, i, 5] = (pos[pb, i, 1] / w + 1.0) * yh
    else:
        vert[pb, i, 4] = 0.0
        vert[pb, i, 5] = 0.0
    vflag[pb, i] = flags


@njit(cache=True, parallel=True)
def triangle_setup(pos, tri, tri_lo, tri_hi, height, width, vert, vflag, bbox, coef):
    """Per-triangle work of :func:`rasterize_fwd`, done once per triangle (not per row band it touches).

    First every vertex once: ``vert[Bp, V, 6] = (hx, hy, w, z, px, py)`` (homogeneous pixel coordinates
    ``hx = (x + w) W/2``, ``hy = (y + w) H/2``, and the projected pixel position when the vertex lies inside the
    near/far range with w > 0) and ``vflag[Bp, V]`` (frustum outcodes, ``_INSIDE``). Then per triangle
    ``bbox[B, F, 4] = (x0, x1, y0, y1)`` (inclusive pixel indices; ``x1 < x0`` = nothing to draw: outside, out of
    its image's range, clipped away or degenerate) and, where drawn, ``coef[B, F, 12]`` = the edge functions and
    depth coefficients of :func:`_setup_h`. Vertices of a single mesh are projected inline (no parallel region for
    ~10k cheap items).
    """
    n_batch = bbox.shape[0]
    n_tri = tri.shape[0]
    n_pb, n_vert = pos.shape[0], pos.shape[1]
    xh = 0.5 * width
    yh = 0.5 * height
    if n_pb == 1:
        for i in range(n_vert):
            _project_vertex(pos, 0, i, xh, yh, vert, vflag)
    else:
        for item in prange(n_pb * n_vert):
            pb = item // n_vert
            _project_vertex(pos, pb, item - pb * n_vert, xh, yh, vert, vflag)
    for item in prange(n_batch * n_tri):
        b = item // n_tri if n_batch > 1 else 0  # no 64-bit divisions per triangle for a single image (~8%)
        f = item - b * n_tri
        bbox[b, f, 0] = 0
        bbox[b, f, 1] = -1
        bbox[b, f, 2] = 0
        bbox[b, f, 3] = -1
        if f < tri_lo[b] or f >= tri_hi[b]:
            continue
        pb = b if n_pb > 1 else 0
        i0 = tri[f, 0]
        i1 = tri[f, 1]
        i2 = tri[f, 2]
        if i0 < 0 or i1 < 0 or i2 < 0 or i0 >= n_vert or i1 >= n_vert or i2 >= n_vert:
            continue
        flags = vflag[pb, i0] & vflag[pb, i1] & vflag[pb, i2]
        if flags & (_INSIDE - 1):  # trivial rejection: all three outside the same frustum plane
            continue
        if flags & _INSIDE:
            xmin = min(vert[pb, i0, 4], min(vert[pb, i1, 4], vert[pb, i2, 4]))
            xmax = max(vert[pb, i0, 4], max(vert[pb, i1, 4], vert[pb, i2, 4]))
            ymin = min(vert[pb, i0, 5], min(vert[pb, i1, 5], vert[pb, i2, 5]))
            ymax = max(vert[pb, i0, 5], max(vert[pb, i1, 5], vert[pb, i2, 5]))
            x0, x1, y0, y1 = _bbox_to_pixels(xmin, xmax, ymin, ymax, width, height)
        else:
            v = np.empty((3, 4))
            for c in range(4):
                v[0, c] = pos[pb, i0, c]
                v[1, c] = pos[pb, i1, c]
                v[2, c] = pos[pb, i2, c]
            x0, x1, y0, y1 = _clip_bbox(v, width, height)
        if x1 < x0 or y1 < y0:
            continue
        ok, a0, b0, c0, a1, b1, c1, a2, b2, c2, z0, z1, z2 = _setup_h(
            vert[pb, i0, 0],
            vert[pb, i0, 1],
            vert[pb, i0, 2],
            vert[pb, i0, 3],
            vert[pb, i1, 0],
            vert[pb, i1, 1],
            vert[pb, i1, 2],
            vert[pb, i1, 3],
            vert[pb, i2, 0],
            vert[pb, i2, 1],
            vert[pb, i2, 2],
            vert[pb, i2, 3],
        )
        if not ok:
            continue
        bbox[b, f, 0] = x0
        bbox[b, f, 1] = x1
        bbox[b, f, 2] = y0
        bbox[b, f, 3] = y1
        coef[b, f, 0] = a0
        coef[b, f, 1] = b0
        coef[b, f, 2] = c0
        coef[b, f, 3] = a1
        coef[b, f, 4] = b1
        coef[b, f, 5] = c1
        coef[b, f, 6] = a2
        coef[b, f, 7] = b2
        coef[b, f, 8] = c2
        coef[b, f, 9] = z0
        coef[b, f, 10] = z1
        coef[b, f, 11] = z2


@njit(cache=True, inline="always")
def _bin_image(bbox, b, n_bands, counts, offsets, items, fill):
    """Count (``fill`` False) or store (True, ``offsets`` known) image ``b``'s triangles per row band."""
    for k in range(n_bands):
        counts[b * n_bands + k] = 0
    for f in range(bbox.shape[1]):
        if bbox[b, f, 1] < bbox[b, f, 0]:
            continue
        k0 = bbox[b, f, 2] // BAND_HEIGHT
        k1 = bbox[b, f, 3] // BAND_HEIGHT
        for k in range(k0, k1 + 1):
            slot = b * n_bands + k
            if fill:
                items[offsets[slot] + counts[slot]] = f
            counts[slot] += 1


@njit(cache=True, parallel=True)
def bin_triangles(bbox, n_bands, counts, offsets, items):
    """Bucket triangles by the row bands (of ``BAND_HEIGHT`` rows) their boxes touch.

    ``counts[B * n_bands]``, ``offsets[B * n_bands + 1]``; when ``items`` is too small, only counts and returns the
    total needed (call again with a large enough array). Parallel over images; a single image runs inline (no
    thread wake-ups for a loop that could not be split anyway).
    """
    n_batch = bbox.shape[0]
    if n_batch == 1:
        _bin_image(bbox, 0, n_bands, counts, offsets, items, False)
    else:
        for b in prange(n_batch):
            _bin_image(bbox, b, n_bands, counts, offsets, items, False)
    offsets[0] = 0
    for i in range(n_batch * n_bands):
        offsets[i + 1] = offsets[i] + counts[i]
    total = offsets[n_batch * n_bands]
    if items.shape[0] < total:
        return total
    if n_batch == 1:
        _bin_image(bbox, 0, n_bands, counts, offsets, items, True)
    else:
        for b in prange(n_batch):
            _bin_image(bbox, b, n_bands, counts, offsets, items, True)
    return total


@njit(cache=True, inline="always")
def _setup(pos, pb, i0, i1, i2, xh, yh):
    """:func:`_setup_h` of triangle ``(i0, i1, i2)`` of ``pos[pb]`` (the same expressions as ``triangle_setup``)."""
    w0 = np.float64(pos[pb, i0, 3])
    w1 = np.float64(pos[pb, i1, 3])
    w2 = np.float64(pos[pb, i2, 3])
    return _setup_h(
        (pos[pb, i0, 0] + w0) * xh,
        (pos[pb, i0, 1] + w0) * yh,
        w0,
        np.float64(pos[pb, i0, 2]),
        (pos[pb, i1, 0] + w1) * xh,
        (pos[pb, i1, 1] + w1) * yh,
        w1,
        np.float64(pos[pb, i1, 2]),
        (pos[pb, i2, 0] + w2) * xh,
        (pos[pb, i2, 1] + w2) * yh,
        w2,
        np.float64(pos[pb, i2, 2]),
    )


@njit(cache=True, inline="always")
def _setup_h(hx0, hy0, w0, zc0, hx1, hy1, w1, zc1, hx2, hy2, w2, zc2):
    """Normalised edge functions and depth coefficients of one triangle (see :func:`rasterize_fwd`) from its
    vertices' homogeneous pixel coordinates ``(hx, hy, w) = ((x + w) W/2, (y + w) H/2, w)`` and clip z.

    Returns ``(ok, a0, b0, c0, a1, b1, c1, a2, b2, c2, z0, z1, z2)``: edge ``i`` (opposite vertex ``i``) is
    ``e_i = a_i sx + b_i sy + c_i``, all >= 0 inside; ``z/w = sum(e_i z_i)``. ``ok`` is False for degenerate ones.
    """
    # Rows of the adjugate: edge i is opposite vertex i, built from vertices (i+1, i+2) in cyclic order, so a
    # shared edge gets exactly negated coefficients in its two triangles (the products commute, the differences
    # swap order), which the tie-break in _edge_ok relies on.
    a0 = hy1 * w2 - w1 * hy2
    b0 = w1 * hx2 - hx1 * w2
    c0 = hx1 * hy2 - hy1 * hx2
    a1 = hy2 * w0 - w2 * hy0
    b1 = w2 * hx0 - hx2 * w0
    c1 = hx2 * hy0 - hy2 * hx0
    a2 = hy0 * w1 - w0 * hy1
    b2 = w0 * hx1 - hx0 * w1
    c2 = hx0 * hy1 - hy0 * hx1
    det = hx0 * a0 + hy0 * b0 + w0 * c0
    if not (det > 0.0 or det < 0.0):
        return False, a0, b0, c0, a1, b1, c1, a2, b2, c2, 0.0, 0.0, 0.0
    if det < 0.0:
        a0, b0, c0, a1, b1, c1, a2, b2, c2 = -a0, -b0, -c0, -a1, -b1, -c1, -a2, -b2, -c2
    inv_det = 1.0 / abs(det)
    return True, a0, b0, c0, a1, b1, c1, a2, b2, c2, zc0 * inv_det, zc1 * inv_det, zc2 * inv_det


@njit(cache=True)
def coverage_count(pos, tri, height, width, counts):
    """Test helper: ``counts[B, H, W]`` += number of triangles covering each pixel centre (no depth test).

    Uses exactly the coverage test of :func:`rasterize_fwd`; on a closed mesh every pixel is covered an even
    number of times, on a tessellated plane exactly once.
    """
    xh = 0.5 * width
    yh = 0.5 * height
    for b in range(counts.shape[0]):
        pb = b if pos.shape[0] > 1 else 0
        for f in range(tri.shape[0]):
            ok, a0, b0, c0, a1, b1, c1, a2, b2, c2, _, _, _ = _setup(pos, pb, tri[f, 0], tri[f, 1], tri[f, 2], xh, yh)
            if not ok:
                continue
            for y in range(height):
                sy = y + 0.5
                for x in range(width):
                    sx = x + 0.5
                    e0 = a0 * sx + (b0 * sy + c0)  # same association as rasterize_fwd
                    e1 = a1 * sx + (b1 * sy + c1)
                    e2 = a2 * sx + (b2 * sy + c2)
                    if _edge_ok(e0, a0, b0) and _edge_ok(e1, a1, b1) and _edge_ok(e2, a2, b2) and e0 + e1 + e2 > 0.0:
                        counts[b, y, x] += 1


@njit(cache=True, parallel=True)
def rasterize_fwd(coef, bbox, n_bands, offsets, items, order, rast):
    """Depth-tested, watertight coverage: fill every pixel of ``rast[B, H, W, 4]`` (zeros where empty).

    Homogeneous 2D rasterization (no division by w before the coverage test): for a sample ``s = (sx, sy, 1)`` in
    pixel units the edge functions are ``e_i = (V_j x V_k) . s`` with ``V = ((x + w) W/2, (y + w) H/2, w)``; the
    sample is covered when all ``e_i`` have the sign of ``det[V0 V1 V2]`` (which also means it lies in front of the
    eye, w > 0), perspective-correct barycentrics are ``e_i / sum(e)`` and ``z/w = sum(e_i z_i) / |det|``. Samples
    outside ``-1 <= z/w <= 1`` are clipped (near/far planes); smaller z/w wins, ties go to the lower triangle id.

    The per-triangle coefficients ``coef`` and boxes ``bbox`` come from :func:`triangle_setup`, the work items
    ``(image, band of BAND_HEIGHT rows)`` and their triangle lists from :func:`bin_triangles`.
    """
    height = rast.shape[1]
    width = rast.shape[2]
    for oi in prange(order.shape[0]):
        slot = order[oi]
        b = slot // n_bands
        k = slot % n_bands
        r0 = k * BAND_HEIGHT
        r1 = min(r0 + BAND_HEIGHT, height)
        zbuf = np.full((r1 - r0, width), np.inf)
        for y in range(r0, r1):
            for x in range(width):
                for c in range(4):
                    rast[b, y, x, c] = 0.0
        for j in range(offsets[slot], offsets[slot + 1]):
            f = items[j]
            x0 = bbox[b, f, 0]
            x1 = bbox[b, f, 1]
            y0 = max(bbox[b, f, 2], r0)
            y1 = min(bbox[b, f, 3], r1 - 1)
            a0 = coef[b, f, 0]
            b0 = coef[b, f, 1]
            c0 = coef[b, f, 2]
            a1 = coef[b, f, 3]
            b1 = coef[b, f, 4]
            c1 = coef[b, f, 5]
            a2 = coef[b, f, 6]
            b2 = coef[b, f, 7]
            c2 = coef[b, f, 8]
            z0 = coef[b, f, 9]
            z1 = coef[b, f, 10]
            z2 = coef[b, f, 11]
            for y in range(y0, y1 + 1):
                sy = y + 0.5
                ey0 = b0 * sy + c0
                ey1 = b1 * sy + c1
                ey2 = b2 * sy + c2
                zrow = y - r0
                entered = False
                for x in range(x0, x1 + 1):
                    sx = x + 0.5
                    e0 = a0 * sx + ey0
                    e1 = a1 * sx + ey1
                    e2 = a2 * sx + ey2
                    # One (branch-free) min and one branch for the common cases; the tie-break only for samples
                    # exactly on an edge: the same test as _edge_ok on all three, ~15% faster than three branches.
                    m = min(e0, min(e1, e2))
                    if not m > 0.0:
                        if not (m == 0.0 and _edge_ok(e0, a0, b0) and _edge_ok(e1, a1, b1) and _edge_ok(e2, a2, b2)):
                            # Each edge test is monotonic in x (e = a sx + ey rounds monotonically), so the
                            # covered samples of a row are one interval: past it, the row is done.
                            if entered:
                                break
                            continue
                    entered = True
                    esum = e0 + e1 + e2
                    if not esum > 0.0:
                        continue
                    zw = e0 * z0 + e1 * z1 + e2 * z2
                    if zw < -1.0 or zw > 1.0 or not zw < zbuf[zrow, x]:
                        continue
                    zbuf[zrow, x] = zw
                    inv = 1.0 / esum
                    rast[b, y, x, 0] = e0 * inv
                    rast[b, y, x, 1] = e1 * inv
                    rast[b, y, x, 2] = zw
                    rast[b, y, x, 3] = f + 1


@njit(cache=True, parallel=True)
def rasterize_db(pos, tri, rast, rows, rast_db):
    """Fill ``rast_db[B, H, W, 4] = (du/dX, du/dY, dv/dX, dv/dY)`` (per pixel, X right, Y = raster row)."""
    height, width = rast.shape[1], rast.shape[2]
    xh = 0.5 * width
    yh = 0.5 * height
    for ri in prange(rows.shape[0]):
        r = rows[ri]
        b = r // height
        y = r % height
        pb = b if pos.shape[0] > 1 else 0
        sy = y + 0.5
        for x in range(width):
            tid = int(rast[b, y, x, 3]) - 1
            if tid < 0:
                for c in range(4):
                    rast_db[b, y, x, c] = 0.0
                continue
            i0 = tri[tid, 0]
            i1 = tri[tid, 1]
            i2 = tri[tid, 2]
            w0 = np.float64(pos[pb, i0, 3])
            w1 = np.float64(pos[pb, i1, 3])
            w2 = np.float64(pos[pb, i2, 3])
            hx0 = (pos[pb, i0, 0] + w0) * xh
            hx1 = (pos[pb, i1, 0] + w1) * xh
            hx2 = (pos[pb, i2, 0] + w2) * xh
            hy0 = (pos[pb, i0, 1] + w0) * yh
            hy1 = (pos[pb, i1, 1] + w1) * yh
            hy2 = (pos[pb, i2, 1] + w2) * yh
            a0 = hy1 * w2 - w1 * hy2
            b0 = w1 * hx2 - hx1 * w2
            c0 = hx1 * hy2 - hy1 * hx2
            a1 = hy2 * w0 - w2 * hy0
            b1 = w2 * hx0 - hx2 * w0
            c1 = hx2 * hy0 - hy2 * hx0
            a2 = hy0 * w1 - w0 * hy1
            b2 = w0 * hx1 - hx0 * w1
            c2 = hx0 * hy1 - hy0 * hx1
            sx = x + 0.5
            e0 = a0 * sx + b0 * sy + c0
            e1 = a1 * sx + b1 * sy + c1
            e2 = a2 * sx + b2 * sy + c2
            es = e0 + e1 + e2
            asum = a0 + a1 + a2
            bsum = b0 + b1 + b2
            inv = 1.0 / es
            u = e0 * inv
            v = e1 * inv
            rast_db[b, y, x, 0] = (a0 - u * asum) * inv
            rast_db[b, y, x, 1] = (b0 - u * bsum) * inv
            rast_db[b, y, x, 2] = (a1 - v * asum) * inv
            rast_db[b, y, x, 3] = (b1 - v * bsum) * inv


@njit(cache=True, parallel=True)
def rasterize_bwd(pos, tri, rast, dy, chunks, rows, gpos):
    """Gradient of the (u, v) channels w.r.t. clip-space x, y, w: accumulate into ``gpos[n_buf, Bp, V, 4]``.

    Chunk ``k`` covers the raster rows ``rows[chunks[k, 0] : chunks[k, 1]]`` (see ``_cpu._row_chunks``)."""
    height, width = rast.shape[1], rast.shape[2]
    for kk in prange(chunks.shape[0]):
        r_start = chunks[kk, 0]
        r_end = chunks[kk, 1]
        buf = chunks[kk, 2]
        for ri in range(r_start, r_end):
            r = rows[ri]
            b = r // height
            y = r % height
            pb = b if pos.shape[0] > 1 else 0
            gb = b if gpos.shape[1] > 1 else 0
            fy = 2.0 * (y + 0.5) / height - 1.0
            for x in range(width):
                tid = int(rast[b, y, x, 3]) - 1
                if tid < 0:
                    continue
                gu = np.float64(dy[b, y, x, 0])
                gv = np.float64(dy[b, y, x, 1])
                if gu == 0.0 and gv == 0.0:
                    continue
                fx = 2.0 * (x + 0.5) / width - 1.0
                i0 = tri[tid, 0]
                i1 = tri[tid, 1]
                i2 = tri[tid, 2]
                p0x = pos[pb, i0, 0] - fx * pos[pb, i0, 3]
                p0y = pos[pb, i0, 1] - fy * pos[pb, i0, 3]
                p1x = pos[pb, i1, 0] - fx * pos[pb, i1, 3]
                p1y = pos[pb, i1, 1] - fy * pos[pb, i1, 3]
                p2x = pos[pb, i2, 0] - fx * pos[pb, i2, 3]
                p2y = pos[pb, i2, 1] - fy * pos[pb, i2, 3]
                q0 = p1x * p2y - p1y * p2x
                q1 = p2x * p0y - p2y * p0x
                q2 = p0x * p1y - p0y * p1x
                qt = q0 + q1 + q2
                if qt == 0.0:
                    continue
                iq = 1.0 / qt
                u = q0 * iq
                v = q1 * iq
                gbb = gu * u + gv * v
                g0 = (gu - gbb) * iq
                g1 = (gv - gbb) * iq
                g2 = -gbb * iq
                gp0x = -g1 * p2y + g2 * p1y
                gp0y = g1 * p2x - g2 * p1x
                gp1x = g0 * p2y - g2 * p0y
                gp1y = -g0 * p2x + g2 * p0x
                gp2x = -g0 * p1y + g1 * p0y
                gp2y = g0 * p1x - g1 * p0x
                gpos[buf, gb, i0, 0] += gp0x
                gpos[buf, gb, i0, 1] += gp0y
                gpos[buf, gb, i0, 3] += -fx * gp0x - fy * gp0y
                gpos[buf, gb, i1, 0] += gp1x
                gpos[buf, gb, i1, 1] += gp1y
                gpos[buf, gb, i1, 3] += -fx * gp1x - fy * gp1y
                gpos[buf, gb, i2, 0] += gp2x
                gpos[buf, gb, i2, 1] += gp2y
                gpos[buf, gb, i2, 3] += -fx * gp2x - fy * gp2y


# ----------------------------------------------------------------------------------------------------------------
# Interpolation.


@njit(cache=True, parallel=True)
def interpolate_fwd(attr, rast, tri, rows, out):
    """``out[B, H, W, C] = u a0 + v a1 + (1 - u - v) a2`` on covered pixels, 0 elsewhere."""
    height, width = rast.shape[1], rast.shape[2]
    n_chan = attr.shape[2]
    for ri in prange(rows.shape[0]):
        r = rows[ri]
        b = r // height
        y = r % height
        ab = b if attr.shape[0] > 1 else 0
        for x in range(width):
            tid = int(rast[b, y, x, 3]) - 1
            if tid < 0:
                for c in range(n_chan):
                    out[b, y, x, c] = 0.0
                continue
            u = rast[b, y, x, 0]
            v = rast[b, y, x, 1]
            t = 1.0 - u - v
            i0 = tri[tid, 0]
            i1 = tri[tid, 1]
            i2 = tri[tid, 2]
            for c in range(n_chan):
                out[b, y, x, c] = u * attr[ab, i0, c] + v * attr[ab, i1, c] + t * attr[ab, i2, c]


@njit(cache=True, parallel=True)
def interpolate_bwd(attr, rast, tri, dy, chunks, rows, want_attr, gattr, grast):
    """Write every pixel of ``grast[B, H, W, 4]`` (u, v channels; zero elsewhere) and, with ``want_attr``,
    accumulate ``gattr[n_buf, Ba, V, C]``; chunk ``k`` covers the rows ``rows[chunks[k, 0] : chunks[k, 1]]``."""
    height, width = rast.shape[1], rast.shape[2]
    n_chan = attr.shape[2]
    for kk in prange(chunks.shape[0]):
        buf = chunks[kk, 2]
        for ri in range(chunks[kk, 0], chunks[kk, 1]):
            r = rows[ri]
            b = r // height
            y = r % height
            ab = b if attr.shape[0] > 1 else 0
            gb = b if gattr.shape[1] > 1 else 0
            for x in range(width):
                for c in range(4):
                    grast[b, y, x, c] = 0.0
                tid = int(rast[b, y, x, 3]) - 1
                if tid < 0:
                    continue
                nonzero = False
                for c in range(n_chan):
                    if dy[b, y, x, c] != 0.0:
                        nonzero = True
                if not nonzero:
                    continue
                u = rast[b, y, x, 0]
                v = rast[b, y, x, 1]
                t = 1.0 - u - v
                i0 = tri[tid, 0]
                i1 = tri[tid, 1]
                i2 = tri[tid, 2]
                gu = 0.0
                gv = 0.0
                for c in range(n_chan):
                    d = dy[b, y, x, c]
                    a2 = attr[ab, i2, c]
                    gu += d * (attr[ab, i0, c] - a2)
                    gv += d * (attr[ab, i1, c] - a2)
                    if want_attr:
                        gattr[buf, gb, i0, c] += u * d
                        gattr[buf, gb, i1, c] += v * d
                        gattr[buf, gb, i2, c] += t * d
                grast[b, y, x, 0] = gu
                grast[b, y, x, 1] = gv


# ----------------------------------------------------------------------------------------------------------------
# Texture sampling. boundary: 0 = wrap, 1 = clamp, 2 = zero.


@njit(cache=True, inline="always")
def _linear_taps(u, v, tw: int, th: int, boundary: int):
    """Texel indices ``(ix0, ix1, iy0, iy1)`` (-1 = zero texel) and fractions ``(fu, fv)`` for bilinear lookup."""
    if boundary == 0:
        u = u - math.floor(u)
        v = v - math.floor(v)
    x = u * tw - 0.5
    y = v * th - 0.5
    clamp_u = False
    clamp_v = False
    if boundary == 1:
        x = min(max(x, 0.0), tw - 1.0)
        y = min(max(y, 0.0), th - 1.0)
        clamp_u = x == 0.0 or x == tw - 1.0
        clamp_v = y == 0.0 or y == th - 1.0
    fx = math.floor(x)
    fy = math.floor(y)
    ix0 = int(fx)
    iy0 = int(fy)
    ix1 = ix0 if clamp_u else ix0 + 1
    iy1 = iy0 if clamp_v else iy0 + 1
    fu = x - fx
    fv = y - fy
    if boundary == 0:
        ix0 = ix0 % tw
        ix1 = ix1 % tw
        iy0 = iy0 % th
        iy1 = iy1 % th
    elif boundary == 2:
        if ix0 < 0 or ix0 >= tw:
            ix0 = -1
        if ix1 < 0 or ix1 >= tw:
            ix1 = -1
        if iy0 < 0 or iy0 >= th:
            iy0 = -1
        if iy1 < 0 or iy1 >= th:
            iy1 = -1
    return ix0, ix1, iy0, iy1, fu, fv


@njit(cache=True, inline="always")
def _nearest_tap(u, v, tw: int, th: int, boundary: int):
    if boundary == 0:
        u = u - math.floor(u)
        v = v - math.floor(v)
    ix = int(math.floor(u * tw))
    iy = int(math.floor(v * th))
    if boundary == 2 and (ix < 0 or ix >= tw or iy < 0 or iy >= th):
        return -1, -1
    return min(max(ix, 0), tw - 1), min(max(iy, 0), th - 1)


@njit(cache=True, inline="always")
def _tap_masks(ix0, ix1, iy0, iy1):
    """Validity (1.0 / 0.0) of the four bilinear taps (index -1 = outside, 'zero' boundary mode)."""
    mx0 = 1.0 if ix0 >= 0 else 0.0
    mx1 = 1.0 if ix1 >= 0 else 0.0
    my0 = 1.0 if iy0 >= 0 else 0.0
    my1 = 1.0 if iy1 >= 0 else 0.0
    return mx0 * my0, mx1 * my0, mx0 * my1, mx1 * my1


@njit(cache=True, inline="always")
def _bilinear_setup(u, v, tw: int, th: int, boundary: int):
    """Flat texel offsets (in texels, row-major) and weights of the four taps; invalid ('zero' mode) taps get
    offset 0 and validity 0. Returns ``(o00, o10, o01, o11, m00, m10, m01, m11, fu, fv)``."""
    ix0, ix1, iy0, iy1, fu, fv = _linear_taps(u, v, tw, th, boundary)
    mx0 = 1.0 if ix0 >= 0 else 0.0
    mx1 = 1.0 if ix1 >= 0 else 0.0
    my0 = 1.0 if iy0 >= 0 else 0.0
    my1 = 1.0 if iy1 >= 0 else 0.0
    ix0 = max(ix0, 0)
    ix1 = max(ix1, 0)
    iy0 = max(iy0, 0)
    iy1 = max(iy1, 0)
    return (
        iy0 * tw + ix0,
        iy0 * tw + ix1,
        iy1 * tw + ix0,
        iy1 * tw + ix1,
        mx0 * my0,
        mx1 * my0,
        mx0 * my1,
        mx1 * my1,
        fu,
        fv,
    )


@njit(cache=True, parallel=True)
def texture_fwd(tex, uv, linear, boundary, rows, out):
    """``out[B, H, W, C]`` = texture ``tex[Bt, Ht, Wt, C]`` sampled at ``uv[B, H, W, 2]`` (nearest or bilinear).

    A pixel with the same ``uv`` as its left neighbour (runs of background pixels at uv = 0) copies its result.
    """
    n_batch, height, width = uv.shape[0], uv.shape[1], uv.shape[2]
    th, tw, n_chan = tex.shape[1], tex.shape[2], tex.shape[3]
    flat = tex.reshape(tex.shape[0], th * tw, n_chan)
    uv2 = uv.reshape(n_batch * height * width, 2)
    out2 = out.reshape(n_batch * height * width, n_chan)
    for ri in prange(rows.shape[0]):
        r = rows[ri]
        b = r // height
        tb = b if tex.shape[0] > 1 else 0
        pu = np.nan
        pv = np.nan
        for p in range(r * width, (r + 1) * width):
            u = np.float64(uv2[p, 0])
            v = np.float64(uv2[p, 1])
            if u == pu and v == pv:  # same lookup as the previous pixel (never true for NaN)
                for c in range(n_chan):
                    out2[p, c] = out2[p - 1, c]
                continue
            pu = u
            pv = v
            if not (math.isfinite(u) and math.isfinite(v)):
                for c in range(n_chan):
                    out2[p, c] = 0.0
                continue
            if not linear:
                ix, iy = _nearest_tap(u, v, tw, th, boundary)
                for c in range(n_chan):
                    out2[p, c] = flat[tb, iy * tw + ix, c] if ix >= 0 else 0.0
                continue
            o00, o10, o01, o11, m00, m10, m01, m11, fu, fv = _bilinear_setup(u, v, tw, th, boundary)
            w00 = (1.0 - fu) * (1.0 - fv) * m00
            w10 = fu * (1.0 - fv) * m10
            w01 = (1.0 - fu) * fv * m01
            w11 = fu * fv * m11
            for c in range(n_chan):
                out2[p, c] = (
                    w00 * flat[tb, o00, c] + w10 * flat[tb, o10, c] + w01 * flat[tb, o01, c] + w11 * flat[tb, o11, c]
                )


TEX_ROWS = 8  # entries of ``rows`` per work item of texture_fwd_clamp (each allocates its own tap buffers)


@njit(cache=True, inline="always")
def _clamp_row_taps(uvf, p0, width, tw, th, n_chan, o0, o1, dq, ty, fus, fvs):
    """Bilinear 'clamp'-mode taps of the ``width`` pixels from flat pixel index ``p0`` (``uvf`` = the flat uv), as
    :func:`_linear_taps` computes them: ``o0[x]``, ``o1[x]`` = the flat element offsets (texel index times
    ``n_chan``) of the taps ``(ix0, iy0)`` and ``(ix0, iy1)``, ``dq[x]`` = the offset from column ``ix0`` to
    ``ix1`` (0 at a clamped edge), ``ty[0, x], ty[1, x]`` = the texel rows ``iy0, iy1``, ``fus[x]``, ``fvs[x]`` =
    the fractions.

    Branch-free, into separate contiguous buffers allocated by the caller's work item, so that the compiler
    vectorises the loop (with one interleaved buffer, or with other code in the loop nest, it did not).
    Non-finite coordinates get the taps of uv = 0 (callers skip those pixels).
    """
    twf = np.float64(tw)
    thf = np.float64(th)
    for x in range(width):
        u = np.float64(uvf[2 * (p0 + x)])
        v = np.float64(uvf[2 * (p0 + x) + 1])
        u = u if math.isfinite(u) else 0.0
        v = v if math.isfinite(v) else 0.0
        xc = min(max(u * twf - 0.5, 0.0), twf - 1.0)
        yc = min(max(v * thf - 0.5, 0.0), thf - 1.0)
        fx = np.floor(xc)
        fy = np.floor(yc)
        ix0 = int(fx)
        iy0 = int(fy)
        ix1 = ix0 if (xc == 0.0 or xc == twf - 1.0) else ix0 + 1
        iy1 = iy0 if (yc == 0.0 or yc == thf - 1.0) else iy0 + 1
        o0[x] = (iy0 * tw + ix0) * n_chan
        o1[x] = (iy1 * tw + ix0) * n_chan
        dq[x] = (ix1 - ix0) * n_chan
        ty[0, x] = iy0
        ty[1, x] = iy1
        fus[x] = xc - fx
        fvs[x] = yc - fy


@njit(cache=True, parallel=True)
def texture_fwd_clamp(tex, uv, rows, out):
    """:func:`texture_fwd` for the common bilinear 'clamp' mode (the face renderer's), same results bit for bit,
    ~20% faster: the taps of a row come from the vectorised :func:`_clamp_row_taps` (work items of ``TEX_ROWS``
    entries of ``rows``)."""
    height, width = uv.shape[1], uv.shape[2]
    th, tw, n_chan = tex.shape[1], tex.shape[2], tex.shape[3]
    tflat = tex.reshape(tex.size)
    uvf = uv.reshape(uv.size)
    outf = out.reshape(out.size)
    tsz = th * tw * n_chan
    n_rows = rows.shape[0]
    for item in prange((n_rows + TEX_ROWS - 1) // TEX_ROWS):
        o0 = np.empty(width, np.int64)
        o1 = np.empty(width, np.int64)
        dq = np.empty(width, np.int64)
        ty = np.empty((2, width), np.int64)
        fus = np.empty(width)
        fvs = np.empty(width)
        for ri in range(item * TEX_ROWS, min((item + 1) * TEX_ROWS, n_rows)):
            r = rows[ri]
            tbase = ((r // height) if tex.shape[0] > 1 else 0) * tsz
            p0 = r * width
            _clamp_row_taps(uvf, p0, width, tw, th, n_chan, o0, o1, dq, ty, fus, fvs)
            pu = np.nan
            pv = np.nan
            for x in range(width):
                p = p0 + x
                o = p * n_chan
                u = np.float64(uvf[2 * p])
                v = np.float64(uvf[2 * p + 1])
                if u == pu and v == pv:  # same lookup as the previous pixel (never true for NaN)
                    for c in range(n_chan):
                        outf[o + c] = outf[o - n_chan + c]
                    continue
                pu = u
                pv = v
                if not (math.isfinite(u) and math.isfinite(v)):
                    for c in range(n_chan):
                        outf[o + c] = 0.0
                    continue
                fu = fus[x]
                fv = fvs[x]
                w00 = (1.0 - fu) * (1.0 - fv) * 1.0  # the expressions of texture_fwd (mask 1.0), same rounding
                w10 = fu * (1.0 - fv) * 1.0
                w01 = (1.0 - fu) * fv * 1.0
                w11 = fu * fv * 1.0
                q00 = tbase + o0[x]
                q01 = tbase + o1[x]
                d = dq[x]
                for c in range(n_chan):
                    outf[o + c] = (
                        w00 * tflat[q00 + c]
                        + w10 * tflat[q00 + d + c]
                        + w01 * tflat[q01 + c]
                        + w11 * tflat[q01 + d + c]
                    )


@njit(cache=True, inline="always")
def _scatter_taps(gflat, base, o00, o10, o01, o11, w00, w10, w01, w11, acc, n_chan):
    for c in range(n_chan):
        a = acc[c]
        gflat[base + o00 + c] += w00 * a
        gflat[base + o10 + c] += w10 * a
        gflat[base + o01 + c] += w01 * a
        gflat[base + o11 + c] += w11 * a


@njit(cache=True, parallel=True)
def texture_bwd(tex, uv, dy, linear, boundary, chunks, want_tex, gtex, scratch, dirty, guv):
    """With ``want_tex`` accumulate the texture gradient ``gtex[Bg, Ht, Wt, C]`` (zeroed by the caller); in linear
    mode write every pixel of ``guv[B, H, W, 2]``.

    ``chunks[K, 3] = (row_start, row_end, buffer)``: buffer 0 scatters straight into ``gtex``; buffer ``s > 0``
    into the private ``scratch[s - 1]`` (same layout as ``gtex``, flattened, all zero on entry), flagging the texel
    rows it touches in ``dirty[s - 1, Bg * Ht]``; :func:`add_dirty_rows` then adds those rows to ``gtex`` and zeroes
    them again. Only the texel rows a chunk touches are summed, not whole textures.

    Runs of neighbouring pixels with identical ``uv`` (the background at uv = 0) sum their incoming gradients
    before one scatter, instead of serialised read-modify-writes of the same texels.
    """
    height, width = uv.shape[1], uv.shape[2]
    n_tb, th, tw, n_chan = tex.shape[0], tex.shape[1], tex.shape[2], tex.shape[3]
    row_len = tw * n_chan
    tsz = th * row_len
    n_gb = gtex.shape[0]
    tflat = tex.reshape(tex.size)
    gflat = gtex.reshape(gtex.size)
    uvf = uv.reshape(uv.size)
    dyf = dy.reshape(dy.size)
    guvf = guv.reshape(guv.size)  # a dummy unless linear
    for kk in prange(chunks.shape[0]):
        buf = chunks[kk, 2]
        sflat = scratch[max(buf - 1, 0)]
        acc = np.zeros(n_chan)  # summed dy of the current run
        du = np.zeros(n_chan)  # d(out_c)/du of the current run's lookup (texel units)
        dv = np.zeros(n_chan)
        for r in range(chunks[kk, 0], chunks[kk, 1]):
            b = r // height
            tbase = (b if n_tb > 1 else 0) * tsz
            gb = b if n_gb > 1 else 0
            gbase = gb * tsz
            have = False  # a run is open: its taps below are valid and acc holds its gradient
            pu = np.nan
            pv = np.nan
            o00 = o10 = o01 = o11 = 0
            row0 = row1 = 0
            w00 = w10 = w01 = w11 = 0.0
            for p in range(r * width, (r + 1) * width + 1):
                last = p == (r + 1) * width
                u = 0.0
                v = 0.0
                dbase = p * n_chan
                if not last:
                    u = np.float64(uvf[2 * p])
                    v = np.float64(uvf[2 * p + 1])
                    if have and u == pu and v == pv:  # same lookup as the open run: extend it
                        gu = 0.0
                        gv = 0.0
                        for c in range(n_chan):
                            d = np.float64(dyf[dbase + c])
                            acc[c] += d
                            gu += d * du[c]
                            gv += d * dv[c]
                        if linear:
                            guvf[2 * p] = gu
                            guvf[2 * p + 1] = gv
                        continue
                if have and want_tex:
                    if buf == 0:
                        _scatter_taps(gflat, gbase, o00, o10, o01, o11, w00, w10, w01, w11, acc, n_chan)
                    else:
                        dirty[buf - 1, gb * th + row0] = 1
                        dirty[buf - 1, gb * th + row1] = 1
                        _scatter_taps(sflat, gbase, o00, o10, o01, o11, w00, w10, w01, w11, acc, n_chan)
                have = False
                if last:
                    break
                if linear:
                    guvf[2 * p] = 0.0
                    guvf[2 * p + 1] = 0.0
                if not (math.isfinite(u) and math.isfinite(v)):
                    continue
                nonzero = False
                for c in range(n_chan):
                    if dyf[dbase + c] != 0.0:
                        nonzero = True
                if not nonzero:  # e.g. background pixels masked out downstream: nothing to scatter
                    continue
                have = True
                pu = u
                pv = v
                if not linear:
                    ix, iy = _nearest_tap(u, v, tw, th, boundary)
                    row0 = row1 = max(iy, 0)
                    o00 = o10 = o01 = o11 = (max(iy, 0) * tw + max(ix, 0)) * n_chan
                    w00 = 1.0 if ix >= 0 else 0.0
                    w10 = w01 = w11 = 0.0
                    for c in range(n_chan):
                        acc[c] = np.float64(dyf[dbase + c])
                    continue
                o00, o10, o01, o11, m00, m10, m01, m11, fu, fv = _bilinear_setup(u, v, tw, th, boundary)
                row0 = o00 // tw
                row1 = o01 // tw
                o00 *= n_chan
                o10 *= n_chan
                o01 *= n_chan
                o11 *= n_chan
                w00 = (1.0 - fu) * (1.0 - fv) * m00
                w10 = fu * (1.0 - fv) * m10
                w01 = (1.0 - fu) * fv * m01
                w11 = fu * fv * m11
                gu = 0.0
                gv = 0.0
                for c in range(n_chan):
                    a00 = tflat[tbase + o00 + c] * m00
                    a10 = tflat[tbase + o10 + c] * m10
                    a01 = tflat[tbase + o01 + c] * m01
                    a11 = tflat[tbase + o11 + c] * m11
                    du[c] = ((1.0 - fv) * (a10 - a00) + fv * (a11 - a01)) * tw
                    dv[c] = ((1.0 - fu) * (a01 - a00) + fu * (a11 - a10)) * th
                    d = np.float64(dyf[dbase + c])
                    acc[c] = d
                    gu += d * du[c]
                    gv += d * dv[c]
                guvf[2 * p] = gu
                guvf[2 * p + 1] = gv


@njit(cache=True, inline="always")
def _get4(a, i, n):
    """``a[i : i + n]`` (n <= 4) as four float64 scalars, zero beyond ``n`` (scalars stay in registers)."""
    x0 = np.float64(a[i])
    x1 = np.float64(a[i + 1]) if n > 1 else 0.0
    x2 = np.float64(a[i + 2]) if n > 2 else 0.0
    x3 = np.float64(a[i + 3]) if n > 3 else 0.0
    return x0, x1, x2, x3


@njit(cache=True, inline="always")
def _add4(g, i, n, w, a0, a1, a2, a3):
    """``g[i : i + n] += w * (a0, a1, a2, a3)[:n]``."""
    g[i] += w * a0
    if n > 1:
        g[i + 1] += w * a1
    if n > 2:
        g[i + 2] += w * a2
    if n > 3:
        g[i + 3] += w * a3


@njit(cache=True, inline="always")
def _bilinear_d(t00, t10, t01, t11, m00, m10, m01, m11, fu, fv, tw, th):
    """d(out)/du, d(out)/dv (texel units) of one channel of a bilinear lookup."""
    a00 = t00 * m00
    a10 = t10 * m10
    a01 = t01 * m01
    a11 = t11 * m11
    return ((1.0 - fv) * (a10 - a00) + fv * (a11 - a01)) * tw, ((1.0 - fu) * (a01 - a00) + fu * (a11 - a10)) * th


@njit(cache=True, inline="always")
def _channel_d(tflat, c, q00, q10, q01, q11, m00, m10, m01, m11, fu, fv, tw, th):
    """:func:`_bilinear_d` of channel ``c`` of the four taps at flat offsets ``q00..q11`` of ``tflat``."""
    t00, t10, t01, t11 = tflat[q00 + c], tflat[q10 + c], tflat[q01 + c], tflat[q11 + c]
    return _bilinear_d(t00, t10, t01, t11, m00, m10, m01, m11, fu, fv, tw, th)


@njit(cache=True, parallel=True)
def texture_bwd4(tex, uv, dy, linear, boundary, chunks, want_tex, gtex, scratch, dirty, guv):
    """:func:`texture_bwd` for textures of at most 4 channels, with the per-channel state in scalars (registers)
    instead of small arrays, and separately compiled row loops for the shared and the private buffers (~1.4x
    faster); same arguments and results."""
    n_tb, th, tw, n_chan = tex.shape[0], tex.shape[1], tex.shape[2], tex.shape[3]
    tflat = tex.reshape(tex.size)
    gflat = gtex.reshape(gtex.size)
    uvf = uv.reshape(uv.size)
    dyf = dy.reshape(dy.size)
    guvf = guv.reshape(guv.size)  # a dummy unless linear
    dims = (uv.shape[1], uv.shape[2], n_tb, th, tw, n_chan, gtex.shape[0])
    for kk in prange(chunks.shape[0]):
        buf = chunks[kk, 2]
        r0 = chunks[kk, 0]
        r1 = chunks[kk, 1]
        if linear and boundary == 1:
            if buf == 0:
                _texture_bwd4_rows_clamp(tflat, uvf, dyf, guvf, gflat, None, dims, r0, r1, want_tex)
            else:
                _texture_bwd4_rows_clamp(
                    tflat, uvf, dyf, guvf, scratch[buf - 1], dirty[buf - 1], dims, r0, r1, want_tex
                )
        elif buf == 0:
            _texture_bwd4_rows(tflat, uvf, dyf, guvf, gflat, None, dims, r0, r1, linear, boundary, want_tex)
        else:
            _texture_bwd4_rows(
                tflat, uvf, dyf, guvf, scratch[buf - 1], dirty[buf - 1], dims, r0, r1, linear, boundary, want_tex
            )


@njit(cache=True)
def _texture_bwd4_rows(tflat, uvf, dyf, guvf, dst, dirty, dims, r_start, r_end, linear, boundary, want_tex):
    """Rows ``[r_start, r_end)`` of :func:`texture_bwd4`, scattering into ``dst`` (flat, the layout of ``gtex``);
    with ``dirty`` (not None) ``dst`` is a private buffer and the touched texel rows are flagged (compiled
    separately from the shared-buffer version)."""
    height, width, n_tb, th, tw, n_chan, n_gb = dims
    row_len = tw * n_chan
    tsz = th * row_len
    for r in range(r_start, r_end):
        b = r // height
        tbase = (b if n_tb > 1 else 0) * tsz
        gb = b if n_gb > 1 else 0
        gbase = gb * tsz
        have = False  # a run is open: its taps are valid and a0..a3 hold its summed gradient
        pu = np.nan
        pv = np.nan
        o00 = o10 = o01 = o11 = 0
        row0 = row1 = 0
        w00 = w10 = w01 = w11 = 0.0
        a0 = a1 = a2 = a3 = 0.0
        du0 = du1 = du2 = du3 = dv0 = dv1 = dv2 = dv3 = 0.0
        for p in range(r * width, (r + 1) * width + 1):
            last = p == (r + 1) * width
            u = 0.0
            v = 0.0
            d0 = d1 = d2 = d3 = 0.0
            if not last:
                u = np.float64(uvf[2 * p])
                v = np.float64(uvf[2 * p + 1])
                d0, d1, d2, d3 = _get4(dyf, p * n_chan, n_chan)
                if have and u == pu and v == pv:  # same lookup as the open run: extend it
                    a0 += d0
                    a1 += d1
                    a2 += d2
                    a3 += d3
                    if linear:
                        guvf[2 * p] = d0 * du0 + d1 * du1 + d2 * du2 + d3 * du3
                        guvf[2 * p + 1] = d0 * dv0 + d1 * dv1 + d2 * dv2 + d3 * dv3
                    continue
            if have and want_tex:
                if dirty is not None:  # flag the rows for add_dirty_rows (a store, no branch)
                    dirty[gb * th + row0] = 1
                    dirty[gb * th + row1] = 1
                _add4(dst, gbase + o00, n_chan, w00, a0, a1, a2, a3)
                if linear:
                    _add4(dst, gbase + o10, n_chan, w10, a0, a1, a2, a3)
                    _add4(dst, gbase + o01, n_chan, w01, a0, a1, a2, a3)
                    _add4(dst, gbase + o11, n_chan, w11, a0, a1, a2, a3)
            have = False
            if last:
                break
            if linear:
                guvf[2 * p] = 0.0
                guvf[2 * p + 1] = 0.0
            if not (math.isfinite(u) and math.isfinite(v)):
                continue
            if d0 == 0.0 and d1 == 0.0 and d2 == 0.0 and d3 == 0.0:
                continue  # e.g. background pixels masked out downstream: nothing to scatter
            have = True
            pu = u
            pv = v
            a0 = d0
            a1 = d1
            a2 = d2
            a3 = d3
            if not linear:
                ix, iy = _nearest_tap(u, v, tw, th, boundary)
                row0 = row1 = max(iy, 0)
                o00 = (max(iy, 0) * tw + max(ix, 0)) * n_chan
                w00 = 1.0 if ix >= 0 else 0.0
                continue
            ix0, ix1, iy0, iy1, fu, fv = _linear_taps(u, v, tw, th, boundary)
            m00, m10, m01, m11 = _tap_masks(ix0, ix1, iy0, iy1)
            row0 = max(iy0, 0)  # texel rows of the taps (private buffers), no division
            row1 = max(iy1, 0)
            o00 = row0 * tw + max(ix0, 0)
            o10 = row0 * tw + max(ix1, 0)
            o01 = row1 * tw + max(ix0, 0)
            o11 = row1 * tw + max(ix1, 0)
            o00 *= n_chan
            o10 *= n_chan
            o01 *= n_chan
            o11 *= n_chan
            w00 = (1.0 - fu) * (1.0 - fv) * m00
            w10 = fu * (1.0 - fv) * m10
            w01 = (1.0 - fu) * fv * m01
            w11 = fu * fv * m11
            q00 = tbase + o00
            q10 = tbase + o10
            q01 = tbase + o01
            q11 = tbase + o11
            du0, dv0 = _channel_d(tflat, 0, q00, q10, q01, q11, m00, m10, m01, m11, fu, fv, tw, th)
            if n_chan > 1:
                du1, dv1 = _channel_d(tflat, 1, q00, q10, q01, q11, m00, m10, m01, m11, fu, fv, tw, th)
            if n_chan > 2:
                du2, dv2 = _channel_d(tflat, 2, q00, q10, q01, q11, m00, m10, m01, m11, fu, fv, tw, th)
            if n_chan > 3:
                du3, dv3 = _channel_d(tflat, 3, q00, q10, q01, q11, m00, m10, m01, m11, fu, fv, tw, th)
            guvf[2 * p] = d0 * du0 + d1 * du1 + d2 * du2 + d3 * du3
            guvf[2 * p + 1] = d0 * dv0 + d1 * dv1 + d2 * dv2 + d3 * dv3


@njit(cache=True)
def _texture_bwd4_rows_clamp(tflat, uvf, dyf, guvf, dst, dirty, dims, r_start, r_end, want_tex):
    """:func:`_texture_bwd4_rows` for the bilinear 'clamp' mode, with each row's taps from the vectorised
    :func:`_clamp_row_taps` (same results bit for bit)."""
    height, width, n_tb, th, tw, n_chan, n_gb = dims
    tsz = th * tw * n_chan
    twf = np.float64(tw)
    thf = np.float64(th)
    o0s = np.empty(width, np.int64)
    o1s = np.empty(width, np.int64)
    dqs = np.empty(width, np.int64)
    tys = np.empty((2, width), np.int64)
    fus = np.empty(width)
    fvs = np.empty(width)
    for r in range(r_start, r_end):
        b = r // height
        tbase = (b if n_tb > 1 else 0) * tsz
        gb = b if n_gb > 1 else 0
        gbase = gb * tsz
        p0 = r * width
        _clamp_row_taps(uvf, p0, width, tw, th, n_chan, o0s, o1s, dqs, tys, fus, fvs)
        have = False  # a run is open: its taps are valid and a0..a3 hold its summed gradient
        pu = np.nan
        pv = np.nan
        o00 = o10 = o01 = o11 = 0
        row0 = row1 = 0
        w00 = w10 = w01 = w11 = 0.0
        a0 = a1 = a2 = a3 = 0.0
        du0 = du1 = du2 = du3 = dv0 = dv1 = dv2 = dv3 = 0.0
        for x in range(width + 1):
            p = p0 + x
            last = x == width
            u = 0.0
            v = 0.0
            d0 = d1 = d2 = d3 = 0.0
            if not last:
                u = np.float64(uvf[2 * p])
                v = np.float64(uvf[2 * p + 1])
                d0, d1, d2, d3 = _get4(dyf, p * n_chan, n_chan)
                if have and u == pu and v == pv:  # same lookup as the open run: extend it
                    a0 += d0
                    a1 += d1
                    a2 += d2
                    a3 += d3
                    guvf[2 * p] = d0 * du0 + d1 * du1 + d2 * du2 + d3 * du3
                    guvf[2 * p + 1] = d0 * dv0 + d1 * dv1 + d2 * dv2 + d3 * dv3
                    continue
            if have and want_tex:
                if dirty is not None:  # flag the rows for add_dirty_rows (a store, no branch)
                    dirty[gb * th + row0] = 1
                    dirty[gb * th + row1] = 1
                _add4(dst, gbase + o00, n_chan, w00, a0, a1, a2, a3)
                _add4(dst, gbase + o10, n_chan, w10, a0, a1, a2, a3)
                _add4(dst, gbase + o01, n_chan, w01, a0, a1, a2, a3)
                _add4(dst, gbase + o11, n_chan, w11, a0, a1, a2, a3)
            have = False
            if last:
                break
            guvf[2 * p] = 0.0
            guvf[2 * p + 1] = 0.0
            if not (math.isfinite(u) and math.isfinite(v)):
                continue
            if d0 == 0.0 and d1 == 0.0 and d2 == 0.0 and d3 == 0.0:
                continue  # e.g. background pixels masked out downstream: nothing to scatter
            have = True
            pu = u
            pv = v
            a0 = d0
            a1 = d1
            a2 = d2
            a3 = d3
            row0 = tys[0, x]
            row1 = tys[1, x]
            o00 = o0s[x]
            o10 = o00 + dqs[x]
            o01 = o1s[x]
            o11 = o01 + dqs[x]
            fu = fus[x]
            fv = fvs[x]
            w00 = (1.0 - fu) * (1.0 - fv) * 1.0  # the expressions of _texture_bwd4_rows (masks 1.0)
            w10 = fu * (1.0 - fv) * 1.0
            w01 = (1.0 - fu) * fv * 1.0
            w11 = fu * fv * 1.0
            q00 = tbase + o00
            q10 = tbase + o10
            q01 = tbase + o01
            q11 = tbase + o11
            du0, dv0 = _channel_d(tflat, 0, q00, q10, q01, q11, 1.0, 1.0, 1.0, 1.0, fu, fv, twf, thf)
            if n_chan > 1:
                du1, dv1 = _channel_d(tflat, 1, q00, q10, q01, q11, 1.0, 1.0, 1.0, 1.0, fu, fv, twf, thf)
            if n_chan > 2:
                du2, dv2 = _channel_d(tflat, 2, q00, q10, q01, q11, 1.0, 1.0, 1.0, 1.0, fu, fv, twf, thf)
            if n_chan > 3:
                du3, dv3 = _channel_d(tflat, 3, q00, q10, q01, q11, 1.0, 1.0, 1.0, 1.0, fu, fv, twf, thf)
            guvf[2 * p] = d0 * du0 + d1 * du1 + d2 * du2 + d3 * du3
            guvf[2 * p + 1] = d0 * dv0 + d1 * dv1 + d2 * dv2 + d3 * dv3


@njit(cache=True, parallel=True)
def add_dirty_rows(gtex, scratch, dirty):
    """``gtex[Bg, Ht, Wt, C]`` += the flagged rows of the private buffers of :func:`texture_bwd`, which are zeroed
    again on the way (the scratch buffers stay all-zero between calls); parallel by texel row."""
    n_rows = gtex.shape[0] * gtex.shape[1]
    row_len = gtex.shape[2] * gtex.shape[3]
    gflat = gtex.reshape(gtex.size)
    for row in prange(n_rows):
        base = row * row_len
        for s in range(dirty.shape[0]):
            if dirty[s, row] != 0:
                for i in range(base, base + row_len):
                    gflat[i] += scratch[s, i]
                    scratch[s, i] = 0.0


# ----------------------------------------------------------------------------------------------------------------
# Analytic antialiasing.


@njit(cache=True, inline="always")
def _same_sign(a, b) -> bool:
    return math.copysign(1.0, a) == math.copysign(1.0, b)


@njit(cache=True, parallel=True)
def antialias_prepare(pos, tri, opp, height, width, proj, sil):
    """Per-mesh precomputation for :func:`antialias_analyse`.

    Fills ``proj[Bp, V, 2]`` with pixel coordinates ``((x/w + 1) W/2, (y/w + 1) H/2)`` (NaN when w <= 0) and
    ``sil[Bp, F]`` with bit ``i`` set when edge ``i`` (opposite vertex ``i``) may be a silhouette: a mesh boundary,
    or the apex across the edge lies on the same side as the triangle's own apex (the surface folds over there).
    Triangles with a vertex behind the eye get no bits (no antialiasing).
    """
    n_pb, n_vert = pos.shape[0], pos.shape[1]
    xh = 0.5 * width
    yh = 0.5 * height
    for item in range(n_pb * n_vert):  # cheap: serial, saves a parallel region (thread wake-ups)
        pb = item // n_vert
        i = item % n_vert
        w = np.float64(pos[pb, i, 3])
        if w > 0.0:
            proj[pb, i, 0] = (pos[pb, i, 0] / w + 1.0) * xh
            proj[pb, i, 1] = (pos[pb, i, 1] / w + 1.0) * yh
        else:
            proj[pb, i, 0] = np.nan
            proj[pb, i, 1] = np.nan
    n_tri = tri.shape[0]
    for item in prange(n_pb * n_tri):
        pb = item // n_tri if n_pb > 1 else 0
        f = item - pb * n_tri
        sil[pb, f] = 0
        i0, i1, i2 = tri[f, 0], tri[f, 1], tri[f, 2]
        if min(i0, i1, i2) < 0 or max(i0, i1, i2) >= n_vert:
            continue
        x0, y0 = proj[pb, i0, 0], proj[pb, i0, 1]
        x1, y1 = proj[pb, i1, 0], proj[pb, i1, 1]
        x2, y2 = proj[pb, i2, 0], proj[pb, i2, 1]
        if not (math.isfinite(x0) and math.isfinite(x1) and math.isfinite(x2)):
            continue
        bb = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        bits = 0
        for e in range(3):
            o = opp[f, e]
            if o < 0:
                bits |= 1 << e
                continue
            ox, oy = proj[pb, o, 0], proj[pb, o, 1]
            if e == 0:
                wing = (x1 - ox) * (y2 - oy) - (x2 - ox) * (y1 - oy)
            elif e == 1:
                wing = (x2 - ox) * (y0 - oy) - (x0 - ox) * (y2 - oy)
            else:
                wing = (x0 - ox) * (y1 - oy) - (x1 - ox) * (y0 - oy)
            if _same_sign(wing, bb):  # NaN (apex behind the eye) compares as not-same-sign only by chance: fine
                bits |= 1 << e
        sil[pb, f] = bits


@njit(cache=True, inline="always")
def _crossing(ax, ay, bx, by, ds):
    """Crossing of edge (a, b) with the line t = 0, as ``ds * s``; -BIG if it does not cross. Coordinates (s, t)."""
    if _same_sign(ay, by) or by == ay:
        return -_BIG
    return ds * (ax * by - ay * bx) / (by - ay)


@njit(cache=True)
def _aa_analyse(tri, proj, sil, rast, b, pb, px, py, d):
    """Silhouette analysis of the pixel pair ((px, py), right (d=0) or below (d=1) neighbour).

    Returns ``(alpha, code)``: ``alpha`` in [-0.5, 0.5] (0 = nothing to do); ``code`` = edge index (0..2) +
    4 * (the chosen triangle is the neighbour's). Only call for pairs whose triangle ids differ.
    """
    qx = px + 1 - d
    qy = py + d
    t0 = int(rast[b, py, px, 3]) - 1
    t1 = int(rast[b, qy, qx, 3]) - 1
    tid = t0 if t0 >= 0 else t1
    if t0 >= 0 and t1 >= 0:
        tid = t0 if rast[b, py, px, 2] < rast[b, qy, qx, 2] else t1
    if tid < 0 or tid >= tri.shape[0]:
        return 0.0, 0
    bits = sil[pb, tid]
    if bits == 0:
        return 0.0, 0
    use1 = tid == t1
    cx = qx if use1 else px
    cy = qy if use1 else py
    ds = -1.0 if use1 else 1.0
    fx = cx + 0.5
    fy = cy + 0.5
    i0, i1, i2 = tri[tid, 0], tri[tid, 1], tri[tid, 2]
    # (s, t): s along the pair's axis, t across it; relative to the chosen triangle's pixel centre.
    if d == 0:
        s0, t0_, s1, t1_, s2, t2_ = (
            proj[pb, i0, 0] - fx,
            proj[pb, i0, 1] - fy,
            proj[pb, i1, 0] - fx,
            proj[pb, i1, 1] - fy,
            proj[pb, i2, 0] - fx,
            proj[pb, i2, 1] - fy,
        )
    else:
        s0, t0_, s1, t1_, s2, t2_ = (
            proj[pb, i0, 1] - fy,
            proj[pb, i0, 0] - fx,
            proj[pb, i1, 1] - fy,
            proj[pb, i1, 0] - fx,
            proj[pb, i2, 1] - fy,
            proj[pb, i2, 0] - fx,
        )
    r0 = _crossing(s1, t1_, s2, t2_, ds)
    r1 = _crossing(s2, t2_, s0, t0_, ds)
    r2 = _crossing(s0, t0_, s1, t1_, ds)
    if r2 > r0 and r2 > r1:
        di, dc, ok = 2, r2, abs(t1_ - t0_) >= abs(s1 - s0)
    elif r1 > r0:
        di, dc, ok = 1, r1, abs(t0_ - t2_) >= abs(s0 - s2)
    else:
        di, dc, ok = 0, r0, abs(t2_ - t1_) >= abs(s2 - s1)
    if not ok or not (bits >> di) & 1:
        return 0.0, 0
    eps = 0.0625  # 1/16 pixel of slack, as nvdiffrast
    if not (dc > -eps and dc < 1.0 + eps):
        return 0.0, 0
    dc = min(max(dc, 0.0), 1.0)
    return ds * (0.5 - dc), di + (4 if use1 else 0)


@njit(cache=True, parallel=True)
def _aa_rows(tri, proj, sil, rast, rows, row_pix, row_alpha, row_code, row_count):
    """Per raster row ``r = b H + y``: the pairs with a nonzero blend, packed at the start of row ``r``'s slots.

    ``row_pix[R, K]`` = ``2 x + d``, ``row_alpha``, ``row_code`` (see :func:`_aa_analyse`); ``row_count[R]`` counts
    all of a row's pairs, also those beyond the capacity ``K`` (not stored: the caller retries with ``K = 2 W``).
    """
    height, width = rast.shape[1], rast.shape[2]
    n_tri = tri.shape[0]
    for ri in prange(rows.shape[0]):
        r = rows[ri]
        b = r // height
        y = r % height
        pb = b if proj.shape[0] > 1 else 0
        n = 0
        for x in range(width):
            t = rast[b, y, x, 3]
            for d in range(2):
                if d == 0:
                    if x == width - 1:
                        continue
                    qx = x + 1
                    qy = y
                else:
                    if y == height - 1:
                        continue
                    qx = x
                    qy = y + 1
                tn = rast[b, qy, qx, 3]
                if tn == t:
                    continue
                # Cheap rejection first: the front triangle of the pair must have a silhouette candidate edge.
                t0 = int(t) - 1
                t1 = int(tn) - 1
                tid = t0 if t0 >= 0 else t1
                if t0 >= 0 and t1 >= 0:
                    tid = t0 if rast[b, y, x, 2] < rast[b, qy, qx, 2] else t1
                if tid < 0 or tid >= n_tri or sil[pb, tid] == 0:
                    continue
                a, cd = _aa_analyse(tri, proj, sil, rast, b, pb, x, y, d)
                if a != 0.0:
                    if n < row_pix.shape[1]:
                        row_pix[r, n] = 2 * x + d
                        row_alpha[r, n] = a
                        row_code[r, n] = cd
                    n += 1
        row_count[r] = n


@njit(cache=True)
def _aa_compact(row_pix, row_alpha, row_code, row_count, width, pair_pix, pair_alpha, pair_code):
    """Concatenate the per-row pairs: ``pair_pix[N] = 2 (r W + x) + d`` (flat pixel index of pixel 0, direction)."""
    n = 0
    for r in range(row_count.shape[0]):
        for i in range(row_count[r]):
            pair_pix[n] = 2 * r * width + row_pix[r, i]
            pair_alpha[n] = row_alpha[r, i]
            pair_code[n] = row_code[r, i]
            n += 1


def antialias_analyse(tri, proj, sil, rast, rows):
    """The silhouette pixel pairs of ``rast[B, H, W, 4]``: ``(pair_pix[N] int64, pair_alpha[N] float64,
    pair_code[N] int32)``; ``pair_pix = 2 * (flat pixel index b H W + y W + x) + d`` for the pair of that pixel
    with its right (d = 0) or upper-row (d = 1, row y + 1) neighbour; ``alpha`` and ``code`` as :func:`_aa_analyse`.
    """
    n_rows = rast.shape[0] * rast.shape[1]
    width = rast.shape[2]
    # A row rarely has more than a few blended pairs (silhouette crossings; more along near-horizontal silhouette
    # edges): small per-row slots keep the scratch memory small, a full-width retry covers the rest.
    for capacity in (min(AA_ROW_SLOTS, 2 * width), 2 * width):
        row_pix = np.empty((n_rows, capacity), np.int32)
        row_alpha = np.empty((n_rows, capacity), np.float64)
        row_code = np.empty((n_rows, capacity), np.int32)
        row_count = np.empty(n_rows, np.int64)
        _aa_rows(tri, proj, sil, rast, rows, row_pix, row_alpha, row_code, row_count)
        if n_rows == 0 or int(row_count.max()) <= capacity:
            break
    total = int(row_count.sum())
    pair_pix = np.empty(total, np.int64)
    pair_alpha = np.empty(total, np.float64)
    pair_code = np.empty(total, np.int32)
    _aa_compact(row_pix, row_alpha, row_code, row_count, width, pair_pix, pair_alpha, pair_code)
    return pair_pix, pair_alpha, pair_code


@njit(cache=True)
def antialias_fwd(color, pair_pix, pair_alpha, out):
    """``out`` (a copy of ``color [B, H, W, C]``) += each pair's blend ``alpha (c1 - c0)``, added to pixel 0
    (alpha > 0) or pixel 1 (alpha < 0)."""
    n_batch, height, width, n_chan = color.shape
    c2 = color.reshape(n_batch * height * width, n_chan)
    o2 = out.reshape(n_batch * height * width, n_chan)
    for i in range(pair_pix.shape[0]):
        p = pair_pix[i] >> 1
        q = p + 1 if (pair_pix[i] & 1) == 0 else p + width
        a = pair_alpha[i]
        t = p if a > 0.0 else q
        for c in range(n_chan):
            o2[t, c] += a * (c2[q, c] - c2[p, c])


@njit(cache=True)
def antialias_bwd(color, rast, pos, tri, pair_pix, pair_alpha, pair_code, dy, gcolor, gpos):
    """``gcolor`` (a copy of ``dy [B, H, W, C]``) gets the pairs' blend terms; accumulate ``gpos[Bp, V, 4]``."""
    n_batch, height, width, n_chan = color.shape
    n_pix = n_batch * height * width
    c2 = color.reshape(n_pix, n_chan)
    dy2 = dy.reshape(n_pix, n_chan)
    g2 = gcolor.reshape(n_pix, n_chan)
    xh = 0.5 * width
    yh = 0.5 * height
    for i in range(pair_pix.shape[0]):
        p = pair_pix[i] >> 1
        d = pair_pix[i] & 1
        q = p + 1 if d == 0 else p + width
        a = np.float64(pair_alpha[i])
        t = p if a > 0.0 else q
        for c in range(n_chan):
            g2[p, c] -= a * dy2[t, c]
            g2[q, c] += a * dy2[t, c]
        # Position gradients of the silhouette edge.
        if abs(a) >= 0.5:
            continue
        dd = 0.0
        for c in range(n_chan):
            dd += dy2[t, c] * (c2[q, c] - c2[p, c])
        if dd == 0.0:
            continue
        b = p // (height * width)
        y = (p // width) % height
        x = p % width
        pb = b if pos.shape[0] > 1 else 0
        gb = b if gpos.shape[0] > 1 else 0
        qx = x + 1 - d
        qy = y + d
        cd = pair_code[i]
        di = cd & 3
        use1 = cd >= 4
        cx = qx if use1 else x
        cy = qy if use1 else y
        tid = int(rast[b, cy, cx, 3]) - 1
        if tid < 0:
            continue
        va = tri[tid, (di + 1) % 3]
        vb = tri[tid, (di + 2) % 3]
        wa = np.float64(pos[pb, va, 3])
        wb = np.float64(pos[pb, vb, 3])
        fx = cx + 0.5 - xh
        fy = cy + 0.5 - yh
        # Pixel-space coordinates relative to the triangle's pixel; (s = along the pair, t = across).
        xa = pos[pb, va, 0] / wa * xh - fx
        ya = pos[pb, va, 1] / wa * yh - fy
        xb = pos[pb, vb, 0] / wb * xh - fx
        yb = pos[pb, vb, 1] / wb * yh - fy
        if d == 0:
            sa, ta, sb, tb = xa, ya, xb, yb
        else:
            sa, ta, sb, tb = ya, xa, yb, xb
        den = tb - ta
        if den == 0.0:
            continue
        cross = (sa * tb - ta * sb) / den
        # alpha = ds / 2 - cross, so dL/dcross = -dd.
        g = -dd
        g_sa = g * tb / den
        g_sb = -g * ta / den
        g_ta = g * (cross - sb) / den
        g_tb = g * (sa - cross) / den
        if d == 0:
            gxa, gya, gxb, gyb = g_sa, g_ta, g_sb, g_tb
        else:
            gxa, gya, gxb, gyb = g_ta, g_sa, g_tb, g_sb
        gpos[gb, va, 0] += gxa * xh / wa
        gpos[gb, va, 1] += gya * yh / wa
        gpos[gb, va, 3] += -(gxa * xh * pos[pb, va, 0] + gya * yh * pos[pb, va, 1]) / (wa * wa)
        gpos[gb, vb, 0] += gxb * xh / wb
        gpos[gb, vb, 1] += gyb * yh / wb
        gpos[gb, vb, 3] += -(gxb * xh * pos[pb, vb, 0] + gyb * yh * pos[pb, vb, 1]) / (wb * wb)
