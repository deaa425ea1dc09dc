"""Where a second thread starts to pay in the CPU renderer: each primitive's forward and backward (the workload of
``benchmarks/render.py``) at growing image sizes, with 1 and 2 numba threads **interleaved call by call** in one
process, so both see the same machine load. Prints the median wall time of each and their ratio, with the CPU model,
core count and load average.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=... python benchmarks/render_breakeven.py [--res 16 32 64 128 256] [--runs 40]

The renderer's small-launch rule (``ganfit.render._cpu.MIN_PARALLEL_PIXELS``) runs launches below a pixel count on
the calling thread alone; ``--no-serial-rule`` switches the rule off so that "2 threads" really means two.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import torch  # noqa: E402
from machine import machine_line  # noqa: E402
from render_profile import _stages  # noqa: E402

import ganfit.render as dr  # noqa: E402
from ganfit.face_model import load_face_model  # noqa: E402
from ganfit.render import _cpu  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, nargs="+", default=[16, 32, 48, 64, 96, 128, 192, 256])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=40, help="timed calls per thread count (interleaved)")
    parser.add_argument("--no-serial-rule", action="store_true", help="disable the small-launch rule")
    args = parser.parse_args(argv)
    if args.no_serial_rule:
        _cpu.MIN_PARALLEL_PIXELS = 0
    torch.set_num_threads(1)
    numba.set_num_threads(2)
    fm = load_face_model()
    tri = fm.triangles.to(torch.int32)
    uv_tri = fm.uv_triangles.to(torch.int32)
    topo = dr.antialias_construct_topology_hash(tri)
    ctx = dr.RasterizeCpuContext(output_db=False)
    print(machine_line())
    print(f"numba layer {numba.threading_layer()}, small-launch rule {_cpu.MIN_PARALLEL_PIXELS} pixels\n")
    print("| res | stage | 1 thread ms | 2 threads ms | 2 / 1 |")
    print("|---|---|---|---|---|")
    for res in args.res:
        numba.set_num_threads(2)  # the work split (chunks, row orders) is that of 2 threads in both columns
        stages = _stages(fm, tri, uv_tri, topo, ctx, args.batch, (res, res))
        for name, fn in stages:
            times: dict[int, list[float]] = {1: [], 2: []}
            for i in range(args.runs + 3):
                for n in (1, 2):
                    numba.set_num_threads(n)
                    t0 = time.perf_counter()
                    fn()
                    if i >= 3:
                        times[n].append(time.perf_counter() - t0)
            one, two = (statistics.median(times[n]) * 1e3 for n in (1, 2))
            print(f"| {res} | {name} | {one:.3f} | {two:.3f} | {two / one:.2f} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
