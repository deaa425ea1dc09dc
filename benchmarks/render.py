"""Speed of the differentiable renderer on the ICT face area: prints a markdown table of medians.

Workload per image: ``rasterize`` (output_db off) + ``interpolate`` of the UVs through the face model's UV triangles
+ bilinear ``texture`` lookup (512x512 RGB texture) + ``antialias``; forward+backward adds the backward pass of a
weighted sum to the clip-space positions and the texture. The face (18,460 triangles) fills ~70% of the image width.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=/tmp/numba python benchmarks/render.py [--runs 20] [--no-reference]
        [--baseline] [--load 0 1 2]

Times are wall-clock medians after warm-up (and the median process CPU time, summed over threads), with
``--threads`` (default 2) torch and numba threads under the process thread policy (``ganfit.threads``: passive
OpenMP wait policy). The slow pure-PyTorch reference runs only at 256x256, batch 1.

``--baseline`` adds the side-by-side table: the shaded workload of ``benchmarks/torch_baseline.py`` (vertex normals,
rasterize, perspective-correct UV and normal interpolation, 512x512 texture, Lambert; ganfit.render with
antialiasing, the vectorised-torch z-buffer renderer without), fwd+bwd to the vertices and the texture, the two
renderers called alternately in this process. ``--load K ...`` repeats everything with K competing CPU-bound
processes (single-threaded busy loops started and stopped by this script) and reports the slowdown against the
first level.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganfit.threads import apply_thread_policy  # noqa: E402  (before torch: the wait policy must reach its pool)

apply_thread_policy()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numba  # noqa: E402
import torch  # noqa: E402
from machine import competing_load, machine_line  # noqa: E402
from torch_baseline import shaded_workload  # noqa: E402

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


def interleaved_ms(fns: list[Callable[[], object]], runs: int, warmup: int) -> list[float]:
    """Median wall milliseconds of each of ``fns``, called in turn (``a, b, a, b, ...``) so both see the same load."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
    return [statistics.median(bucket) * 1e3 for bucket in times]


def primitive_table(fm, args: argparse.Namespace) -> None:
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


def baseline_table(fm, args: argparse.Namespace, load: int, idle: dict[tuple[int, int], tuple[float, float]]) -> None:
    """Side-by-side fwd+bwd of the shaded workload; ``idle`` collects the first load level's figures."""
    first = not idle
    slow = "" if first else " ganfit slowdown | torch slowdown |"
    print(f"| competing processes | resolution | batch | ganfit.render ms | torch baseline ms | torch / ganfit |{slow}")
    print("|---|---|---|---|---|---|" + ("" if first else "---|---|"))
    for res in args.resolutions:
        for batch in args.batches:
            fns = [shaded_workload(fm, batch, (res, res), b) for b in ("ganfit", "torch")]
            ours, theirs = interleaved_ms(fns, args.runs, args.warmup)
            row = f"| {load} | {res}x{res} | {batch} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} |"
            if first:
                idle[(res, batch)] = (ours, theirs)
            else:
                i_ours, i_theirs = idle[(res, batch)]
                row += f" {ours / i_ours:.2f}x | {theirs / i_theirs:.2f}x |"
            print(row, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per configuration (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (includes numba cache loading)")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512], help="square image sizes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow pure-PyTorch reference")
    parser.add_argument("--reference-runs", type=int, default=20, help="timed runs of the reference")
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads")
    parser.add_argument("--baseline", action="store_true", help="side-by-side table with the torch baseline")
    parser.add_argument("--no-primitives", action="store_true", help="skip the primitive table (with --baseline)")
    parser.add_argument("--load", type=int, nargs="+", default=[0], help="competing CPU-bound processes, per level")
    parser.add_argument("--load-seconds", type=float, default=600.0, help="upper bound of each competing process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    apply_thread_policy(torch_threads=args.threads, numba_threads=args.threads)
    fm = load_face_model()
    print(
        f"ICT face area: {fm.triangles.shape[0]} triangles, {fm.mean.shape[0]} vertices; torch threads "
        f"{torch.get_num_threads()}, numba threads {numba.get_num_threads()} ({numba.threading_layer()}), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    idle: dict[tuple[int, int], tuple[float, float]] = {}
    for load in args.load:
        with competing_load(load, args.load_seconds):
            print(f"\n**{load} competing process(es)**: {machine_line()}\n")
            if not args.no_primitives:
                primitive_table(fm, args)
                print()
            if args.baseline:
                baseline_table(fm, args, load, idle)
            print(f"\n(at the end: {machine_line()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
