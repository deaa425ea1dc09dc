"""Test helpers for the identity tests (``tests/test_identity*.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit.assets import packaged_model_file


@pytest.fixture(autouse=False)
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread during a test, then restore the setting.

    On the shared 2-core test machines, OpenMP's two worker threads spin against the other jobs and a 150x150 forward
    pass of the dlib ResNet takes ~1.7 s instead of ~20 ms; one thread keeps the identity tests fast and stable.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def dlib_models_dir() -> Path:
    """Folder of the ``face-recognition-models`` .dat files (a pinned dependency; found as ganfit finds them)."""
    return packaged_model_file("dlib_face_recognition_resnet_model_v1.dat").parent


def roc_auc(same: np.ndarray, different: np.ndarray) -> float:
    """ROC AUC for "a smaller distance means the same person": P(d_same < d_different), ties counted half."""
    same = np.asarray(same, np.float64)[:, None]
    different = np.asarray(different, np.float64)[None, :]
    return float((same < different).mean() + 0.5 * (same == different).mean())


def to_chip_tensor(chip: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[S, S, 3]`` -> ``[1, 3, S, S]`` in [0, 1]."""
    return torch.from_numpy(np.array(chip, copy=True)).permute(2, 0, 1)[None].to(dtype) / 255.0
