"""What a second numba thread buys for one parallel region of pure compute, idle and beside competing processes.

The renderer's kernels are many short OpenMP regions (a fwd+bwd at 256x256, batch 1, is 16 launches of 0.05-2.6
ms). This benchmark isolates one such region: a ``prange`` over as many equal blocks of arithmetic as threads (no
memory traffic to speak of), calibrated to ``--work-us`` microseconds on one thread, timed with 1 and with N numba
threads **interleaved call by call** under each ``--load`` level (K single-threaded busy loops, started and stopped
here). It prints the median wall microseconds, the speedup of N threads over 1, and the process CPU microseconds per
call, with the CPU model, core count and load.

    NUMBA_CACHE_DIR=... python benchmarks/parallel_region.py [--work-us 100 1000 5000] [--load 0 1 2] [--runs 200]

It answers "is the renderer's slowdown under load the renderer's, or the machine's?": where N threads are no faster
than one beside K busy processes, no static-split parallel kernel can keep its idle speedup there (docs/render.md,
"Session 14").
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganfit.threads import apply_thread_policy  # noqa: E402  (before numba's pool starts: the wait policy)

apply_thread_policy()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from machine import competing_load, machine_line  # noqa: E402
from numba import njit, prange  # noqa: E402


@njit(cache=True, parallel=True)
def _region(data: np.ndarray, reps: int, blocks: int) -> float:
    """``blocks`` equal parallel blocks, each ``reps`` passes of multiply-adds over its slice of ``data``."""
    n = data.shape[0]
    partial = np.zeros(blocks)
    for blk in prange(blocks):
        lo, hi = blk * n // blocks, (blk + 1) * n // blocks
        acc = 0.0
        for _ in range(reps):
            for i in range(lo, hi):
                acc += data[i] * 1.000001
        partial[blk] = acc
    return partial.sum()


def _median_us(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def calibrate(data: np.ndarray, blocks: int, target_us: float) -> int:
    """Passes that make one region take about ``target_us`` on one thread (idle)."""
    numba.set_num_threads(1)
    _region(data, 1, blocks)
    per_pass = _median_us(lambda: _region(data, 10, blocks), 30) / 10
    return max(1, round(target_us / per_pass))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-us", type=float, nargs="+", default=[100.0, 1000.0, 5000.0], help="serial work")
    parser.add_argument("--load", type=int, nargs="+", default=[0, 1, 2], help="competing processes, per level")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per thread count and level")
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS, help="N (against 1)")
    args = parser.parse_args(argv)
    threads = max(2, min(args.threads, numba.config.NUMBA_NUM_THREADS))
    data = np.ones(100_000)
    reps = {w: calibrate(data, threads, w) for w in args.work_us}
    print(f"one parallel region of {threads} static blocks, 1 vs {threads} numba threads ({numba.threading_layer()})\n")
    print(
        f"| competing processes | serial work µs | 1 thread µs | {threads} threads µs | speedup "
        f"| CPU µs, 1 / {threads} |"
    )
    print("|---|---|---|---|---|---|")
    heads = []
    for load in args.load:
        with competing_load(load):
            heads.append(f"{load} competing: {machine_line()}")
            for work, passes in reps.items():
                walls: dict[int, list[float]] = {1: [], threads: []}
                cpus: dict[int, list[float]] = {1: [], threads: []}
                for count in (1, threads):  # warm-up
                    numba.set_num_threads(count)
                    _region(data, passes, threads)
                for _ in range(args.runs):
                    for count in (1, threads):
                        numba.set_num_threads(count)
                        t0, c0 = time.perf_counter(), time.process_time()
                        _region(data, passes, threads)
                        walls[count].append(time.perf_counter() - t0)
                        cpus[count].append(time.process_time() - c0)
                one, many = (statistics.median(walls[c]) * 1e6 for c in (1, threads))
                cpu_one, cpu_many = (statistics.mean(cpus[c]) * 1e6 for c in (1, threads))
                cells = f"{work:.0f} | {one:.0f} | {many:.0f} | {one / many:.2f}x | {cpu_one:.0f} / {cpu_many:.0f}"
                print(f"| {load} | {cells} |", flush=True)
    print("\n" + "\n".join(heads))
    numba.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
