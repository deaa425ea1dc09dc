"""Progressive-growing GAN networks after Karras et al. 2018 ("Progressive Growing of GANs", ICLR 2018).

Generator ``G(z [B, 512]) -> images [B, 3, R, R]`` (nominally in [-1, 1], not clamped) and discriminator
``D(images [B, 3, R, R]) -> scores [B, 1]``. Both networks are built at their full (target) resolution up front, so
the parameter set never changes while training grows (DDP and checkpoints see the same modules at every level); the
*active* level and the fade-in ``alpha`` are forward arguments:

- level ``L`` (0-based) works at resolution ``4 * 2**L``; the target level is ``log2(resolution) - 2``.
- ``alpha`` in [0, 1] blends the newest block in: at ``alpha = 0`` the output of level ``L`` is exactly the
  nearest-neighbour upsampled output of level ``L - 1`` (``alpha = 1``); at ``alpha = 1`` the new block is fully in.

Paper ingredients: equalised learning rate (weights drawn from N(0, 1) and scaled at run time by He's constant),
pixelwise feature normalisation after every generator convolution, minibatch standard deviation before the
discriminator's last block, leaky ReLU 0.2, nearest upsampling / average-pool downsampling, linear toRGB/fromRGB
1x1 convolutions. Widths follow the paper's ``nf(stage) = clamp(fmap_base / 2**stage, fmap_min, fmap_max)`` with
``stage = log2(res) - 1``; the paper's 512x512 networks are ``fmap_base=8192, fmap_max=512``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Discriminator",
    "EqualizedConv2d",
    "EqualizedLinear",
    "Generator",
    "assert_shape",
    "channels_at",
    "level_of",
    "minibatch_stddev",
    "pixel_norm",
    "resolution_of",
]


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str = "tensor") -> None:
    """Raise ``ValueError`` unless ``tensor.shape`` matches ``shape`` (``None`` entries match any size)."""
    if tensor.ndim != len(shape):
        raise ValueError(f"{name}: expected {len(shape)} dimensions {tuple(shape)}, got shape {tuple(tensor.shape)}")
    for axis, (size, want) in enumerate(zip(tensor.shape, shape, strict=True)):
        if want is not None and size != want:
            raise ValueError(f"{name}: dimension {axis} is {size}, expected {want} (shape {tuple(tensor.shape)})")


def resolution_of(level: int) -> int:
    """Resolution in pixels of growing level ``level`` (0 -> 4x4)."""
    return 4 * 2**level


def level_of(resolution: int) -> int:
    """Growing level of a power-of-two ``resolution`` >= 4; raises ``ValueError`` otherwise."""
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    return int(math.log2(resolution)) - 2


def channels_at(resolution: int, fmap_base: int, fmap_max: int, fmap_min: int = 1) -> int:
    """Feature maps at ``resolution`` per the paper: ``clamp(fmap_base / 2**(log2(res) - 1), fmap_min, fmap_max)``."""
    stage = int(math.log2(resolution)) - 1
    return int(min(max(fmap_base // 2**stage, fmap_min), fmap_max))


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixelwise feature vector normalisation: ``x / sqrt(mean_c(x^2) + eps)`` over dim 1 of ``[B, C, ...]``."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the paper's minibatch standard-deviation feature map: ``[B, C, H, W] -> [B, C + 1, H, W]``.

    Statistics are taken over groups of ``min(group_size, B)`` samples (``B`` must be divisible by it; otherwise the
    whole batch is one group), averaged over channels and pixels, and broadcast as one extra channel.
    """
    b, c, h, w = x.shape
    g = min(group_size, b)
    if b % g:
        g = b
    y = x.reshape(g, -1, c, h, w).float()  # [G, M, C, H, W]
    y = y - y.mean(dim=0, keepdim=True)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, C, H, W]
    y = y.mean(dim=(1, 2, 3))  # [M]
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)  # [B, 1, H, W]
    return torch.cat([x, y], dim=1)


class EqualizedLinear(nn.Module):
    """Fully connected layer with the equalised learning rate (weights N(0, 1), scaled by gain/sqrt(fan_in))."""

    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        gain: float = math.sqrt(2.0),  # He gain; 1 for linear outputs
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_features] -> [B, out_features]``."""
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """2-D convolution (stride 1, 'same' padding) with the equalised learning rate."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        kernel_size: int,  # odd square kernel size
        gain: float = math.sqrt(2.0),  # He gain; 1 for linear outputs (toRGB)
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_channels, H, W] -> [B, out_channels, H, W]``."""
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class _GBlock(nn.Module):
    """Generator block: nearest 2x upsample, two 3x3 convolutions, each followed by leaky ReLU and pixelnorm."""

    def __init__(self, in_channels: int, out_channels: int, use_pixelnorm: bool) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.use_pixelnorm = use_pixelnorm

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x) if self.use_pixelnorm else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _upsample2(x)
        x = self._norm(_lrelu(self.conv0(x)))
        return self._norm(_lrelu(self.conv1(x)))


class _GStem(nn.Module):
    """Generator 4x4 stem: latent -> dense 4x4 map -> 3x3 conv, each with leaky ReLU and pixelnorm."""

    def __init__(self, latent_dim: int, channels: int, use_pixelnorm: bool) -> None:
        super().__init__()
        self.channels = channels
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=math.sqrt(2.0) / 4.0)  # paper's gain
        self.conv = EqualizedConv2d(channels, channels, 3)
        self.use_pixelnorm = use_pixelnorm

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x) if self.use_pixelnorm else x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.use_pixelnorm:
            z = pixel_norm(z)
        x = self.dense(z).reshape(z.shape[0], self.channels, 4, 4)
        x = self._norm(_lrelu(x))
        return self._norm(_lrelu(self.conv(x)))


class Generator(nn.Module):
    """ProGAN generator producing ``[B, 3, R, R]`` images/UV textures from ``[B, latent_dim]`` Gaussian latents.

    ``forward(z, level=None, alpha=1.0)`` renders the given growing level (default: ``self.level``, the level it was
    trained up to, restored by :func:`ganfit.gan.generator_file.load_generator`). ``synthesize(z, resolution)`` is the
    cheap, consistent lower-resolution path for fitting: the full output area-downsampled (see docs/gan.md).
    """

    def __init__(
        self,
        resolution: int = 128,  # target output resolution (power of two >= 4)
        latent_dim: int = 512,  # size of the Gaussian latent z
        fmap_base: int = 2048,  # width rule numerator: channels = fmap_base / 2**(log2(res) - 1)
        fmap_max: int = 128,  # upper clamp on channels per block
        fmap_min: int = 1,  # lower clamp on channels per block
        use_pixelnorm: bool = True,  # pixelwise feature normalisation after each conv (paper: on)
        img_channels: int = 3,  # output channels (RGB)
    ) -> None:
        super().__init__()
        self.max_level = level_of(resolution)
        self.latent_dim = latent_dim
        self.img_channels = img_channels
        self.config: dict[str, int | bool] = {
            "resolution": resolution,
            "latent_dim": latent_dim,
            "fmap_base": fmap_base,
            "fmap_max": fmap_max,
            "fmap_min": fmap_min,
            "use_pixelnorm": use_pixelnorm,
            "img_channels": img_channels,
        }
        ch = [channels_at(resolution_of(lv), fmap_base, fmap_max, fmap_min) for lv in range(self.max_level + 1)]
        self.channels = ch
        self.stem = _GStem(latent_dim, ch[0], use_pixelnorm)
        self.blocks = nn.ModuleList(_GBlock(ch[lv - 1], ch[lv], use_pixelnorm) for lv in range(1, self.max_level + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, img_channels, 1, gain=1.0) for c in ch)
        # Level the network was trained up to (what plain forward() renders); saved in state_dict / generator.pt.
        self.register_buffer("trained_level", torch.tensor(self.max_level, dtype=torch.int64))

    @property
    def level(self) -> int:
        """Default growing level used by ``forward`` when none is given."""
        return int(self.trained_level.item())

    @level.setter
    def level(self, value: int) -> None:
        if not 0 <= value <= self.max_level:
            raise ValueError(f"level must be in [0, {self.max_level}], got {value}")
        self.trained_level.fill_(value)

    @property
    def resolution(self) -> int:
        """Output resolution of plain ``forward(z)`` (that of ``self.level``)."""
        return resolution_of(self.level)

    def forward(self, z: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Synthesise images.

        Args:
            z: ``[B, latent_dim]`` float32 latents (standard normal).
            level: growing level (resolution ``4 * 2**level``); default ``self.level``.
            alpha: fade-in weight of the newest block in [0, 1] (1 = fully in).
        Returns:
            ``[B, img_channels, R, R]`` float32, nominally in [-1, 1] (not clamped).
        """
        assert_shape(z, [None, self.latent_dim], "z")
        level = self.level if level is None else level
        if not 0 <= level <= self.max_level:
            raise ValueError(f"level must be in [0, {self.max_level}], got {level}")
        x = self.stem(z)
        if level == 0:
            return self.to_rgb[0](x)
        for lv in range(1, level):
            x = self.blocks[lv - 1](x)
        new = self.to_rgb[level](self.blocks[level - 1](x))
        if alpha >= 1.0:
            return new
        old = _upsample2(self.to_rgb[level - 1](x))
        return torch.lerp(old, new, float(alpha))

    def synthesize(self, z: torch.Tensor, resolution: int | None = None) -> torch.Tensor:
        """Full-resolution texture, area-downsampled to ``resolution`` (the consistent lower-resolution path).

        ``[B, latent_dim] -> [B, 3, r, r]`` with ``r = resolution`` (a power-of-two divisor of ``self.resolution``;
        default the full resolution). Every lower resolution is exactly the box-filtered full texture, so a fit at
        low resolution optimises the same texture that is exported at full resolution.
        """
        full = self.forward(z)
        if resolution is None or resolution == full.shape[-1]:
            return full
        if resolution > full.shape[-1] or full.shape[-1] % resolution:
            raise ValueError(f"resolution must divide the generator resolution {full.shape[-1]}, got {resolution}")
        return F.avg_pool2d(full, full.shape[-1] // resolution)


class _DBlock(nn.Module):
    """Discriminator block: two 3x3 convolutions with leaky ReLU, then 2x average-pool downsampling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv0(x))
        x = _lrelu(self.conv1(x))
        return F.avg_pool2d(x, 2)


class _DEpilogue(nn.Module):
    """Discriminator 4x4 head: minibatch stddev, 3x3 conv, dense 4x4 -> C, dense C -> 1 (linear)."""

    def __init__(self, channels: int, mbstd_group_size: int) -> None:
        super().__init__()
        self.mbstd_group_size = mbstd_group_size
        extra = 1 if mbstd_group_size > 0 else 0
        self.conv = EqualizedConv2d(channels + extra, channels, 3)
        self.dense0 = EqualizedLinear(channels * 16, channels)
        self.dense1 = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_group_size > 0:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = _lrelu(self.conv(x))
        x = _lrelu(self.dense0(x.flatten(1)))
        return self.dense1(x)


class Discriminator(nn.Module):
    """ProGAN discriminator (critic): ``[B, 3, R, R] -> [B, 1]`` raw scores, growing mirror of :class:`Generator`."""

    def __init__(
        self,
        resolution: int = 128,  # target input resolution (power of two >= 4)
        fmap_base: int = 2048,  # width rule numerator (same rule as the generator)
        fmap_max: int = 128,  # upper clamp on channels per block
        fmap_min: int = 1,  # lower clamp on channels per block
        mbstd_group_size: int = 4,  # minibatch-stddev group size (0 disables the layer)
        img_channels: int = 3,  # input channels (RGB)
    ) -> None:
        super().__init__()
        self.max_level = level_of(resolution)
        self.img_channels = img_channels
        ch = [channels_at(resolution_of(lv), fmap_base, fmap_max, fmap_min) for lv in range(self.max_level + 1)]
        self.channels = ch
        self.from_rgb = nn.ModuleList(EqualizedConv2d(img_channels, c, 1) for c in ch)
        # blocks[lv - 1] maps level lv (ch[lv], 4*2**lv px) down to level lv - 1 (ch[lv - 1]).
        self.blocks = nn.ModuleList(_DBlock(ch[lv], ch[lv - 1]) for lv in range(1, self.max_level + 1))
        self.epilogue = _DEpilogue(ch[0], mbstd_group_size)

    def forward(self, img: torch.Tensor, level: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """Score images.

        Args:
            img: ``[B, img_channels, R, R]`` with ``R = 4 * 2**level`` (level defaults to the one implied by R).
            level: growing level; must match the input resolution.
            alpha: fade-in weight of the newest block in [0, 1].
        Returns:
            ``[B, 1]`` float32 raw scores (critic values for WGAN, logits for the non-saturating loss).
        """
        level = level_of(img.shape[-1]) if level is None else level
        res = resolution_of(level)
        assert_shape(img, [None, self.img_channels, res, res], "img")
        if level > self.max_level:
            raise ValueError(f"level must be <= {self.max_level}, got {level}")
        x = _lrelu(self.from_rgb[level](img))
        if level > 0:
            x = self.blocks[level - 1](x)
            if alpha < 1.0:
                old = _lrelu(self.from_rgb[level - 1](F.avg_pool2d(img, 2)))
                x = torch.lerp(old, x, float(alpha))
            for lv in range(level - 1, 0, -1):
                x = self.blocks[lv - 1](x)
        return self.epilogue(x)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * model`` for parameters; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)
