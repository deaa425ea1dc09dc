"""The process thread policy (``ganfit.threads``): arithmetic, environment handling, and that the OpenMP wait policy
reaches the OpenMP runtimes (checked in fresh subprocesses through GNU OpenMP's own ``OMP_DISPLAY_ENV`` report)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from ganfit import threads

_POLICY_ENV = ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", threads.MARKER_ENV, "NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS")
_CLEAN_SLATE = {"_env_user": None, "_set_here": frozenset()}


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No thread-policy or launcher variables, and the module's once-per-process state reset (restored after)."""
    for key in (*_POLICY_ENV, "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(key, raising=False)
    for name, value in _CLEAN_SLATE.items():
        monkeypatch.setattr(threads, name, value)
    return monkeypatch


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with no policy variables (plus ``env``); returns stdout and stderr."""
    clean = {k: v for k, v in os.environ.items() if k not in _POLICY_ENV}
    clean.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _spin_counts(stderr: str) -> list[tuple[int, int]]:
    """``(position, GOMP_SPINCOUNT)`` of every GNU OpenMP runtime that reported its settings (one per libgomp copy,
    when it is loaded)."""
    return [(m.start(), int(m.group(1))) for m in re.finditer(r"GOMP_SPINCOUNT = '(\d+)'", stderr)]


def _require_gnu_omp_layer(stderr: str) -> None:
    if "layer=omp" not in stderr:
        pytest.skip("numba's threading layer here is not GNU OpenMP: no OMP_DISPLAY_ENV report to read")


# ------------------------------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize(("cores", "processes", "expected"), [(2, 1, 2), (2, 2, 1), (2, 3, 1), (16, 3, 5), (1, 4, 1)])
def test_threads_per_process(cores: int, processes: int, expected: int) -> None:
    assert threads.threads_per_process(cores, processes) == expected


def test_available_cores_follow_affinity_and_slurm(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert threads.available_cores() == 6
    fresh_env.setenv("SLURM_CPUS_PER_TASK", "4")
    assert threads.available_cores() == 4


def test_node_processes_from_argument_and_launchers(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.setattr(os, "cpu_count", lambda: 8)
    assert threads.node_processes(1, cores=8) == 1
    assert threads.node_processes(3, cores=8) == 3
    fresh_env.setenv("SLURM_NTASKS_PER_NODE", "4(x2)")
    assert threads.node_processes(1, cores=8) == 4  # tasks share the whole machine
    assert threads.node_processes(1, cores=2) == 1  # tasks already pinned to their own cores: no second division
    fresh_env.setenv("LOCAL_WORLD_SIZE", "2")  # Fabric / torchrun ranks take precedence
    assert threads.node_processes(1, cores=8) == 2
    assert threads.node_processes(4, cores=8) == 4  # an explicit count wins


def test_wait_env_set_once_and_user_values_kept(fresh_env: pytest.MonkeyPatch) -> None:
    fresh_env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    user = threads.set_wait_policy_env()
    assert user == {"OMP_WAIT_POLICY": "ACTIVE"}
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays
    assert os.environ["KMP_BLOCKTIME"] == "0"  # the unset one is filled in
    assert os.environ[threads.MARKER_ENV] == "KMP_BLOCKTIME"
    fresh_env.setenv("KMP_BLOCKTIME", "200")  # changed afterwards: a second call does not touch it
    assert threads.set_wait_policy_env() == {"OMP_WAIT_POLICY": "ACTIVE"}
    assert os.environ["KMP_BLOCKTIME"] == "200"


def test_inherited_policy_env_is_not_taken_for_the_users(fresh_env: pytest.MonkeyPatch) -> None:
    """A child process (ddp_spawn) inherits the parent's policy variables; they are still the policy's, not a user's."""
    fresh_env.setenv("OMP_WAIT_POLICY", "PASSIVE")
    fresh_env.setenv("KMP_BLOCKTIME", "0")
    fresh_env.setenv(threads.MARKER_ENV, "KMP_BLOCKTIME,OMP_WAIT_POLICY")
    assert threads.set_wait_policy_env() == {}


# --------------------------------------------------------------------------------------- real OpenMP runtimes
_REPORT = (
    "import json, sys, numba; "
    "print(f'layer={numba.threading_layer()}', file=sys.stderr, flush=True); "
    "print(json.dumps({k: v for k, v in vars(policy).items()}))"
)


def test_policy_before_torch_reaches_both_openmp_pools() -> None:
    code = "from ganfit.threads import apply_thread_policy\npolicy = apply_thread_policy()\n" + _REPORT
    result = _run(code, OMP_DISPLAY_ENV="verbose")
    _require_gnu_omp_layer(result.stderr)
    policy = json.loads(result.stdout.strip().splitlines()[-1])
    assert policy["wait_policy"] == "PASSIVE" and policy["wait_policy_source"] == "policy"
    assert policy["torch_wait_policy"] == "PASSIVE" and policy["numba_wait_policy"] == "PASSIVE"
    spins = _spin_counts(result.stderr)
    assert len(spins) == 2, result.stderr  # torch's libgomp and numba's (the system one)
    assert all(count == 0 for _, count in spins), result.stderr  # PASSIVE: no spinning in either


def test_policy_after_torch_still_reaches_numba_before_its_first_use() -> None:
    code = (
        "import sys, torch\nprint('MARK torch loaded', file=sys.stderr, flush=True)\n"
        "from ganfit.threads import apply_thread_policy\npolicy = apply_thread_policy()\n" + _REPORT
    )
    result = _run(code, OMP_DISPLAY_ENV="verbose")
    _require_gnu_omp_layer(result.stderr)
    mark = result.stderr.index("MARK torch loaded")
    spins = _spin_counts(result.stderr)
    torch_pool = [count for pos, count in spins if pos < mark]
    numba_pool = [count for pos, count in spins if pos > mark]
    assert torch_pool and torch_pool[0] > 0, result.stderr  # loaded before the policy: GNU's default spinning
    assert numba_pool == [0], result.stderr  # numba's runtime is loaded later and reads PASSIVE
    policy = json.loads(result.stdout.strip().splitlines()[-1])
    assert policy["torch_wait_policy"] == "as loaded" and policy["numba_wait_policy"] == "PASSIVE"


def test_user_wait_policy_is_kept_and_reaches_numba() -> None:
    code = "from ganfit.threads import apply_thread_policy\npolicy = apply_thread_policy()\n" + _REPORT
    result = _run(code, OMP_DISPLAY_ENV="verbose", OMP_WAIT_POLICY="ACTIVE")
    _require_gnu_omp_layer(result.stderr)
    policy = json.loads(result.stdout.strip().splitlines()[-1])
    assert policy["wait_policy"] == "ACTIVE" and policy["wait_policy_source"] == "user"
    assert all(count > 10**9 for _, count in _spin_counts(result.stderr)), result.stderr  # ACTIVE spins "forever"


def test_apply_is_idempotent_and_derives_counts_from_processes() -> None:
    code = (
        "import json, logging, os\nlogging.basicConfig(level=logging.INFO)\n"
        "os.sched_getaffinity = lambda pid: {0, 1}\n"
        "from ganfit.threads import apply_thread_policy\n"
        "a = apply_thread_policy(verbose=True)\nenv = dict(os.environ)\nb = apply_thread_policy(verbose=True)\n"
        "c = apply_thread_policy(processes=2, verbose=True)\nd = apply_thread_policy(processes=2, numba_threads=2)\n"
        "import numba, torch\n"
        "print(json.dumps({'same': a == b, 'env_same': env == dict(os.environ), 'a': [a.torch_threads, "
        "a.numba_threads], 'c': [c.processes, c.torch_threads, c.numba_threads], 'd': [d.torch_threads, "
        "d.numba_threads], 'now': [torch.get_num_threads(), numba.get_num_threads()]}))"
    )
    result = _run(code, NUMBA_NUM_THREADS="2")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["same"] and out["env_same"]
    assert out["a"] == [2, 2]  # 2 cores, 1 process
    assert out["c"] == [2, 1, 1]  # 2 processes share them
    assert out["d"] == [1, 2] and out["now"] == [1, 2]  # explicit numba count wins; counts re-applied each call
    assert result.stderr.count("thread policy:") == 2  # verbose: logged once per distinct policy
