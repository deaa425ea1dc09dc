"""Shared helpers of the benchmarks: a description of the machine and its load, and competing CPU-bound processes.

``with competing_load(k, seconds):`` starts ``k`` single-threaded busy-loop processes (each stops by itself after
``seconds`` or when the benchmark's process dies, and is killed when the block ends), so a benchmark can time itself
"with 1 and with 2 other jobs running" without help from outside.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator

# Ends after ``seconds`` or as soon as its parent (the benchmark) is gone, whichever comes first.
_BURNER = (
    "import os, time\nparent = os.getppid()\nend = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end and os.getppid() == parent:\n    sum(range(1000))\n"
)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine_line() -> str:
    """``CPU model, N cores (M usable), load average a / b / c, date UTC`` for the head of a table."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable), {load_line()}, {stamp}"


@contextlib.contextmanager
def competing_load(k: int, seconds: float = 600.0) -> Iterator[list[subprocess.Popen]]:
    """Run ``k`` CPU-bound Python busy loops beside the block (each ends by itself after ``seconds``)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", _BURNER.format(seconds=float(seconds))], stdin=subprocess.DEVNULL)
        for _ in range(max(0, k))
    ]
    try:
        if procs:
            time.sleep(0.5)  # let them start spinning
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
