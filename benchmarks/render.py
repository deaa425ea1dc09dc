"""Speed of the differentiable renderer on the ICT face area: prints a markdown table of medians.

Workload per image: ``rasterize`` (output_db off) + ``interpolate`` of the UVs through the face model's UV triangles
+ bilinear ``texture`` lookup (512x512 RGB texture) + ``antialias``; forward+backward adds the backward pass of a
weighted sum to the clip-space positions and the texture. The face (18,460 triangles) fills ~70% of the image width.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=/tmp/numba python benchmarks/render.py [--runs 20] [--no-reference]

Times are wall-clock medians after warm-up (and the median process CPU time, summed over threads), with
``torch.set_num_threads(2)`` and numba's default thread count. The slow pure-PyTorch reference runs only at 256x256,
batch 1.
"""

from __future__ import annotations

import os

# PyTorch's OpenMP threads spin-wait between parallel regions; on a shared machine that steals the cores from the
# numba workers. Must be set before torch is imported; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numba  # noqa: E402
import torch  # noqa: E402

import ganfit.render as dr  # noqa: E402
from ganfit.face_model import load_face_model  # noqa: E402
from ganfit.render import reference  # noqa: E402
from ganfit.render.camera import frontal_camera  # noqa: E402


def timeit_ms(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds of ``fn`` over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def make_workload(fm, batch: int, resolution: tuple[int, int], backend: str, dtype=torch.float32):
    """Return ``(forward, forward_backward)`` closures rendering the mean face ``batch`` times."""
    verts = fm.mean[None].to(dtype).expand(batch, -1, -1)
    clip0 = frontal_camera(batch, resolution, dtype=dtype).to_clip(verts, resolution).contiguous()
    tri = fm.triangles.to(torch.int32)
    uv_tri = fm.uv_triangles.to(torch.int32)
    uvs = fm.uvs[None].to(dtype)
    g = torch.Generator().manual_seed(0)
    tex0 = torch.rand(batch, 512, 512, 3, generator=g, dtype=dtype)
    weight = torch.rand(batch, *resolution, 3, generator=g, dtype=dtype)
    ctx = dr.RasterizeCpuContext(output_db=False)
    topo = dr.antialias_construct_topology_hash(tri)

    def render(clip: torch.Tensor, tex: torch.Tensor) -> torch.Tensor:
        if backend == "reference":
            rast, _ = reference.rasterize(clip, tri, resolution)
            uv = reference.interpolate(uvs, rast, uv_tri)
            colour = reference.texture(tex, uv, filter_mode="linear", boundary_mode="clamp")
            return reference.antialias(colour, rast, clip, tri)
        rast, _ = dr.rasterize(ctx, clip, tri, resolution)
        uv, _ = dr.interpolate(uvs, rast, uv_tri)
        colour = dr.texture(tex, uv, filter_mode="linear", boundary_mode="clamp")
        return dr.antialias(colour, rast, clip, tri, topology_hash=topo)

    def forward() -> None:
        with torch.no_grad():
            render(clip0, tex0)

    def forward_backward() -> None:
        clip = clip0.detach().requires_grad_(True)
        tex = tex0.detach().requires_grad_(True)
        (render(clip, tex) * weight).sum().backward()

    return forward, forward_backward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (includes numba cache loading)")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512], help="square image sizes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow pure-PyTorch reference")
    parser.add_argument("--reference-runs", type=int, default=20, help="timed runs of the reference")
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    fm = load_face_model()
    print(
        f"ICT face area: {fm.triangles.shape[0]} triangles, {fm.mean.shape[0]} vertices; torch threads "
        f"{torch.get_num_threads()}, numba threads {numba.get_num_threads()} ({numba.config.THREADING_LAYER}), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}\n"
    )
    print("| backend | resolution | batch | forward ms | fwd+bwd ms | fwd+bwd ms / image | fwd+bwd CPU ms |")
    print("|---|---|---|---|---|---|---|")
    configs = [("cpu (numba)", r, b) for r in args.resolutions for b in args.batches]
    if not args.no_reference:
        configs.append(("reference (PyTorch)", 256, 1))
    for name, res, batch in configs:
        backend = "reference" if name.startswith("reference") else "cpu"
        runs = args.reference_runs if backend == "reference" else args.runs
        warmup = 1 if backend == "reference" else args.warmup
        forward, forward_backward = make_workload(fm, batch, (res, res), backend)
        fwd, _ = timeit_ms(forward, runs, warmup)
        fb, fb_cpu = timeit_ms(forward_backward, runs, warmup)
        print(
            f"| {name} | {res}x{res} | {batch} | {fwd:.1f} | {fb:.1f} | {fb / batch:.1f} | {fb_cpu:.1f} |", flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
