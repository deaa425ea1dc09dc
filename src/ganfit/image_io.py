"""Robust photo input: read any common photo file into ``uint8 [H, W, 3]`` RGB, or fail with a clear error.

Every image that enters ganfit goes through :func:`read_image`. It

- reads JPEG, PNG and WebP (and whatever else Pillow decodes: BMP, TIFF, GIF (first frame), MPO phone photos,
  AVIF, ...); HEIC/HEIF is refused with a message saying to convert it;
- honours the EXIF orientation tag (phone photos stored sideways come out upright);
- converts grayscale (``L``, ``1``), palette (``P``), CMYK and YCbCr images to RGB;
- composites images with an alpha channel (``RGBA``, ``LA``, ``PA``, palette with transparency) over a white
  background by default (``alpha="white"``), or drops the alpha channel (``alpha="drop"``: the colour stored under
  transparent pixels is kept, which may be arbitrary);
- reduces 16-bit images (``I;16`` grayscale PNG, 32-bit integer ``I``) to 8 bits (``round(v / 257)``, so 65535 -> 255);
- rejects missing, empty, corrupt, truncated and non-image files, images smaller than ``min_side`` (64 px) on the
  short side, and absurdly large images / decompression bombs (more than ``max_pixels``), each with its own
  :class:`ImageInputError` subclass whose message names the file and the problem. No raw Pillow traceback escapes.

:func:`exif_focal_factor` reads the camera's 35 mm-equivalent focal length (EXIF ``FocalLengthIn35mmFilm``, which
phones write) as focal length / the photo's longer side, the fit's start camera when it is known.

Very large photos are detected on a downscaled copy: :func:`downscale_for_detection` returns a :class:`DetectionView`
that maps coordinates of the small copy back to original-image pixels, so detectors always report results in the
pixels of the image the caller passed.

Pixel convention (project-wide): continuous coordinates, x right, y down, origin at the top-left corner of the image,
the centre of the top-left pixel at (0.5, 0.5). Resizing maps the image extent [0, W] x [0, H] onto [0, w] x [0, h],
so a point scales by ``w / W`` and ``h / H`` exactly.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DETECTION_MAX_SIDE",
    "FULL_FRAME_DIAGONAL_MM",
    "MAX_PIXELS",
    "MIN_SIDE",
    "DetectionView",
    "ImageInputError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidImageArrayError",
    "UnreadableImageError",
    "as_rgb_uint8",
    "downscale_for_detection",
    "exif_focal_factor",
    "pil_to_rgb_array",
    "read_image",
]

logger = logging.getLogger(__name__)

MIN_SIDE = 64
"""Smallest accepted short side in pixels: a face in a smaller image is too small to fit."""

MAX_PIXELS = 120_000_000
"""Largest accepted image area (pixels) by default: about 13400 x 8900. Larger is treated as a decompression bomb."""

DETECTION_MAX_SIDE = 4096
"""Images whose long side exceeds this many pixels are detected on a downscaled copy (see downscale_for_detection)."""

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo", ".avif"}


class ImageInputError(Exception):
    """Base class of every photo-input error. ``path`` is the offending file (or None for in-memory arrays)."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class ImageNotFoundError(ImageInputError):
    """The path does not exist (or is not a regular file)."""


class UnreadableImageError(ImageInputError):
    """The file exists but is empty, not an image, corrupt, truncated, or in a pixel format ganfit cannot use."""


class ImageTooSmallError(ImageInputError):
    """The image is smaller than the minimum short side (``MIN_SIDE`` = 64 px by default)."""


class ImageTooLargeError(ImageInputError):
    """The image has more pixels than allowed (an absurd size or a decompression bomb)."""


class InvalidImageArrayError(ImageInputError, ValueError):
    """An in-memory image array does not have the expected dtype/shape (uint8 [H, W, 3])."""


def read_image(
    path: str | os.PathLike[str],
    *,
    alpha: Literal["white", "drop"] = "white",  # how an alpha channel is removed (composite on white / discard)
    min_side: int = MIN_SIDE,  # reject images whose short side (after EXIF rotation) is below this, pixels
    max_pixels: int = MAX_PIXELS,  # reject images with more pixels than this (decompression-bomb guard)
) -> np.ndarray:
    """Read a photo file as an upright RGB image.

    Args:
        path: image file (JPEG, PNG, WebP, or another format Pillow decodes).
        alpha: ``"white"`` composites transparent pixels over white; ``"drop"`` discards the alpha channel.
        min_side: smallest accepted short side in pixels.
        max_pixels: largest accepted ``width * height``.

    Returns:
        ``np.ndarray`` uint8 ``[H, W, 3]`` RGB, C-contiguous, with EXIF orientation applied (H, W are the upright size).

    Raises:
        ImageNotFoundError: ``path`` does not exist or is a directory.
        UnreadableImageError: the file is empty, not an image, corrupt or truncated, or has an unsupported pixel type.
        ImageTooSmallError: the short side is below ``min_side``.
        ImageTooLargeError: the image has more than ``max_pixels`` pixels.
    """
    if alpha not in ("white", "drop"):
        raise ValueError(f"read_image: alpha must be 'white' or 'drop', got {alpha!r}")
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            # We enforce our own max_pixels limit below; Pillow's own warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                _check_size(path, width, height, min_side=min_side, max_pixels=max_pixels)
                img.load()
                img = _exif_upright(img, path)
                array = pil_to_rgb_array(img, alpha=alpha, path=path)
    except ImageInputError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{path}: image is too large to decode safely (Pillow reports a decompression bomb: {exc}). "
            "Downscale the photo before using it.",
            path,
        ) from None
    except UnidentifiedImageError:
        raise UnreadableImageError(_not_an_image_message(path), path) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise UnreadableImageError(_corrupt_message(path, exc), path) from None
    except MemoryError:
        raise ImageTooLargeError(f"{path}: not enough memory to decode this image; downscale it first.", path) from None
    return array


def pil_to_rgb_array(
    img: Image.Image,
    *,
    alpha: Literal["white", "drop"] = "white",  # how an alpha channel is removed (see read_image)
    path: Path | None = None,  # the file the image came from, named in error messages
) -> np.ndarray:
    """Convert a loaded Pillow image of any supported mode to ``uint8 [H, W, 3]`` RGB (no EXIF handling).

    16-bit and 32-bit integer grayscale is reduced with ``round(v / 257)`` clipped to [0, 255]; alpha is handled as in
    :func:`read_image`. ``path`` names the image in error messages. Raises :class:`UnreadableImageError` for modes
    that have no sensible 8-bit RGB meaning (floating point ``F``).
    """
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(img).astype(np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    source = "image" if path is None else str(path)
    if mode == "F":
        raise UnreadableImageError(
            f"{source}: floating-point ('F' mode) images are not supported; save the photo as 8- or 16-bit.", path
        )
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        if alpha == "drop":
            rgb = rgba.convert("RGB")
        else:
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode == "RGB":
        rgb = img
    else:  # L, 1, P, CMYK, YCbCr, LAB, HSV, ...
        rgb = img.convert("RGB")
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise UnreadableImageError(f"{source}: could not convert pixel mode {mode!r} to RGB", path)
    return np.ascontiguousarray(array)


def as_rgb_uint8(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Validate an in-memory image: returns it as a C-contiguous ``uint8 [H, W, 3]`` array (no copy when possible).

    Accepts ``uint8 [H, W, 3]``; ``uint8 [H, W]`` grayscale and ``[H, W, 4]`` RGBA (alpha dropped) are converted.
    Raises :class:`InvalidImageArrayError` (naming ``name``) for anything else, e.g. float images or CHW layout.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidImageArrayError(
            f"{name}: expected a numpy uint8 array [H, W, 3] (RGB), got {type(image).__name__}; "
            "use ganfit.image_io.read_image to load a file"
        )
    if image.dtype != np.uint8:
        raise InvalidImageArrayError(
            f"{name}: expected dtype uint8 (0..255) RGB, got {image.dtype}; "
            "convert with (x * 255).round().astype(np.uint8)"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageArrayError(f"{name}: expected shape [H, W, 3] (RGB, channels last), got {tuple(image.shape)}")
    if min(image.shape[:2]) < 1:
        raise InvalidImageArrayError(f"{name}: image is empty, shape {tuple(image.shape)}")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class DetectionView:
    """A (possibly downscaled) copy of an image for detection, and the map back to the original pixels.

    Attributes:
        image: uint8 ``[h, w, 3]`` RGB, the image detectors run on.
        original_size: ``(H, W)`` of the original image.
        scale_x: ``w / W`` (1.0 when not downscaled).
        scale_y: ``h / H``.
    """

    image: np.ndarray
    original_size: tuple[int, int]
    scale_x: float
    scale_y: float

    @property
    def scale(self) -> float:
        """Mean of ``scale_x`` and ``scale_y`` (they differ only by rounding of the small size)."""
        return 0.5 * (self.scale_x + self.scale_y)

    @property
    def is_downscaled(self) -> bool:
        return self.image.shape[:2] != self.original_size

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map continuous pixel coordinates ``[..., 2]`` (x, y) of ``image`` to the original image (float32)."""
        points = np.asarray(points, dtype=np.float64)
        out = points / np.array([self.scale_x, self.scale_y])
        return out.astype(np.float32)

    def box_to_original(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Map a box ``(x0, y0, x1, y1)`` in ``image`` pixels to original-image pixels."""
        x0, y0, x1, y1 = box
        return (x0 / self.scale_x, y0 / self.scale_y, x1 / self.scale_x, y1 / self.scale_y)


def downscale_for_detection(image: np.ndarray, max_side: int = DETECTION_MAX_SIDE) -> DetectionView:
    """Return a view of ``image`` (uint8 ``[H, W, 3]``) whose long side is at most ``max_side`` pixels.

    Images already small enough are returned unchanged (no copy, scale 1). Larger ones are resized with Pillow's
    area-averaging filter (``Image.Resampling.BOX``). Use :meth:`DetectionView.to_original` to map detected
    coordinates back.
    """
    image = as_rgb_uint8(image)
    if max_side < 16:
        raise ValueError(f"downscale_for_detection: max_side must be >= 16, got {max_side}")
    height, width = image.shape[:2]
    long_side = max(height, width)
    if long_side <= max_side:
        return DetectionView(image=image, original_size=(height, width), scale_x=1.0, scale_y=1.0)
    factor = max_side / long_side
    new_w = max(1, round(width * factor))
    new_h = max(1, round(height * factor))
    small = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BOX), dtype=np.uint8)
    logger.debug("downscaled %dx%d image to %dx%d for detection", width, height, new_w, new_h)
    return DetectionView(
        image=np.ascontiguousarray(small),
        original_size=(height, width),
        scale_x=new_w / width,
        scale_y=new_h / height,
    )


# ----------------------------------------------------------------------------------------------------------- helpers


FULL_FRAME_DIAGONAL_MM = 43.27
"""Diagonal of the 36 x 24 mm frame that a 35 mm-equivalent focal length refers to (the equivalence is diagonal)."""
EXIF_IFD, EXIF_FOCAL_35MM, EXIF_PIXEL_WIDTH, EXIF_PIXEL_HEIGHT = 0x8769, 41989, 40962, 40963
FOCAL_FACTOR_RANGE = (0.3, 6.0)  # plausible focal length / longer side (35 mm equivalent ~12-220 mm on 3:2)


def exif_focal_factor(path: str | os.PathLike[str]) -> float | None:
    """The photo's focal length / its longer side from EXIF ``FocalLengthIn35mmFilm``, or None when the file has no
    such tag, the value is implausible, or EXIF's pixel size has another aspect ratio than the image (a crop, after
    which the equivalent focal length no longer describes this image). Resizing keeps the ratio, so a downscaled copy
    of a phone photo still gives its camera's factor.

    The equivalence is over the diagonal: ``f / long side = f35 x diagonal / (43.27 mm x long side)`` in pixels of
    the image (36 mm / long side on a 3:2 frame; 34.6 mm on 4:3).
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            exif = img.getexif()
            sub = exif.get_ifd(EXIF_IFD)
    except (OSError, ValueError, SyntaxError):
        return None
    focal_35 = sub.get(EXIF_FOCAL_35MM)
    if not focal_35 or width <= 0 or height <= 0:
        return None
    exif_size = (sub.get(EXIF_PIXEL_WIDTH), sub.get(EXIF_PIXEL_HEIGHT))
    if all(isinstance(v, int) and v > 0 for v in exif_size):
        stored = max(exif_size) / min(exif_size)  # type: ignore[type-var, operator]
        if abs(stored / (max(width, height) / min(width, height)) - 1.0) > 0.02:
            return None
    factor = float(focal_35) * float(np.hypot(width, height)) / (FULL_FRAME_DIAGONAL_MM * max(width, height))
    low, high = FOCAL_FACTOR_RANGE
    return factor if low <= factor <= high else None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ImageNotFoundError(f"{path}: no such file (check the path; relative paths are from {Path.cwd()})", path)
    if path.is_dir():
        raise ImageNotFoundError(f"{path}: is a directory, not an image file", path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableImageError(f"{path}: cannot access the file ({exc.strerror})", path) from None
    if size == 0:
        raise UnreadableImageError(f"{path}: file is empty (0 bytes), not an image", path)
    if not os.access(path, os.R_OK):
        raise UnreadableImageError(f"{path}: permission denied, cannot read the file", path)


def _check_size(path: Path, width: int, height: int, *, min_side: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: image is {width}x{height} = {width * height / 1e6:.1f} megapixels, more than the allowed "
            f"{max_pixels / 1e6:.1f} (absurd size or decompression bomb); "
            "downscale it first (e.g. to 4000 px on the long side; ganfit detects faces at 4096 px at most)",
            path,
        )
    if min(width, height) < min_side:
        raise ImageTooSmallError(
            f"{path}: image is too small ({width}x{height} px); the short side must be at least {min_side} px "
            "for face fitting",
            path,
        )


def _exif_upright(img: Image.Image, path: Path) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception as exc:  # broken EXIF must not make a good photo unreadable
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", path, exc)
        return img
    return img if upright is None else upright


def _not_an_image_message(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".heic", ".heif"}:
        return (
            f"{path}: HEIC/HEIF photos are not supported (Pillow cannot decode them without the pillow-heif plugin); "
            "export or convert the photo to JPEG or PNG"
        )
    if suffix in _IMAGE_SUFFIXES:
        return (
            f"{path}: not a valid image: the name ends in '{path.suffix}' but the content is not a recognised image "
            "format (corrupt file, or another kind of file renamed)"
        )
    return f"{path}: not an image file Pillow can read (unrecognised format); use JPEG, PNG or WebP"


def _corrupt_message(path: Path, exc: BaseException) -> str:
    text = str(exc)
    if "truncated" in text.lower():
        return f"{path}: image file is truncated (incomplete download or copy?); re-export or re-copy the photo"
    return f"{path}: image file is corrupt and cannot be decoded ({type(exc).__name__}: {text})"
