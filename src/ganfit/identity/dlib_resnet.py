"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a PyTorch module.

Architecture (dlib ``examples/dnn_face_recognition_ex.cpp``, bottom to top): input ``input_rgb_image_sized<150>`` ->
``con<32,7,7,2,2>`` (no padding) -> affine -> relu -> ``max_pool<3,3,2,2>`` -> level4: 3 residual blocks of 32 ->
level3: a down-sampling block to 64 + 3 blocks -> level2: down to 128 + 2 blocks -> level1: down to 256 + 2 blocks ->
level0: down to 256 -> global average pool -> ``fc_no_bias<128>``. Each block is ``conv3x3(stride) -> affine -> relu ->
conv3x3 -> affine``, added to the block's input (average-pooled 2x2/2 in a down-sampling block) and passed through a
relu. 29 convolutions in total. The trained network uses ``affine`` layers (a per-channel scale and shift: batch norm
frozen into constants); :meth:`DlibResNet.from_dat` folds each into the convolution before it (and dlib's input scaling
into the first one), and the network runs in channels-last memory format: the same function, about a quarter less time
per forward + backward on CPU (``benchmarks/identity.py``).

Two dlib details matter for exact agreement:

- dlib's ``add_prev`` adds tensors of different shapes by zero-padding the smaller one at the end of each dimension
  (channels, rows, columns). In the down-sampling blocks the skip path has fewer channels than the block, and at
  level1/level0 the strided 3x3 convolution (no padding) yields a smaller map than the 2x2 average pool (8 -> 3 vs 4;
  4 -> 1 vs 2): the result is the larger size with the smaller operand in the top-left corner.
- the input layer computes ``(pixel - average_colour) / 256`` with pixels in 0..255 and channels in RGB order.

Pixel/chip convention: ``chips [B, 3, 150, 150]`` float in [0, 1], RGB, as produced by ``dlib.get_face_chip(img, shape,
size=150, padding=0.25)`` / :func:`ganfit.identity.align.warp_to_chip` with the dlib template.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganfit.assets import AssetNotFoundError, packaged_model_file
from ganfit.identity.dlib_reader import DlibLayer, DlibNetwork, read_dlib_network

__all__ = [
    "DLIB_MODEL_FILENAME",
    "DlibResNet",
    "IdentityWeightsNotFoundError",
    "default_dlib_model_path",
    "zero_padded_add",
]

log = logging.getLogger(__name__)

DLIB_MODEL_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"


class IdentityWeightsNotFoundError(FileNotFoundError):
    """An identity network's weight file is missing."""


def default_dlib_model_path() -> Path:
    """Locate ``dlib_face_recognition_resnet_model_v1.dat`` in the installed PyPI package ``face-recognition-models``.

    Raises:
        IdentityWeightsNotFoundError: the package or the file is missing.
    """
    try:
        return packaged_model_file(DLIB_MODEL_FILENAME)
    except AssetNotFoundError as error:
        raise IdentityWeightsNotFoundError(f"{error} (or pass dat_path=/path/to/{DLIB_MODEL_FILENAME})") from error


def zero_padded_add(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``tt::add`` for tensors of different shapes: the result has the larger size in every dimension and each
    operand is zero-padded at the end (channels, then rows, then columns).

    Args:
        a, b: float ``[B, C, H, W]`` tensors with the same ``B``.
    Returns:
        ``[B, max(Ca, Cb), max(Ha, Hb), max(Wa, Wb)]``.
    """
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class DlibConv(nn.Conv2d):
    """A dlib ``con_`` layer: cross-correlation with symmetric zero padding and dlib's output size
    ``1 + (in + 2*pad - k) / stride`` (C++ integer division, truncating towards zero). That formula only differs from
    PyTorch's when the padded input is smaller than the kernel; then the missing rows/columns read as zeros.
    """

    def forward(self, x: Tensor) -> Tensor:
        kh, kw = self.kernel_size
        ph, pw = self.padding  # type: ignore[misc]
        extra_h = max(0, kh - (x.shape[2] + 2 * ph))
        extra_w = max(0, kw - (x.shape[3] + 2 * pw))
        if extra_h or extra_w:
            x = F.pad(x, (0, extra_w, 0, extra_h))
        return super().forward(x)


class Affine(nn.Module):
    """dlib ``affine_`` in CONV_MODE: ``y = gamma[c] * x + beta[c]`` (frozen batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


@torch.no_grad()
def fold_affine(conv: nn.Conv2d, affine: Affine) -> None:
    """Fold ``affine`` into ``conv`` in place: ``gamma * (W x + b) + beta = (gamma W) x + (gamma b + beta)``."""
    assert conv.bias is not None
    conv.weight.mul_(affine.gamma.view(-1, 1, 1, 1))
    conv.bias.mul_(affine.gamma).add_(affine.beta)


class ResidualBlock(nn.Module):
    """``relu(add_prev(block(x), skip(x)))`` with ``block = affine(conv3x3(relu(affine(conv3x3_stride(x)))))``;
    ``skip`` is the identity, or a 2x2/2 average pool in a down-sampling block (dlib ``ares`` / ``ares_down``)."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.downsample = downsample
        # dlib's default padding: nr/2 for stride 1, 0 otherwise (the file stores it; the loader checks it).
        self.conv1 = DlibConv(in_channels, out_channels, 3, stride=stride, padding=0 if downsample else 1)
        self.affine1 = Affine(out_channels)
        self.conv2 = DlibConv(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(zero_padded_add(y, skip))


# (name, in_channels, out_channels, number of plain blocks after the optional down-sampling block, downsample)
_LEVELS: tuple[tuple[str, int, int, int, bool], ...] = (
    ("level4", 32, 32, 3, False),
    ("level3", 32, 64, 3, True),
    ("level2", 64, 128, 2, True),
    ("level1", 128, 256, 2, True),
    ("level0", 256, 256, 0, True),
)

#: names of the feature taps returned by :meth:`DlibResNet.features`, from the bottom up.
DLIB_FEATURE_TAPS: tuple[str, ...] = (
    "stem",
    "pool",
    "level4",
    "level3",
    "level2",
    "level1",
    "level0",
    "pooled",
    "descriptor",
)


class DlibResNet(nn.Module):
    """dlib's 29-layer face-recognition ResNet: ``chips [B, 3, 150, 150]`` float32 RGB in [0, 1] -> ``[B, 128]``.

    The descriptor is dlib's raw output (not L2-normalised); dlib's decision threshold on the Euclidean distance
    between two descriptors is 0.6. Build with :meth:`from_dat` to get the pretrained weights.
    """

    chip_size: int = 150
    descriptor_dim: int = 128
    template: str = "dlib"  # alignment template (ganfit.identity.align)

    def __init__(self) -> None:
        super().__init__()
        # dlib input layer: (255 * x - avg) / 256, per RGB channel; avg read from the file.
        self.register_buffer("average_rgb", torch.tensor([122.782, 117.001, 104.298]), persistent=True)
        self.conv1 = DlibConv(3, 32, 7, stride=2, padding=0)
        self.affine1 = Affine(32)
        levels: dict[str, nn.Sequential] = {}
        for name, cin, cout, n_plain, down in _LEVELS:
            blocks: list[nn.Module] = []
            if down:
                blocks.append(ResidualBlock(cin, cout, downsample=True))
            for _ in range(n_plain):
                blocks.append(ResidualBlock(cout, cout, downsample=False))
            levels[name] = nn.Sequential(*blocks)
        self.levels = nn.ModuleDict(levels)
        self.fc = nn.Linear(256, 128, bias=False)
        self.folded = False  # affines and input scaling folded into the convolutions (fold())

    # ------------------------------------------------------------------ forward
    def preprocess(self, chips: Tensor) -> Tensor:
        """``[B, 3, S, S]`` RGB in [0, 1] -> dlib's normalised input ``(255 x - avg) / 256``."""
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be [B, 3, H, W] RGB, got shape {tuple(chips.shape)}")
        if self.folded:  # conv1 does the scaling
            return chips.contiguous(memory_format=torch.channels_last)
        avg = self.average_rgb.to(chips.dtype).view(1, 3, 1, 1)
        return (chips * 255.0 - avg) / 256.0

    @torch.no_grad()
    def fold(self) -> DlibResNet:
        """Fold every affine layer into the convolution before it and the input scaling ``(255 x - avg) / 256`` into
        the first convolution (exact: it has no padding), replace the affines by identities, and switch to
        channels-last memory format (faster convolutions on CPU). The same function to float rounding (1e-6 of the
        descriptor). Call after loading the weights; returns ``self``."""
        if self.folded:
            return self
        # (DlibConv's extra zero padding of inputs smaller than a kernel would then pad raw pixels, not normalised
        # ones: only chips under 7 px, far below the 150 px the network takes.)
        scale = 255.0 / 256.0
        shift = (self.average_rgb / 256.0).view(1, 3, 1, 1)  # conv(scale x - shift) = scale conv(x) - conv_W(shift)
        assert self.conv1.bias is not None
        self.conv1.bias.sub_((self.conv1.weight * shift).sum(dim=(1, 2, 3)))
        self.conv1.weight.mul_(scale)
        fold_affine(self.conv1, self.affine1)
        self.affine1 = nn.Identity()  # type: ignore[assignment]
        for level in self.levels.values():
            for block in level:
                assert isinstance(block, ResidualBlock)
                fold_affine(block.conv1, block.affine1)
                fold_affine(block.conv2, block.affine2)
                block.affine1, block.affine2 = nn.Identity(), nn.Identity()  # type: ignore[assignment]
        self.folded = True
        return self.to(memory_format=torch.channels_last)  # type: ignore[return-value]

    def features(self, chips: Tensor) -> dict[str, Tensor]:
        """All named intermediate activations (for content/moment losses), bottom to top.

        Args:
            chips: ``[B, 3, 150, 150]`` float RGB in [0, 1] (other sizes run but the network was trained on 150).
        Returns:
            dict with ``stem [B,32,72,72]`` (after conv1/affine/relu), ``pool [B,32,35,35]``, ``level4 [B,32,35,35]``,
            ``level3 [B,64,17,17]``, ``level2 [B,128,8,8]``, ``level1 [B,256,4,4]``, ``level0 [B,256,2,2]``,
            ``pooled [B,256]`` (global average) and ``descriptor [B,128]``.
        """
        taps: dict[str, Tensor] = {}
        x = F.relu(self.affine1(self.conv1(self.preprocess(chips))))
        taps["stem"] = x
        x = F.max_pool2d(x, 3, 2)
        taps["pool"] = x
        for name, level in self.levels.items():
            x = level(x)
            taps[name] = x
        pooled = x.mean(dim=(2, 3))
        taps["pooled"] = pooled
        taps["descriptor"] = self.fc(pooled)
        return taps

    def forward(self, chips: Tensor) -> Tensor:
        """``chips [B, 3, 150, 150]`` float RGB in [0, 1] -> descriptors ``[B, 128]`` (dlib's scale, not normalised)."""
        return self.features(chips)["descriptor"]

    # ------------------------------------------------------------------ loading
    def _computational_layers(self) -> list[tuple[str, nn.Module | None]]:
        """The dlib computational layers in file order (bottom up), as (family, module or None)."""
        seq: list[tuple[str, nn.Module | None]] = [
            ("con", self.conv1),
            ("affine", self.affine1),
            ("relu", None),
            ("max_pool", None),
        ]
        for level in self.levels.values():
            for block in level:
                assert isinstance(block, ResidualBlock)
                seq += [
                    ("con", block.conv1),
                    ("affine", block.affine1),
                    ("relu", None),
                    ("con", block.conv2),
                    ("affine", block.affine2),
                ]
                if block.downsample:
                    seq.append(("avg_pool", None))
                seq += [("add_prev", None), ("relu", None)]
        seq += [("avg_pool", None), ("fc", self.fc)]
        return seq

    def _expected_wrappers(self) -> str:
        """dlib's wrapper sequence top-down: L = add_layer, t = tag/skip, I = bottom add_layer over the input."""
        bottom_up = "ILLL"
        for level in self.levels.values():
            for block in level:
                bottom_up += "tLLLLLttLLL" if block.downsample else "tLLLLLLL"
        bottom_up += "LL"
        return bottom_up[::-1]

    @torch.no_grad()
    def load_dlib_network(self, net: DlibNetwork) -> None:
        """Copy weights from a parsed dlib file, checking every layer type, shape and setting against this
        architecture.

        Raises:
            ValueError: the file holds a different network.
        """
        codes = {"layer": "L", "tag_or_skip": "t", "input_layer": "I"}
        found = "".join(codes[w] for w in net.wrappers)
        if found != self._expected_wrappers():
            raise ValueError("the dlib file's layer structure does not match dlib_face_recognition_resnet_model_v1")
        if net.input.kind != "input_rgb_image_sized" or net.input.config.get("nr") != 150:
            raise ValueError(f"unexpected input layer {net.input.kind} {net.input.config}")
        expected = self._computational_layers()
        if len(expected) != len(net.layers):
            raise ValueError(f"expected {len(expected)} layers, the file has {len(net.layers)}")
        for i, ((family, module), layer) in enumerate(zip(expected, net.layers, strict=True)):
            if layer.family != family:
                raise ValueError(f"layer {i}: expected {family}, the file has {layer.kind}")
            self._load_layer(i, module, layer)
        cfg = net.input.config
        self.average_rgb.copy_(torch.tensor([cfg["avg_red"], cfg["avg_green"], cfg["avg_blue"]]))

    @staticmethod
    def _load_layer(i: int, module: nn.Module | None, layer: DlibLayer) -> None:
        cfg = layer.config
        if isinstance(module, DlibConv):
            if not cfg.get("use_bias", 1) or cfg.get("use_relu", 0):
                raise ValueError(f"layer {i}: convolution without bias or with a fused relu is not this network")
            filters = torch.from_numpy(layer.arrays["filters"])
            settings = (cfg["stride_y"], cfg["stride_x"], cfg["padding_y"], cfg["padding_x"])
            if filters.shape != module.weight.shape or settings != (*module.stride, *module.padding):  # type: ignore
                raise ValueError(
                    f"layer {i} ({layer.kind}): filters {tuple(filters.shape)} stride/padding {settings} "
                    f"do not match {tuple(module.weight.shape)} {module.stride} {module.padding}"
                )
            module.weight.copy_(filters)
            assert module.bias is not None
            module.bias.copy_(torch.from_numpy(layer.arrays["biases"]))
        elif isinstance(module, Affine):
            if cfg["mode"] != 0 or layer.arrays["gamma"].shape != tuple(module.gamma.shape):
                raise ValueError(f"layer {i}: affine of shape {layer.arrays['gamma'].shape} mode {cfg['mode']}")
            module.gamma.copy_(torch.from_numpy(layer.arrays["gamma"]))
            module.beta.copy_(torch.from_numpy(layer.arrays["beta"]))
        elif isinstance(module, nn.Linear):
            weights = torch.from_numpy(layer.arrays["weights"])  # [num_inputs, num_outputs], y = x @ W
            if weights.T.shape != module.weight.shape or cfg["bias_mode"] != 1:
                raise ValueError(f"layer {i}: fc weights {tuple(weights.shape)} bias_mode {cfg['bias_mode']}")
            module.weight.copy_(weights.T)
        elif layer.family == "max_pool":
            if (cfg["nr"], cfg["nc"], cfg["stride_y"], cfg["padding_y"]) != (3, 3, 2, 0):
                raise ValueError(f"layer {i}: unexpected max_pool {cfg}")
        elif layer.family == "avg_pool":
            if (cfg["nr"], cfg["stride_y"], cfg["padding_y"]) not in ((2, 2, 0), (0, 1, 0)):
                raise ValueError(f"layer {i}: unexpected avg_pool {cfg}")

    @classmethod
    def from_dat(cls, path: str | Path | None = None) -> DlibResNet:
        """The pretrained network, read from dlib's ``.dat`` file with :mod:`ganfit.identity.dlib_reader`.

        Args:
            path: the ``.dat`` file; default: the one in the installed ``face-recognition-models`` package.
        Returns:
            the network in eval mode (float32, CPU).
        """
        path = Path(path) if path is not None else default_dlib_model_path()
        if not path.is_file():
            raise IdentityWeightsNotFoundError(f"dlib face-recognition weights not found: {path}")
        model = cls()
        model.load_dlib_network(read_dlib_network(path))
        log.debug("loaded dlib face-recognition ResNet from %s", path)
        return model.fold().eval()
