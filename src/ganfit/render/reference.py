"""Slow, obvious pure-PyTorch reference of the four primitives, used only by tests to check the fast backend.

Written for readability, not speed: Python loops over triangles (rasterize) and over silhouette pixel pairs
(antialias). Gradients come from PyTorch autograd through plain tensor formulas, independently of the hand-written
backward kernels of the CPU backend. Same conventions as :mod:`ganfit.render.ops` (nvdiffrast's); inputs are
instanced-mode tensors (``pos [B, V, 4]``, ``attr [B or 1, V, C]``, ``tex [B or 1, Ht, Wt, C]``).
"""

from __future__ import annotations

import math

import torch


def _pixel_centres_ndc(height: int, width: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """NDC coordinates ``fx [W]``, ``fy [H]`` of the pixel centres (row 0 at NDC y = -1)."""
    fx = (torch.arange(width, dtype=dtype) + 0.5) * (2.0 / width) - 1.0
    fy = (torch.arange(height, dtype=dtype) + 0.5) * (2.0 / height) - 1.0
    return fx, fy


def _covers(e: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Edge test with the tie-break for samples exactly on the edge (inward normal (a, b) pointing +x, or +y)."""
    tie = (e == 0) & ((a > 0) | ((a == 0) & (b > 0)))
    return (e > 0) | tie


def visibility(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force z-buffer: ``(triangle_id [B, H, W] int64 (-1 = empty), zw [B, H, W] float64)``.

    For each triangle in order: the homogeneous edge functions ``e_i = (V_j x V_k) . (sx, sy, 1)`` with
    ``V = ((x + w) W/2, (y + w) H/2, w)`` in float64, covered where all have the sign of the determinant,
    depth ``z/w = sum(e_i z_i) / |det|`` clipped to [-1, 1], closer (smaller) wins, ties keep the earlier triangle.
    """
    height, width = resolution
    n_batch = pos.shape[0]
    p = pos.detach().to(torch.float64)
    ids = torch.full((n_batch, height, width), -1, dtype=torch.int64)
    zbuf = torch.full((n_batch, height, width), math.inf, dtype=torch.float64)
    for b in range(n_batch):
        for f in range(tri.shape[0]):
            v = p[b, tri[f].long()]  # [3, 4]
            w = v[:, 3]
            hv = torch.stack([(v[:, 0] + w) * (width / 2), (v[:, 1] + w) * (height / 2), w], dim=1)
            rows = torch.stack(
                [
                    torch.linalg.cross(hv[1], hv[2]),
                    torch.linalg.cross(hv[2], hv[0]),
                    torch.linalg.cross(hv[0], hv[1]),
                ]
            )  # [3 edges, (a, b, c)]
            det = float((hv[0] * rows[0]).sum())
            if det == 0 or not math.isfinite(det):
                continue
            rows = rows * math.copysign(1.0, det)
            x0, x1, y0, y1 = 0, width - 1, 0, height - 1
            in_depth = bool(((w > 0) & (v[:, 2] >= -w) & (v[:, 2] <= w)).all())
            if in_depth:  # all vertices visible: restrict to the bounding box (pure speed-up)
                sx = (v[:, 0] / w + 1) * (width / 2)
                sy = (v[:, 1] / w + 1) * (height / 2)
                x0 = max(0, math.ceil(float(sx.min()) - 0.5 - 1e-4))
                x1 = min(width - 1, math.floor(float(sx.max()) - 0.5 + 1e-4))
                y0 = max(0, math.ceil(float(sy.min()) - 0.5 - 1e-4))
                y1 = min(height - 1, math.floor(float(sy.max()) - 0.5 + 1e-4))
                if x1 < x0 or y1 < y0:
                    continue
            xs = torch.arange(x0, x1 + 1, dtype=torch.float64) + 0.5
            ys = torch.arange(y0, y1 + 1, dtype=torch.float64) + 0.5
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            e = rows[:, 0, None, None] * gx + (rows[:, 1, None, None] * gy + rows[:, 2, None, None])  # [3, h, w]
            inside = torch.ones_like(gx, dtype=torch.bool)
            for i in range(3):
                inside &= _covers(e[i], rows[i, 0], rows[i, 1])
            inside &= e.sum(0) > 0
            zw = (e * v[:, 2, None, None]).sum(0) / abs(det)
            zb = zbuf[b, y0 : y1 + 1, x0 : x1 + 1]
            win = inside & (zw >= -1) & (zw <= 1) & (zw < zb)
            zbuf[b, y0 : y1 + 1, x0 : x1 + 1] = torch.where(win, zw, zb)
            old = ids[b, y0 : y1 + 1, x0 : x1 + 1]
            ids[b, y0 : y1 + 1, x0 : x1 + 1] = torch.where(win, torch.full_like(old, f), old)
    return ids, zbuf


def rasterize(
    pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int], with_db: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`ganfit.render.rasterize` (instanced mode). Returns ``(rast, rast_db)``.

    ``rast`` (u, v) is differentiable w.r.t. ``pos`` through the barycentric formula of the visible triangle;
    ``rast_db`` (when ``with_db``) is obtained by differentiating (u, v) w.r.t. the pixel position with autograd
    (``create_graph=True``, so it is itself differentiable w.r.t. ``pos``).
    """
    height, width = resolution
    n_batch = pos.shape[0]
    ids, zbuf = visibility(pos, tri, resolution)
    b_idx, y_idx, x_idx = torch.nonzero(ids >= 0, as_tuple=True)
    t = ids[b_idx, y_idx, x_idx]
    v = pos[b_idx[:, None], tri.long()[t]]  # [N, 3, 4]
    fx_all, fy_all = _pixel_centres_ndc(height, width, pos.dtype)
    fx = fx_all[x_idx].clone().requires_grad_(with_db)
    fy = fy_all[y_idx].clone().requires_grad_(with_db)
    with torch.enable_grad():
        px = v[..., 0] - fx[:, None] * v[..., 3]
        py = v[..., 1] - fy[:, None] * v[..., 3]
        a0 = px[:, 1] * py[:, 2] - py[:, 1] * px[:, 2]
        a1 = px[:, 2] * py[:, 0] - py[:, 2] * px[:, 0]
        a2 = px[:, 0] * py[:, 1] - py[:, 0] * px[:, 1]
        total = a0 + a1 + a2
        u = a0 / total
        vv = a1 / total
        if with_db:
            # d/dX in pixels = d/dfx * (2 / W).
            du = torch.autograd.grad(u.sum(), (fx, fy), create_graph=True)
            dv = torch.autograd.grad(vv.sum(), (fx, fy), create_graph=True)
            db = torch.stack([du[0] * 2 / width, du[1] * 2 / height, dv[0] * 2 / width, dv[1] * 2 / height], -1)
    zw = zbuf[b_idx, y_idx, x_idx].to(pos.dtype)
    vals = torch.stack([u, vv, zw, (t + 1).to(pos.dtype)], dim=-1)
    rast = torch.zeros(n_batch, height, width, 4, dtype=pos.dtype).index_put((b_idx, y_idx, x_idx), vals)
    if not with_db:
        return rast, torch.zeros(n_batch, height, width, 0, dtype=pos.dtype)
    rast_db = torch.zeros(n_batch, height, width, 4, dtype=pos.dtype).index_put((b_idx, y_idx, x_idx), db)
    return rast, rast_db


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Reference of :func:`ganfit.render.interpolate` without derivatives: ``[B, H, W, C]``."""
    tid = rast[..., 3].detach().long() - 1
    covered = (tid >= 0).unsqueeze(-1)
    t = tid.clamp(min=0)
    corners = tri.long()[t]  # [B, H, W, 3]
    batch = torch.arange(rast.shape[0])[:, None, None, None] if attr.shape[0] > 1 else 0
    a = attr[batch, corners]  # [B, H, W, 3, C]
    u = rast[..., 0:1]
    v = rast[..., 1:2]
    out = u * a[..., 0, :] + v * a[..., 1, :] + (1 - u - v) * a[..., 2, :]
    return torch.where(covered, out, torch.zeros_like(out))


def texture(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear", boundary_mode: str = "wrap"):
    """Reference of :func:`ganfit.render.texture` for ``'nearest'``/``'linear'`` and wrap/clamp/zero boundaries."""
    _, th, tw, _ = tex.shape
    n_batch = uv.shape[0]
    u = uv[..., 0]
    v = uv[..., 1]
    if boundary_mode == "wrap":
        u = u - torch.floor(u).detach()
        v = v - torch.floor(v).detach()
    batch = torch.arange(n_batch)[:, None, None] if tex.shape[0] > 1 else torch.zeros(n_batch, 1, 1, dtype=torch.long)

    def fetch(ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
        valid = (ix >= 0) & (ix < tw) & (iy >= 0) & (iy < th)
        if boundary_mode == "wrap":
            ix, iy, valid = ix % tw, iy % th, torch.ones_like(valid)
        elif boundary_mode == "clamp":
            ix, iy, valid = ix.clamp(0, tw - 1), iy.clamp(0, th - 1), torch.ones_like(valid)
        val = tex[batch, iy.clamp(0, th - 1), ix.clamp(0, tw - 1)]
        return torch.where(valid.unsqueeze(-1), val, torch.zeros_like(val))

    if filter_mode == "nearest":
        return fetch(torch.floor(u * tw).long(), torch.floor(v * th).long())
    x = u * tw - 0.5
    y = v * th - 0.5
    if boundary_mode == "clamp":
        x = x.clamp(0, tw - 1)
        y = y.clamp(0, th - 1)
    x0 = torch.floor(x).detach()
    y0 = torch.floor(y).detach()
    fu = (x - x0).unsqueeze(-1)
    fv = (y - y0).unsqueeze(-1)
    ix, iy = x0.long(), y0.long()
    t00 = fetch(ix, iy)
    t10 = fetch(ix + 1, iy)
    t01 = fetch(ix, iy + 1)
    t11 = fetch(ix + 1, iy + 1)
    return (1 - fu) * (1 - fv) * t00 + fu * (1 - fv) * t10 + (1 - fu) * fv * t01 + fu * fv * t11


def _opposite_vertices(tri: torch.Tensor) -> dict[tuple[int, int], list[int]]:
    """Map from an undirected edge (min, max) to the apex vertices of the triangles that share it, in order."""
    table: dict[tuple[int, int], list[int]] = {}
    for f in range(tri.shape[0]):
        t = [int(i) for i in tri[f]]
        for i in range(3):
            a, b = t[(i + 1) % 3], t[(i + 2) % 3]
            table.setdefault((min(a, b), max(a, b)), []).append(t[i])
    return table


def antialias(color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Reference of :func:`ganfit.render.antialias` (instanced mode): a Python loop over differing pixel pairs.

    For the pair (p0, p1) (right or down neighbour) with different triangle ids: take the closer triangle (or the
    one present), work in pixel coordinates relative to the centre of its pixel, consider only silhouette edges
    (boundary edges, or edges whose neighbour's apex lies on the same side as the triangle's own apex) that cross
    the line through the two centres and are more across than along it; the crossing farthest towards the other
    pixel, ``dc`` in [0, 1] (1/16 pixel slack), gives ``alpha = ds (1/2 - dc)`` and ``c(target) += alpha (c1 - c0)``
    with target p0 when alpha > 0. alpha is a differentiable torch expression of ``pos`` (zero gradient when clamped).
    """
    n_batch, height, width, _ = color.shape
    adjacency = _opposite_vertices(tri)
    ids = rast[..., 3].detach().long() - 1
    zw = rast[..., 2].detach()
    tri_l = tri.long()
    updates: list[tuple[int, int, int, torch.Tensor]] = []
    for b in range(n_batch):
        pb = b if pos.shape[0] > 1 else 0
        for y in range(height):
            for x in range(width):
                for d in (0, 1):
                    qx, qy = x + 1 - d, y + d
                    if qx >= width or qy >= height or ids[b, y, x] == ids[b, qy, qx]:
                        continue
                    t0, t1 = int(ids[b, y, x]), int(ids[b, qy, qx])
                    t = t0 if t0 >= 0 else t1
                    if t0 >= 0 and t1 >= 0:
                        t = t0 if zw[b, y, x] < zw[b, qy, qx] else t1
                    use1 = t == t1
                    cx, cy = (qx, qy) if use1 else (x, y)
                    ds = -1.0 if use1 else 1.0
                    verts = [int(i) for i in tri_l[t]]
                    p = pos[pb, verts]  # [3, 4]
                    if bool((p[:, 3] <= 0).any()):
                        continue

                    def to_pixel(q: torch.Tensor, cx: int = cx, cy: int = cy) -> tuple[torch.Tensor, torch.Tensor]:
                        px = (q[0] / q[3] + 1) * (width / 2) - (cx + 0.5)
                        return px, (q[1] / q[3] + 1) * (height / 2) - (cy + 0.5)

                    pts = [to_pixel(p[i]) for i in range(3)]
                    xs = [float(q[0].detach()) for q in pts]
                    ys = [float(q[1].detach()) for q in pts]
                    area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (xs[2] - xs[0]) * (ys[1] - ys[0])
                    candidates = []
                    for i in range(3):
                        ia, ib = (i + 1) % 3, (i + 2) % 3
                        apexes = adjacency[(min(verts[ia], verts[ib]), max(verts[ia], verts[ib]))]
                        others = [a for a in apexes[:2] if a != verts[i]] if len(apexes) >= 2 else []
                        if apexes[:2].count(verts[i]) == 0 or not others:
                            ox, oy = xs[i], ys[i]  # no neighbour: boundary edge, always a silhouette candidate
                        else:
                            ox, oy = (float(c) for c in to_pixel(pos[pb, others[0]].detach()))
                        wing = (xs[ia] - ox) * (ys[ib] - oy) - (xs[ib] - ox) * (ys[ia] - oy)
                        silhouette = math.copysign(1, wing) == math.copysign(1, area)
                        # s = coordinate along the pair's axis, r = across it.
                        sa, ra = (xs[ia], ys[ia]) if d == 0 else (ys[ia], xs[ia])
                        sb, rb = (xs[ib], ys[ib]) if d == 0 else (ys[ib], xs[ib])
                        if math.copysign(1, ra) == math.copysign(1, rb) or ra == rb:
                            candidates.append((-math.inf, i, False))
                            continue
                        crossing = ds * (sa * rb - ra * sb) / (rb - ra)
                        candidates.append((crossing, i, silhouette and abs(rb - ra) >= abs(sb - sa)))
                    # Farthest crossing towards the other pixel; ties to the higher edge index as nvdiffrast.
                    c0, c1, c2 = (c[0] for c in candidates)
                    best = candidates[2] if (c2 > c0 and c2 > c1) else candidates[1] if c1 > c0 else candidates[0]
                    dc_value, i, usable = best
                    if not usable or not (-1 / 16 < dc_value < 1 + 1 / 16):
                        continue
                    ia, ib = (i + 1) % 3, (i + 2) % 3
                    (xa, ya), (xb, yb) = pts[ia], pts[ib]
                    sa, ra, sb, rb = (xa, ya, xb, yb) if d == 0 else (ya, xa, yb, xb)
                    dc = (ds * (sa * rb - ra * sb) / (rb - ra)).clamp(0.0, 1.0)
                    alpha = ds * (0.5 - dc)
                    tx, ty = (x, y) if float(alpha.detach()) > 0 else (qx, qy)
                    updates.append((b, ty, tx, alpha * (color[b, qy, qx] - color[b, y, x])))
    out = color.clone()
    for b, ty, tx, delta in updates:
        out = out.index_put((torch.tensor([b]), torch.tensor([ty]), torch.tensor([tx])), delta[None], accumulate=True)
    return out
