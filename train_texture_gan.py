#!/usr/bin/env python
"""Stage 1 entry point: ``python train_texture_gan.py key=value ...`` trains the progressive texture GAN and exports
``generator.pt`` (the same as ``ganfit train ...``; the code, docs and exit codes are in :mod:`ganfit.gan.train`).

    python train_texture_gan.py data.root=/path/to/uv_textures
    python train_texture_gan.py -m sweep=lr_multirun data.root=DIR logger=csv
"""

from __future__ import annotations

import sys

from ganfit.gan.train import CONF_DIR, check_resume, main, train, train_task

__all__ = ["CONF_DIR", "check_resume", "main", "train", "train_task"]

if __name__ == "__main__":
    code = main()
    if code:  # no SystemExit(0): runpy-driven callers (tests, sweeps) see a normal return
        sys.exit(code)
