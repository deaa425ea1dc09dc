"""``ganfit.atomic``: an interrupted write leaves the previous file whole and no staging file; a SIGKILL mid-write
through a real writer (``torch.save`` of a large tensor via ``atomic_save``) does the same (issue 17)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganfit.atomic import TMP_PREFIX, atomic_write, atomic_write_json


def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    atomic_write_json(target, {"old": True})
    before = target.read_bytes()

    def half_then_fail(handle) -> None:  # noqa: ANN001 (a binary file)
        handle.write(b'{"new": tr')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_sigkill_during_a_large_atomic_save_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "generator.pt"
    target.write_bytes(b"old generator")
    writer = (
        "import sys, torch\n"
        "from ganfit.atomic import atomic_save\n"
        "big = torch.zeros(200_000_000, dtype=torch.uint8)\n"
        "atomic_save(sys.argv[1], lambda handle: torch.save({'w': big}, handle))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(target)])
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(f"{TMP_PREFIX}*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the writer finished before the kill"
    assert list(tmp_path.glob(f"{TMP_PREFIX}*")), "the kill did not land during the write"
    assert target.read_bytes() == b"old generator"  # never truncated or half-replaced


def test_an_atomic_write_gets_the_mode_of_a_plain_write(tmp_path: Path) -> None:
    """Staging files are 0o600 (mkstemp); the file moved into place must be readable as a plain ``open`` would
    make it (0o666 less the umask), or a shared cluster's other users could not read the results."""
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    atomic = atomic_write_json(tmp_path / "atomic.json", {})
    assert (atomic.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
