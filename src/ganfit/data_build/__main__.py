"""``python -m ganfit.data_build image=DIR out=DIR [fitting=fast] [key=value ...]``: build a UV texture dataset."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf

from ganfit.data_build.builder import BuildOptions, BuildSummary, Thresholds, run_build
from ganfit.data_build.config import compose_config
from ganfit.data_build.texture import UnwrapConfig


def run_from_config(cfg: DictConfig) -> BuildSummary:
    """Run the dataset job of a composed ``conf/data_build.yaml``."""
    import torch

    from ganfit.fitting.cli import options_from_config

    if cfg.texture.mode != "free":
        raise ValueError("the dataset builder fits with texture=free (the unwrapped photo is the dataset)")
    if int(cfg.get("torch_threads", 0)) > 0 and int(cfg.processes) <= 1:
        torch.set_num_threads(int(cfg.torch_threads))
    job, fitting = options_from_config(cfg)
    options = BuildOptions(
        job=job,
        unwrap=UnwrapConfig(**OmegaConf.to_container(cfg.build, resolve=True)),  # type: ignore[arg-type]
        thresholds=Thresholds(**OmegaConf.to_container(cfg.thresholds, resolve=True)),  # type: ignore[arg-type]
    )
    return run_build(str(cfg.image), options, fitting, processes=int(cfg.processes))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_config("data_build", list(sys.argv[1:] if argv is None else argv))
    summary = run_from_config(cfg)
    print(summary.format())
    return 0 if summary.count("kept") + summary.count("skipped") > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
