"""GANFIT fitting: ``python fit.py [image=PATH] [out=DIR] [fitting=fast|default|paper] [texture=free|gan]``.

With no arguments it fits the public-domain astronaut portrait that scikit-image ships. See docs/fitting.md.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from ganfit.fitting.cli import run_from_config


@hydra.main(version_base="1.3", config_path="conf", config_name="fit")
def main(cfg: DictConfig) -> int:
    logging.getLogger("ganfit").setLevel(logging.INFO)
    summary = run_from_config(cfg)
    print(summary.format())
    return 0 if summary.count("failed") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
