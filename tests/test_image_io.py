"""Tests for ganfit.image_io: every fixture is generated here in tmp_path (nothing read from ../shared)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit.image_io import (
    DetectionView,
    ImageInputError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageArrayError,
    UnreadableImageError,
    as_rgb_uint8,
    downscale_for_detection,
    exif_focal_factor,
    read_image,
)


def _gradient(width: int, height: int) -> np.ndarray:
    """A smooth RGB test pattern uint8 [H, W, 3] (compresses well, survives JPEG)."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, 255 - x], axis=2).round().astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# ------------------------------------------------------------------------------------------------ good images


def test_reads_rgb_png_exactly(tmp_path: Path) -> None:
    pixels = _gradient(120, 90)
    path = tmp_path / "plain.png"
    Image.fromarray(pixels).save(path)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (90, 120, 3)
    assert image.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image, pixels)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    # Stored 200 wide x 100 high with a red block in the stored top-left corner; EXIF orientation 6 means
    # "rotate 90 degrees clockwise to display": upright the image is 100 wide x 200 high, block at the top-right.
    stored = np.full((100, 200, 3), 128, np.uint8)
    stored[:30, :30] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    image = read_image(path)
    assert image.shape == (200, 100, 3)
    top_right = image[5:25, 75:95].mean(axis=(0, 1))
    top_left = image[5:25, 5:25].mean(axis=(0, 1))
    assert top_right[0] > 200 and top_right[1] < 60, top_right
    assert abs(top_left - 128).max() < 20, top_left


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    gray = _gradient(100, 80)[:, :, 0]
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    image = read_image(path)
    assert image.shape == (80, 100, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


def test_palette_and_bilevel_become_rgb(tmp_path: Path) -> None:
    rgb = Image.fromarray(_gradient(100, 80))
    palette_path = tmp_path / "palette.png"
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(palette_path)
    image = read_image(palette_path)
    assert image.shape == (80, 100, 3)
    np.testing.assert_array_equal(image, np.asarray(Image.open(palette_path).convert("RGB")))
    bilevel_path = tmp_path / "bilevel.png"
    rgb.convert("1").save(bilevel_path)
    image = read_image(bilevel_path)
    assert set(np.unique(image)) <= {0, 255}


def test_rgba_composited_on_white_or_alpha_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((80, 100, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, :50, 3] = 255  # left half opaque green
    rgba[:, 50:, 3] = 0  # right half fully transparent (green stored underneath)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    white = read_image(path)
    assert white.shape == (80, 100, 3)
    np.testing.assert_array_equal(white[:, :50], np.broadcast_to([10, 200, 30], (80, 50, 3)))
    np.testing.assert_array_equal(white[:, 50:], 255)
    dropped = read_image(path, alpha="drop")
    np.testing.assert_array_equal(dropped, np.broadcast_to([10, 200, 30], (80, 100, 3)))


def test_grayscale_alpha_becomes_rgb(tmp_path: Path) -> None:
    la = np.zeros((70, 90, 2), np.uint8)
    la[..., 0] = 40
    la[..., 1] = 255
    la[:10, :, 1] = 0
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)
    image = read_image(path)
    np.testing.assert_array_equal(image[10:], 40)
    np.testing.assert_array_equal(image[:10], 255)


def test_sixteen_bit_png_reduced_to_eight_bit(tmp_path: Path) -> None:
    values = np.zeros((80, 100), np.uint16)
    values[:, 25:50] = 65535
    values[:, 50:75] = 128 * 257
    values[:, 75:] = 1000  # 1000 / 257 = 3.89 -> 4
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really stored as 16-bit
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (80, 100, 3)
    assert (image[:, :25] == 0).all() and (image[:, 25:50] == 255).all()
    assert (image[:, 50:75] == 128).all() and (image[:, 75:] == 4).all()


def test_sixteen_bit_colour_png_reduced_to_eight_bit(tmp_path: Path) -> None:
    # 48-bit RGB PNG written by hand (Pillow cannot write one): colour type 2, bit depth 16.
    height, width = 70, 90
    rgb16 = np.zeros((height, width, 3), np.uint16)
    rgb16[..., 0] = 200 * 257
    rgb16[..., 1] = 65535
    rgb16[:, 45:, 2] = 17 * 257
    rows = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(height))
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "deep_colour.png"
    path.write_bytes(data)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)
    assert (image[..., 0] == 200).all() and (image[..., 1] == 255).all()
    assert (image[:, :45, 2] == 0).all() and (image[:, 45:, 2] == 17).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    pixels = np.zeros((80, 100, 3), np.uint8)
    pixels[...] = (200, 50, 20)
    path = tmp_path / "print.jpg"
    Image.fromarray(pixels).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    image = read_image(path)
    assert image.shape == (80, 100, 3)
    assert np.abs(image.astype(int) - pixels).max() <= 3


def test_webp_lossless_roundtrip(tmp_path: Path) -> None:
    pixels = _gradient(128, 96)
    path = tmp_path / "photo.webp"
    Image.fromarray(pixels).save(path, lossless=True)
    np.testing.assert_array_equal(read_image(path), pixels)


def test_jpeg_lossy_close(tmp_path: Path) -> None:
    pixels = _gradient(128, 96)
    path = tmp_path / "photo.jpeg"
    Image.fromarray(pixels).save(path, quality=95)
    assert np.abs(read_image(path).astype(int) - pixels).mean() < 3


def test_large_image_read_and_downscaled_for_detection(tmp_path: Path) -> None:
    pixels = _gradient(4200, 1000)
    path = tmp_path / "huge.png"
    Image.fromarray(pixels).save(path, compress_level=1)
    image = read_image(path)
    assert image.shape == (1000, 4200, 3)
    view = downscale_for_detection(image, max_side=4096)
    assert isinstance(view, DetectionView) and view.is_downscaled
    assert max(view.image.shape[:2]) == 4096 and view.image.shape[:2] == (975, 4096)
    assert view.original_size == (1000, 4200)
    # Continuous coordinates: the image corners and a point map back exactly.
    corners = np.array([[0.0, 0.0], [4096.0, 975.0], [2048.0, 487.5]])
    np.testing.assert_allclose(view.to_original(corners), [[0, 0], [4200, 1000], [2100, 500]], rtol=1e-6)
    np.testing.assert_allclose(view.box_to_original((0, 0, 4096, 975)), (0, 0, 4200, 1000), rtol=1e-9)
    # Content maps too: the gradient value at a small-image point equals the original's at the mapped point.
    small_xy = np.array([1000.5, 600.5])
    ox, oy = view.to_original(small_xy)
    np.testing.assert_allclose(view.image[600, 1000].astype(float), image[int(oy), int(ox)].astype(float), atol=2)


def test_small_enough_image_not_downscaled() -> None:
    pixels = _gradient(640, 480)
    view = downscale_for_detection(pixels, max_side=4096)
    assert not view.is_downscaled and view.scale == 1.0 and view.image is pixels


# ------------------------------------------------------------------------------------------------ bad inputs


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageNotFoundError, match=r"nope\.jpg: no such file") as info:
        read_image(path)
    assert info.value.path == path
    assert isinstance(info.value, ImageInputError)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="is a directory"):
        read_image(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(UnreadableImageError, match=r"empty\.png: file is empty \(0 bytes\)"):
        read_image(path)


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are my holiday notes, not a photo\n" * 20)
    with pytest.raises(UnreadableImageError, match=r"notes\.jpg: not a valid image: the name ends in '\.jpg'"):
        read_image(path)


def test_heic_gets_a_conversion_hint(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))  # an ISO-BMFF HEIC header Pillow cannot decode
    with pytest.raises(UnreadableImageError, match=r"IMG_0001\.HEIC: HEIC/HEIF photos are not supported.*JPEG"):
        read_image(path)


def test_random_bytes_without_image_suffix(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableImageError, match=r"blob\.bin: not an image file Pillow can read"):
        read_image(path)


def test_corrupt_png_data(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[200:260] = b"\x00" * 60  # inside the IDAT stream: breaks zlib data and the CRC
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableImageError, match=r"corrupt\.png: image file is (corrupt|truncated)") as info:
        read_image(path)
    assert "Traceback" not in str(info.value)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_gradient(300, 200)).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImageError, match=r"cut\.jpg: image file is truncated"):
        read_image(path)


def test_tiny_image(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.fromarray(_gradient(200, 50)).save(path)
    with pytest.raises(ImageTooSmallError, match=r"tiny\.png: image is too small \(200x50 px\).*at least 64 px"):
        read_image(path)
    assert read_image(path, min_side=32).shape == (50, 200, 3)


def test_decompression_bomb_header(tmp_path: Path) -> None:
    # A valid PNG header claiming 100000 x 100000 pixels with almost no data: must be refused before decoding.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png: image is too large.*10000000000 pixels"):
        read_image(path)


def test_max_pixels_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(_gradient(400, 300)).save(path)
    with pytest.raises(ImageTooLargeError, match=r"big\.png: image is 400x300 = 0\.1 megapixels"):
        read_image(path, max_pixels=100_000)


def test_in_memory_array_validation() -> None:
    with pytest.raises(InvalidImageArrayError, match="expected dtype uint8"):
        as_rgb_uint8(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InvalidImageArrayError, match=r"photo: expected shape \[H, W, 3\]"):
        as_rgb_uint8(np.zeros((3, 10, 10), np.uint8), name="photo")
    with pytest.raises(InvalidImageArrayError, match="expected a numpy uint8 array"):
        as_rgb_uint8([[0, 1]])  # type: ignore[arg-type]
    assert as_rgb_uint8(np.zeros((10, 12), np.uint8)).shape == (10, 12, 3)
    assert as_rgb_uint8(np.zeros((10, 12, 4), np.uint8)).shape == (10, 12, 3)


def _exif_photo(path: Path, size: tuple[int, int], tags: dict[int, int]) -> Path:
    exif = Image.Exif()
    exif[0x8769] = tags  # the Exif sub-IFD
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path, exif=exif.tobytes())
    return path


def test_exif_focal_factor_from_the_35mm_equivalent(tmp_path: Path, photos_root: Path) -> None:
    """FocalLengthIn35mmFilm -> focal / longer side over the diagonal equivalence; a crop (EXIF's pixel size of
    another aspect), a missing tag and an absurd value give None; a real camera photo gives its lens."""
    phone = _exif_photo(tmp_path / "phone.jpg", (600, 400), {41989: 26, 40962: 600, 40963: 400})
    assert exif_focal_factor(phone) == pytest.approx(26 * np.hypot(600, 400) / (43.27 * 600))  # 0.72
    resized = _exif_photo(tmp_path / "resized.jpg", (300, 200), {41989: 26, 40962: 6000, 40963: 4000})
    assert exif_focal_factor(resized) == pytest.approx(exif_focal_factor(phone))  # resizing keeps the factor
    cropped = _exif_photo(tmp_path / "cropped.jpg", (600, 400), {41989: 26, 40962: 4000, 40963: 3000})
    assert exif_focal_factor(cropped) is None
    assert exif_focal_factor(_exif_photo(tmp_path / "absurd.jpg", (600, 400), {41989: 2000})) is None
    assert exif_focal_factor(_exif_photo(tmp_path / "none.jpg", (600, 400), {40962: 600})) is None
    assert exif_focal_factor(tmp_path / "missing.jpg") is None
    nikon = photos_root / "face-recognition-examples" / "knn_examples" / "test" / "alex_lacamoire1.jpg"
    assert exif_focal_factor(nikon) == pytest.approx(45 * np.hypot(1548, 1024) / (43.27 * 1548))  # a 45 mm lens
