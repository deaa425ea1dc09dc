"""Thread policy for the whole process: how many threads torch and numba use, and how idle OpenMP threads wait.

The fitting runs two thread pools one after the other: PyTorch's intra-op OpenMP pool (its own ``libgomp`` copy)
and the CPU renderer's numba pool (numba's ``omp`` threading layer, the system ``libgomp``). Left alone, each sizes
itself to every core of the machine and spins between parallel regions (GNU OpenMP busy-waits ~300,000 iterations
after each region), so on a shared machine, or with ``processes=N`` fitting processes on one node, the threads of
one pool spin on the cores the other pool (or another process) needs. The policy (:func:`apply_thread_policy`):

* **Cores**: those this process may run on (``os.sched_getaffinity``, also capped by ``SLURM_CPUS_PER_TASK``),
  divided among the fitting processes on the node: ``processes`` when given (> 1), else the launcher's
  ``LOCAL_WORLD_SIZE`` (torchrun, Lightning Fabric / DDP ranks), else ``SLURM_NTASKS_PER_NODE`` when the affinity
  mask is not already restricted to this task. ``per_process = max(1, cores // processes)``.
* **torch** uses ``per_process`` intra-op threads (``torch.set_num_threads``), **numba** as many
  (``numba.set_num_threads``, capped by its pool size ``NUMBA_NUM_THREADS``). The pools take turns (a renderer call
  never runs inside a torch parallel region), so they never hold more than ``per_process`` busy threads together.
  numba's count is per calling thread: a worker thread that renders calls :meth:`ThreadPolicy.apply_to_thread`.
* **Wait policy**: ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep at once; GNU ``GOMP_SPINCOUNT`` 0) and
  ``KMP_BLOCKTIME=0`` (the same for Intel / LLVM OpenMP, ``libiomp5``/``libomp``, which some conda builds of torch
  and numba use; GNU OpenMP ignores it), each unless the user set it. An OpenMP runtime reads these **once, when it
  is loaded**: torch's when ``torch`` is first imported, numba's when numba starts its threads (the first parallel
  kernel, or the first ``numba.get_num_threads()`` / ``set_num_threads()``). So the policy must be applied before
  ``import torch`` to reach torch's pool; applied later it still reaches numba's (``ThreadPolicy.torch_wait_policy``
  then says ``"as loaded"``). Child processes (``ddp_spawn``) inherit the environment.
* **Threading layer**: numba's ``omp`` layer first (then ``workqueue``, ``tbb``) unless ``NUMBA_THREADING_LAYER``
  is set (:func:`prefer_numba_threading_layer`; the CPU renderer calls it too). With one thread a parallel region of
  the ``omp`` layer costs ~3 us against ~50 us for ``workqueue``.

Explicit ``torch_threads`` / ``numba_threads`` override the derived counts. Calling the function again re-applies
the counts (cheap); the environment is only ever set once and never overrides a user's value. With ``verbose`` the
policy is logged (INFO, logger ``ganfit.threads``) once per distinct policy.

This module sits at the bottom of the package: it imports nothing from ganfit, and imports torch and numba only
inside :func:`apply_thread_policy`, after the environment is set.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Environment the policy sets when the user has not: what idle OpenMP threads do (sleep at once).
WAIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
#: Names of the variables this process's policy set itself (so a spawned child can tell them from the user's).
MARKER_ENV = "GANFIT_THREAD_POLICY_SET"
NUMBA_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]

_env_user: dict[str, str] | None = None  # the user's own values of WAIT_ENV, recorded on the first application
_set_here: frozenset[str] = frozenset()  # the WAIT_ENV variables this process set itself
_pool_verdict: dict[str, str] = {}  # per pool ("torch", "numba"): the wait policy it loaded with, decided once
_logged: set[tuple] = set()


@dataclass(frozen=True)
class ThreadPolicy:
    """The thread counts and wait policy applied to this process.

    Attributes:
        cores: CPU cores this process may run on (affinity mask, SLURM cap).
        processes: fitting processes sharing those cores (``processes`` argument or the launcher's environment).
        per_process: ``max(1, cores // processes)``, the derived thread count.
        torch_threads: ``torch.get_num_threads()`` after applying.
        numba_threads: ``numba.get_num_threads()`` of the calling thread after applying.
        wait_policy: ``OMP_WAIT_POLICY`` in effect for OpenMP runtimes loaded from now on.
        wait_policy_source: ``"policy"`` (set here), ``"user"`` (already in the environment).
        torch_wait_policy: what torch's OpenMP pool uses: ``wait_policy``, or ``"as loaded"`` when torch was
            imported before the policy set the environment (its pool keeps what it read then).
        numba_wait_policy: the same for numba's pool (``"as loaded"`` when its threads had started before).
        numba_layer: numba's threading layer (``omp``, ``workqueue``, ``tbb``).
    """

    cores: int
    processes: int
    per_process: int
    torch_threads: int
    numba_threads: int
    wait_policy: str
    wait_policy_source: str
    torch_wait_policy: str
    numba_wait_policy: str
    numba_layer: str

    def describe(self) -> str:
        """One line for logs."""
        return (
            f"thread policy: {self.cores} cores / {self.processes} process(es) -> torch {self.torch_threads}, "
            f"numba {self.numba_threads} ({self.numba_layer}) threads; OMP_WAIT_POLICY={self.wait_policy} "
            f"({self.wait_policy_source}; torch pool: {self.torch_wait_policy}, numba pool: {self.numba_wait_policy})"
        )

    def apply_to_thread(self) -> None:
        """Set numba's (per-thread) thread count in the calling thread, e.g. a worker thread that renders."""
        import numba

        numba.set_num_threads(min(self.numba_threads, numba.config.NUMBA_NUM_THREADS))


def available_cores() -> int:
    """CPU cores this process may run on: the affinity mask, capped by ``SLURM_CPUS_PER_TASK`` when set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    slurm = _env_int("SLURM_CPUS_PER_TASK")
    if slurm:
        cores = min(cores, slurm)
    return max(1, cores)


def node_processes(processes: int = 1, cores: int | None = None) -> int:
    """Fitting processes sharing this process's cores: ``processes`` when > 1, else the launcher's rank count on
    this node (``LOCAL_WORLD_SIZE``; ``SLURM_NTASKS_PER_NODE`` only when the affinity mask is the whole machine,
    i.e. the tasks were not already given their own cores), else 1."""
    if processes > 1:
        return processes
    local = _env_int("LOCAL_WORLD_SIZE")
    if local and local > 1:
        return local
    slurm = _env_int("SLURM_NTASKS_PER_NODE")
    total = os.cpu_count() or 1
    if slurm and slurm > 1 and (cores if cores is not None else available_cores()) >= total:
        return slurm
    return 1


def threads_per_process(cores: int, processes: int) -> int:
    """``max(1, cores // processes)``: whole cores per process, at least one."""
    return max(1, cores // max(1, processes))


def set_wait_policy_env() -> dict[str, str]:
    """Put ``WAIT_ENV`` into ``os.environ`` where the user has not set the variables; returns the user's own values.

    Idempotent: the user's values are recorded on the first call (a later call, or a spawned child that inherited
    the variables from a parent's policy, tells them apart through ``GANFIT_THREAD_POLICY_SET``).
    """
    global _env_user, _set_here
    if _env_user is None:
        ours = set(filter(None, os.environ.get(MARKER_ENV, "").split(",")))
        _env_user = {k: os.environ[k] for k in WAIT_ENV if k in os.environ and k not in ours}
        _set_here = frozenset(k for k in WAIT_ENV if k not in os.environ)
        for key in _set_here:
            os.environ[key] = WAIT_ENV[key]
        os.environ[MARKER_ENV] = ",".join(sorted(ours | set(_set_here)))
    return dict(_env_user)


def prefer_numba_threading_layer() -> None:
    """Make numba pick its ``omp`` layer first (then ``workqueue``, ``tbb``) unless ``NUMBA_THREADING_LAYER`` is set.

    Effective only before numba starts its threads; needs no numba thread start itself.
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    import numba

    if _numba_threads_started():
        return
    numba.config.THREADING_LAYER_PRIORITY = list(NUMBA_LAYER_PRIORITY)
    numba.config.THREADING_LAYER = "default"


def apply_thread_policy(
    processes: int = 1,
    torch_threads: int | None = None,
    numba_threads: int | None = None,
    verbose: bool = False,
) -> ThreadPolicy:
    """Apply the process's thread policy (see the module docstring) and return it.

    Args:
        processes: fitting processes sharing this machine's cores (``processes=N`` of ``fit.py``); 1 (default) also
            reads the launcher's ``LOCAL_WORLD_SIZE`` / ``SLURM_NTASKS_PER_NODE``.
        torch_threads: torch intra-op threads; None or <= 0: ``cores // processes``.
        numba_threads: numba threads of the calling thread; None or <= 0: the same derived count.
        verbose: log the policy (INFO) once per distinct policy.
    Returns:
        The applied :class:`ThreadPolicy`.

    Call it before ``import torch`` for the wait policy to reach torch's OpenMP pool (e.g. at the top of an entry
    point); calling it again later (with the job's ``processes``) only re-sets the thread counts.
    """
    torch_was_loaded = "torch" in sys.modules
    numba_started = "numba" in sys.modules and _numba_threads_started()
    user = set_wait_policy_env()
    wait = os.environ.get("OMP_WAIT_POLICY", "")
    # A pool loaded before this process put OMP_WAIT_POLICY into the environment kept what it read then.
    late = "OMP_WAIT_POLICY" in _set_here
    _pool_verdict.setdefault("torch", "as loaded" if late and torch_was_loaded else wait)
    _pool_verdict.setdefault("numba", "as loaded" if late and numba_started else wait)
    prefer_numba_threading_layer()

    import numba
    import torch

    cores = available_cores()
    n_proc = node_processes(processes, cores)
    per_process = threads_per_process(cores, n_proc)
    want_torch = torch_threads if torch_threads and torch_threads > 0 else per_process
    want_numba = numba_threads if numba_threads and numba_threads > 0 else per_process
    if torch.get_num_threads() != want_torch:
        torch.set_num_threads(want_torch)
    numba.set_num_threads(max(1, min(want_numba, numba.config.NUMBA_NUM_THREADS)))

    policy = ThreadPolicy(
        cores=cores,
        processes=n_proc,
        per_process=per_process,
        torch_threads=torch.get_num_threads(),
        numba_threads=numba.get_num_threads(),
        wait_policy=wait,
        wait_policy_source="user" if "OMP_WAIT_POLICY" in user else "policy",
        torch_wait_policy=_pool_verdict["torch"],
        numba_wait_policy=_pool_verdict["numba"],
        numba_layer=str(numba.threading_layer()),
    )
    key = tuple(sorted(vars(policy).items()))
    if verbose and key not in _logged:
        _logged.add(key)
        logger.info("%s", policy.describe())
    return policy


def _numba_threads_started() -> bool:
    from numba.np.ufunc import parallel

    return bool(getattr(parallel, "_is_initialized", False))


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    head = value.split("(")[0].split(",")[0]  # SLURM_NTASKS_PER_NODE may read "2(x3)"
    return int(head) if head.isdigit() else None
