"""Per-primitive profile of the CPU renderer on the ICT face area: prints a markdown table of medians.

Times each primitive's forward and backward separately (the same workload as ``benchmarks/render.py``: rasterize,
interpolate the UVs, bilinear texture 512x512 RGB with clamp, antialias), as the median wall time and the median
process CPU time (summed over threads) of ``--runs`` calls after warm-up. Use ``--threads 1`` for stable
comparisons on a loaded machine.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=/tmp/numba python benchmarks/render_profile.py [--threads 1] [--res 256]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402

import numba  # noqa: E402
import torch  # noqa: E402
from render import timeit_ms  # noqa: E402  (benchmarks/render.py, the same timer)

import ganfit.render as dr  # noqa: E402
from ganfit.face_model import load_face_model  # noqa: E402
from ganfit.render.camera import frontal_camera  # noqa: E402


def _stages(fm, tri, uv_tri, topo, ctx, batch: int, resolution: tuple[int, int]):
    """``[(name, closure)]``: each primitive's forward, and its backward on its own detached inputs."""
    verts = fm.mean[None].expand(batch, -1, -1)
    clip = frontal_camera(batch, resolution).to_clip(verts, resolution).contiguous()
    uvs = fm.uvs[None]
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(batch, 512, 512, 3, generator=g)
    weight = torch.rand(batch, *resolution, 3, generator=g)
    rast, _ = dr.rasterize(ctx, clip, tri, resolution)
    uv, _ = dr.interpolate(uvs, rast, uv_tri)
    colour = dr.texture(tex, uv, filter_mode="linear", boundary_mode="clamp")
    g_uv = torch.rand_like(uv)
    g_rast = torch.rand_like(rast)
    clip_r = clip.clone().requires_grad_(True)
    rast_r = dr.rasterize(ctx, clip_r, tri, resolution)[0]
    rast_i = rast.clone().requires_grad_(True)
    uv_i = dr.interpolate(uvs, rast_i, uv_tri)[0]
    tex_t, uv_t = tex.clone().requires_grad_(True), uv.clone().requires_grad_(True)
    colour_t = dr.texture(tex_t, uv_t, filter_mode="linear", boundary_mode="clamp")
    colour_a, clip_a = colour.clone().requires_grad_(True), clip.clone().requires_grad_(True)
    out_a = dr.antialias(colour_a, rast, clip_a, tri, topology_hash=topo)

    def grad(out, inputs, g_out):
        return lambda: torch.autograd.grad(out, inputs, g_out, retain_graph=True)

    return [
        ("rasterize fwd", lambda: dr.rasterize(ctx, clip, tri, resolution)),
        ("interpolate fwd", lambda: dr.interpolate(uvs, rast, uv_tri)),
        ("texture fwd", lambda: dr.texture(tex, uv, filter_mode="linear", boundary_mode="clamp")),
        ("antialias fwd", lambda: dr.antialias(colour, rast, clip, tri, topology_hash=topo)),
        ("antialias bwd", grad(out_a, [colour_a, clip_a], weight)),
        ("texture bwd", grad(colour_t, [tex_t, uv_t], weight)),
        ("interpolate bwd", grad(uv_i, [rast_i], g_uv)),
        ("rasterize bwd", grad(rast_r, [clip_r], g_rast)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--res", type=int, nargs="+", default=[256], help="square image sizes")
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    fm = load_face_model()
    tri = fm.triangles.to(torch.int32)
    uv_tri = fm.uv_triangles.to(torch.int32)
    topo = dr.antialias_construct_topology_hash(tri)
    ctx = dr.RasterizeCpuContext(output_db=False)
    print(f"threads {args.threads} ({numba.config.THREADING_LAYER}); medians of {args.runs} runs\n")
    print("| res | batch | stage | wall ms | CPU ms |")
    print("|---|---|---|---|---|")
    for res in args.res:
        for batch in args.batch:
            total_w = total_c = 0.0
            for name, fn in _stages(fm, tri, uv_tri, topo, ctx, batch, (res, res)):
                w, c = timeit_ms(fn, args.runs, args.warmup)
                total_w += w
                total_c += c
                print(f"| {res} | {batch} | {name} | {w:.2f} | {c:.2f} |", flush=True)
            print(f"| {res} | {batch} | **sum** | {total_w:.2f} | {total_c:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
