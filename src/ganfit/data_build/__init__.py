"""Photos -> UV texture dataset (``python -m ganfit.data_build image=DIR out=DIR``). See docs/dataset.md."""

from ganfit.data_build.builder import BuildTask, Thresholds, run_build
from ganfit.data_build.texture import PhotoUnwrapper, UnwrapConfig, push_pull_fill

__all__ = ["BuildTask", "PhotoUnwrapper", "Thresholds", "UnwrapConfig", "push_pull_fill", "run_build"]
