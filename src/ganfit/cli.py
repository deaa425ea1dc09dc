"""Command-line entry points (the top layer): ``fit.py`` / ``ganfit-fit``.

Exit codes, kept by every ganfit command: 0 all done; 1 some inputs failed (the summary says which); 2 bad usage or
configuration (one message naming the key or file, no traceback); 130 Ctrl-C (after writing the summary of what
finished).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from ganfit.config.compose import CONF_DIR, ConfigUsageError
from ganfit.jobs.fit_job import run_fit_job
from ganfit.jobs.inputs import InputSpecError
from ganfit.threads import apply_thread_policy

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
logger = logging.getLogger("ganfit")

USAGE_ERRORS = (ConfigUsageError, InputSpecError, FileNotFoundError, NotADirectoryError, PermissionError)


def quiet_third_party_logs(verbose: bool = False) -> None:
    """Silence mediapipe's / TF Lite's C++ log lines (absl, glog) unless ``verbose``; must run before they load."""
    if verbose:
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def _wants_verbose(argv: list[str]) -> bool:
    return any(arg.replace(" ", "").lower() in ("verbose=true", "verbose=yes", "verbose=1") for arg in argv)


def _hydra_entry(task: Callable[[DictConfig], int], config_name: str) -> int:
    """Run ``task`` under ``hydra.main`` (multirun, sweeps and output folders as Hydra does them) and turn its
    outcome into an exit code: Hydra exits 1 for a composition error before the task starts — that is usage (2)."""
    started = {"task": False}

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> None:
        started["task"] = True
        code = task(cfg)
        if code:
            sys.exit(code)

    try:
        main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code == 1 and not started["task"]:
            return EXIT_USAGE
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def fit_task(cfg: DictConfig) -> int:
    """The fit job of a composed ``fit`` config; prints the summary and returns the exit code."""
    logging.getLogger("ganfit").setLevel(logging.DEBUG if cfg.get("verbose") else logging.INFO)
    apply_thread_policy(
        processes=int(cfg.processes), torch_threads=int(cfg.torch_threads) or None, verbose=bool(cfg.verbose)
    )
    try:
        summary = run_fit_job(cfg)
    except (*USAGE_ERRORS, InstantiationException) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(summary.format())
    return summary.exit_code


def fit_main() -> int:
    """``python fit.py key=value ...`` (and the ``ganfit-fit`` console script)."""
    quiet_third_party_logs(_wants_verbose(sys.argv[1:]))
    return _hydra_entry(fit_task, "fit")


if __name__ == "__main__":
    sys.exit(fit_main())
