"""Console-script launchers: apply the thread policy, then import the command.

The passive OpenMP wait policy has to be in the environment before torch's OpenMP runtime loads, i.e. before the
first ``import torch`` (see :mod:`ganfit.threads`), so these are the only functions that import the command modules
inside their body (the documented exception to the top-level-imports rule).
"""

from __future__ import annotations

from ganfit.threads import apply_thread_policy


def fit() -> int:
    """``fit.py`` / ``ganfit-fit``."""
    apply_thread_policy()
    from ganfit.cli import fit_main

    return fit_main()
