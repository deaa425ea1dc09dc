"""``perf`` profile of the CPU renderer's forward+backward with numba's compiled functions named.

numba's machine code has no symbols ``perf`` can see. This script compiles the kernels into a fresh, temporary numba
cache (kernels loaded from a cache keep no names), warms up the benchmark workload of ``benchmarks/render.py``,
records ``--calls`` forward+backward calls with ``perf record -p`` and writes ``/tmp/perf-<pid>.map`` naming every
kernel and its parallel-loop body (``kernel::gufunc...``), so that ``perf report`` attributes the samples:

    GANFIT_ASSETS=... python benchmarks/render_perf.py --res 256 --calls 1000 --out /tmp/render.perf
    perf report -i /tmp/render.perf --stdio --sort sym | head -40

Needs ``perf`` on PATH (first run: ~1 minute of compilation). Single thread by default.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-perf-")  # before numba is imported

import argparse  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import torch  # noqa: E402
from render import make_workload  # noqa: E402  (benchmarks/render.py, the same workload)

from ganfit.face_model import load_face_model  # noqa: E402
from ganfit.render import _cpu_kernels  # noqa: E402


def kernel_symbols() -> list[tuple[int, str]]:
    """``[(address, name)]`` of every compiled function of the kernels module (and the libraries they link)."""
    entries: set[tuple[int, str]] = set()
    seen: set[int] = set()

    def walk(library, owner: str) -> None:
        if id(library) in seen:
            return
        seen.add(id(library))
        for fn in library._final_module.functions:
            if fn.is_declaration:
                continue
            try:
                address = library.get_pointer_to_function(fn.name)
            except Exception:  # noqa: BLE001 - not every linked symbol is addressable
                continue
            if address:
                kind = "gufunc" if "parfor_gufunc" in fn.name else ""
                entries.add((address, f"{owner}::{kind}{fn.name[:60]}"))
        for linked in getattr(library, "_linking_libraries", []):
            walk(linked, owner)

    for name in dir(_cpu_kernels):
        dispatcher = getattr(_cpu_kernels, name)
        for cres in getattr(dispatcher, "overloads", {}).values():
            walk(cres.library, name)
    return sorted(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--res", type=int, default=256, help="square image size")
    parser.add_argument("--batch", type=int, default=1, help="batch size")
    parser.add_argument("--calls", type=int, default=1000, help="recorded forward+backward calls")
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    parser.add_argument("--out", default="render.perf", help="perf data file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    _, forward_backward = make_workload(load_face_model(), args.batch, (args.res, args.res), "cpu")
    for _ in range(3):
        forward_backward()
    perf = subprocess.Popen(["perf", "record", "-q", "-p", str(os.getpid()), "-o", args.out])
    time.sleep(1.0)  # let perf attach
    t0 = time.perf_counter()
    for _ in range(args.calls):
        forward_backward()
    elapsed = (time.perf_counter() - t0) / args.calls * 1e3
    perf.send_signal(signal.SIGINT)
    perf.wait()
    symbols = kernel_symbols()
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for i, (address, name) in enumerate(symbols):
            size = symbols[i + 1][0] - address if i + 1 < len(symbols) else 4096
            fh.write(f"{address:x} {min(size, 1 << 20):x} {name}\n")
    shutil.rmtree(os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)
    print(f"{elapsed:.2f} ms per call under perf; {len(symbols)} functions named; data in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
