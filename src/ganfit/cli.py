"""Command-line entry points (the top layer): ``fit.py`` / ``ganfit-fit``.

Exit codes, kept by every ganfit command: 0 all done; 1 some inputs failed (the summary says which); 2 bad usage or
configuration (one message naming the key or file, no traceback); 130 Ctrl-C (after writing the summary of what
finished). The codes and the wrappers that keep them are in :mod:`ganfit.exit_codes`; the usage errors of a fit
(:data:`USAGE_ERRORS`) are reported before any model loads: the config is checked by Hydra against the schema, the
inputs by the job before the engine starts, a named ``texture.generator`` by :func:`check_generator`.
"""

from __future__ import annotations

import logging
import os
import sys

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ganfit.config.compose import ConfigUsageError
from ganfit.exit_codes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    describe_config_failure,
    hydra_entry,
    report_usage,
)
from ganfit.gan.default import DEFAULT_NAME, resolve_generator
from ganfit.gan.generator_file import GeneratorFileError, load_generator
from ganfit.jobs.components import job_config
from ganfit.jobs.fit_job import run_fit_job
from ganfit.jobs.inputs import InputSpecError
from ganfit.landmarks.mediapipe_backend import VERBOSE_ENV
from ganfit.threads import apply_thread_policy

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "USAGE_ERRORS", "fit_main", "fit_task"]

logger = logging.getLogger("ganfit")

USAGE_ERRORS = (
    ConfigUsageError,
    InputSpecError,
    GeneratorFileError,
    UsageError,
    FileNotFoundError,
    NotADirectoryError,
    PermissionError,
)
"""What a command reports as bad usage (one line, exit 2) when its task raises it."""


def quiet_third_party_logs(verbose: bool = False) -> None:
    """Silence mediapipe's / TF Lite's C++ log lines (absl, glog) unless ``verbose``; must run before they load.
    (What they write straight to file descriptor 2 is dropped around the graph calls, see
    :mod:`ganfit.landmarks.mediapipe_backend`; ``GANFIT_VERBOSE=1`` keeps it.)"""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from absl import logging as absl_logging  # deferred: absl comes with mediapipe, optional here

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def _wants_verbose(argv: list[str]) -> bool:
    return any(
        arg.replace(" ", "").lower() in ("verbose=true", "verbose=yes", "verbose=on", "verbose=1") for arg in argv
    )


def check_generator(cfg: DictConfig) -> None:
    """Load ``texture.generator`` once before anything else (GAN texture mode, a file the user named), so that a
    missing, foreign or mismatched file is a usage error before photos are read or models built.

    Raises:
        GeneratorFileError: the file is missing or not a ganfit generator export matching its own config.
    """
    texture = cfg.get("texture")
    if texture is None or str(texture.get("mode", "gan")) != "gan":
        return
    name = texture.get("generator")
    if name is None or str(name) in ("", DEFAULT_NAME):
        return
    load_generator(resolve_generator(name))


def fit_task(cfg: DictConfig) -> int:
    """The fit job of a composed ``fit`` config; prints the summary and returns the exit code."""
    logging.getLogger("ganfit").setLevel(logging.DEBUG if cfg.get("verbose") else logging.INFO)
    if cfg.get("verbose"):
        os.environ[VERBOSE_ENV] = "1"  # mediapipe's C++ log lines too (spawned ranks inherit it)
    apply_thread_policy(
        processes=int(cfg.processes), torch_threads=int(cfg.torch_threads) or None, verbose=bool(cfg.verbose)
    )
    try:
        # as the job reads it (a plain container onto the schema): keys added with +key=value are checked too
        job_config(OmegaConf.to_container(cfg, resolve=True))
    except OmegaConfBaseException as error:
        return report_usage(describe_config_failure(error))
    try:
        check_generator(cfg)
        summary = run_fit_job(cfg)
    except (*USAGE_ERRORS, InstantiationException) as error:
        return report_usage(error)
    print(summary.format())
    return summary.exit_code


def fit_main() -> int:
    """``python fit.py key=value ...`` (and the ``ganfit-fit`` console script)."""
    quiet_third_party_logs(_wants_verbose(sys.argv[1:]))
    return hydra_entry(fit_task, "fit")


if __name__ == "__main__":
    sys.exit(fit_main())
