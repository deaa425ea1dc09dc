"""Helpers of the command-line tests: run the real entry points (``fit.py``, ``train_texture_gan.py``,
``python -m ganfit.X``) in a subprocess, as a user would, and read what they printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIT = REPO / "fit.py"
TRAIN = REPO / "train_texture_gan.py"

# mediapipe / TF Lite C++ start-up lines that must not reach the user's terminal
NATIVE_LOG_MARKERS = ("W0000", "I0000", "inference_feedback_manager", "absl::InitializeLog", "XNNPACK delegate")


@dataclass
class Ran:
    """A finished command: exit code and what it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def error_lines(self) -> list[str]:
        """The ``error: ...`` lines on stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


def environment(**extra: str) -> dict[str, str]:
    """The test process's environment with this checkout's sources first, W&B offline, one thread, no verbose."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("GANFIT_VERBOSE", None)
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra)
    return env


def command(kind: str, *args: str) -> list[str]:
    """``fit`` -> fit.py, ``train`` -> train_texture_gan.py, anything else -> ``python -m <kind>``."""
    if kind == "fit":
        return [sys.executable, str(FIT), *args]
    if kind == "train":
        return [sys.executable, str(TRAIN), *args]
    return [sys.executable, "-m", kind, *args]


def run(kind: str, *args: str, cwd: Path | None = None, timeout: float = 600, **env: str) -> Ran:
    """Run a command to the end; returns its :class:`Ran`."""
    proc = subprocess.run(
        command(kind, *args), cwd=cwd, env=environment(**env), capture_output=True, text=True, timeout=timeout
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def assert_usage_error(ran: Ran, *fragments: str) -> str:
    """Exit 2, exactly one ``error:`` line (containing ``fragments``), no traceback. Returns the line."""
    assert ran.code == 2, f"exit {ran.code}\n{ran.output[-3000:]}"
    assert "Traceback" not in ran.output, ran.output[-3000:]
    lines = ran.error_lines()
    assert len(lines) == 1, ran.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_until_then_interrupt(
    kind: str, *args: str, ready: Callable[[], bool], cwd: Path, wait: float = 500, timeout: float = 300
) -> Ran:
    """Start a command, wait (at most ``wait`` s) until ``ready()`` (e.g. the first photo's output exists), send it
    SIGINT (Ctrl-C) and wait (at most ``timeout`` s) for it to end. Fails if it ended before ``ready()``; a command
    still running at a deadline is killed. The command starts with SIGINT's default action even when the tests run
    as a background job (which inherits SIGINT ignored, so Python would never raise ``KeyboardInterrupt``)."""
    proc = subprocess.Popen(
        command(kind, *args), cwd=cwd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + wait
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if proc.poll() is not None or not ready():
            proc.kill()
            stdout, stderr = proc.communicate(timeout=60)
            raise AssertionError(f"not ready before it ended / in {wait} s (exit {proc.returncode})\n{stderr[-3000:]}")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    return Ran(proc.returncode, stdout, stderr)


def frl_photo(photos_root: Path, index: int, target: Path, size: int = 256) -> Path:
    """frl-london person ``index`` (neutral, frontal), downsized to ``size`` px, saved as JPEG at ``target``."""
    source = sorted((photos_root / "frl-london" / "neutral_front").glob("*.jpg"))[index]
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image.convert("RGB").resize((size, size), Image.Resampling.BOX).save(target, quality=92)
    return target
