"""insightface's IResNet (the ArcFace backbone of ``recognition/arcface_torch``) in plain PyTorch.

Same structure as insightface's ``backbones/iresnet.py`` (IResNet-18/34/50/100: block counts (2,2,2,2), (3,4,6,3),
(3,4,14,3), (3,13,30,3)): a 3x3 stem conv -> BN -> PReLU, four stages of ``IBasicBlock`` (``BN -> conv3x3 -> BN ->
PReLU -> conv3x3(stride) -> BN``, plus a 1x1-conv+BN shortcut in each stage's first, stride-2 block), then ``BN ->
flatten -> Linear(512*7*7, 512) -> BatchNorm1d``. Written from the architecture description, with two additions for
loading real exports: every conv may carry a bias and every BN may be an ``nn.Identity`` (exporters fold a BN that
follows a conv into that conv's weights and bias), and an input-normalisation buffer pair.

Chips: ``[B, 3, 112, 112]`` float RGB in [0, 1], aligned to ArcFace's 5-point template; the network sees
``(255 * x - pixel_mean) * pixel_scale`` (insightface: ``(rgb - 127.5) / 127.5``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["IBasicBlock", "IResNet", "iresnet50", "iresnet100", "IRESNET_DEPTHS"]

#: blocks per stage for insightface's named depths.
IRESNET_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5)


class IBasicBlock(nn.Module):
    """``out = bn3(conv2(prelu(bn2(conv1(bn1(x)))))) + shortcut(x)``; no activation after the addition."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: bool = False) -> None:
        super().__init__()
        self.bn1: nn.Module = _bn(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2: nn.Module = _bn(planes)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3: nn.Module = _bn(planes)
        self.downsample: nn.Sequential | None = None
        if downsample:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), _bn(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = self.downsample(x) if self.downsample is not None else x
        return out + identity


#: names of the feature taps returned by :meth:`IResNet.features`, from the bottom up.
IRESNET_FEATURE_TAPS: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4", "descriptor")


class IResNet(nn.Module):
    """IResNet: ``chips [B, 3, S, S]`` float RGB in [0, 1] -> ``[B, num_features]`` (not normalised).

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 14, 3)`` for IResNet-50.
        widths: channels per stage (insightface: ``(64, 128, 256, 512)``; the stem has ``widths[0]``).
        num_features: descriptor size (512).
        chip_size: input size S (112); the final feature map is ``S / 16``.
    """

    template = "arcface"

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 14, 3),  # blocks per stage
        widths: Sequence[int] = (64, 128, 256, 512),  # channels per stage
        num_features: int = 512,  # descriptor dimension
        chip_size: int = 112,  # input chip side in pixels
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(f"IResNet needs 4 stages, got layers={layers} widths={widths}")
        if chip_size % 16:
            raise ValueError(f"chip_size must be a multiple of 16, got {chip_size}")
        self.chip_size = chip_size
        self.descriptor_dim = num_features
        self.layers_per_stage = tuple(int(n) for n in layers)
        self.widths = tuple(int(w) for w in widths)
        # insightface's preprocessing: (rgb_0_255 - 127.5) / 127.5
        self.register_buffer("pixel_mean", torch.tensor(127.5))
        self.register_buffer("pixel_scale", torch.tensor(1.0 / 127.5))
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1: nn.Module = _bn(widths[0])
        self.prelu = nn.PReLU(widths[0])
        inplanes = widths[0]
        stages = []
        for n_blocks, planes in zip(layers, widths, strict=True):
            blocks = [IBasicBlock(inplanes, planes, stride=2, downsample=True)]
            blocks += [IBasicBlock(planes, planes) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2: nn.Module = _bn(widths[3])
        side = chip_size // 16
        self.fc = nn.Linear(widths[3] * side * side, num_features)
        self.features_bn: nn.Module = nn.BatchNorm1d(num_features, eps=1e-5)

    def blocks(self) -> list[IBasicBlock]:
        """All residual blocks in forward order."""
        return [b for stage in (self.layer1, self.layer2, self.layer3, self.layer4) for b in stage]  # type: ignore

    def preprocess(self, chips: Tensor) -> Tensor:
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be [B, 3, H, W] RGB, got shape {tuple(chips.shape)}")
        return (chips * 255.0 - self.pixel_mean.to(chips.dtype)) * self.pixel_scale.to(chips.dtype)

    def features(self, chips: Tensor) -> dict[str, Tensor]:
        """Named intermediate activations for IResNet at 112 px: ``stem [B,64,112,112]``, ``layer1 [B,64,56,56]``,
        ``layer2 [B,128,28,28]``, ``layer3 [B,256,14,14]``, ``layer4 [B,512,7,7]`` (before the final BN) and
        ``descriptor [B,512]``."""
        return self.features_normalized(self.preprocess(chips))

    def features_normalized(self, x: Tensor) -> dict[str, Tensor]:
        """:meth:`features` of an already normalised input ``x = (rgb_0_255 - pixel_mean) * pixel_scale``."""
        taps: dict[str, Tensor] = {}
        x = self.prelu(self.bn1(self.conv1(x)))
        taps["stem"] = x
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            taps[name] = x
        x = torch.flatten(self.bn2(x), 1)
        taps["descriptor"] = self.features_bn(self.fc(x))
        return taps

    def forward_normalized(self, x: Tensor) -> Tensor:
        """The descriptor of an input normalised as insightface feeds its ONNX models (what an ONNX export sees)."""
        return self.features_normalized(x)["descriptor"]

    def forward(self, chips: Tensor) -> Tensor:
        """``chips [B, 3, S, S]`` float RGB in [0, 1] -> descriptors ``[B, num_features]``."""
        return self.features(chips)["descriptor"]


def iresnet50(**kwargs: object) -> IResNet:
    """IResNet-50 (random init; load weights with :func:`ganfit.identity.arcface.load_arcface_onnx`)."""
    return IResNet(IRESNET_DEPTHS[50], **kwargs)  # type: ignore[arg-type]


def iresnet100(**kwargs: object) -> IResNet:
    """IResNet-100 (random init; load weights with :func:`ganfit.identity.arcface.load_arcface_onnx`)."""
    return IResNet(IRESNET_DEPTHS[100], **kwargs)  # type: ignore[arg-type]
