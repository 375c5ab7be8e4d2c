"""Read and write images as H x W x 3 uint8 RGB arrays (PNG and NumPy ``.npy``)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from cfin.atomic import atomic_write
from cfin.errors import CFINError

IMAGE_SUFFIXES = (".png", ".npy")


def as_rgb_uint8(img: np.ndarray, source: str = "image") -> np.ndarray:
    """``img`` as H x W x 3 uint8: gray becomes three channels, an alpha channel is dropped.

    uint16 is scaled to 8 bits (x / 257, rounded); any other non-uint8 dtype is refused. (A 16-bit
    RGB PNG reaches here as 8 bits already: Pillow keeps the high byte, x // 256, at most one level
    from the rounding; 16-bit gray PNGs and ``.npy`` files are rounded here.)
    """
    img = np.asarray(img)
    if img.dtype == np.uint16:
        img = np.floor(img / 257.0 + 0.5).astype(np.uint8)
    if img.dtype != np.uint8:
        raise CFINError(f"{source}: expected uint8 pixels (0-255), got dtype {img.dtype}")
    if img.ndim == 3 and img.shape[2] in (1, 2):  # gray, gray + alpha
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[:, :, :3]
    else:
        raise CFINError(f"{source}: expected an H x W, H x W x 3 or H x W x 4 image, got shape {img.shape}")
    if min(img.shape[:2]) < 1:
        raise CFINError(f"{source}: empty image of shape {img.shape}")
    return np.ascontiguousarray(img)


def read_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` (``.png`` or ``.npy``) as H x W x 3 uint8 RGB."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise CFINError(f"{path}: unsupported image type {suffix!r}; expected one of {', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise CFINError(f"image file not found: {path}")
    try:
        if suffix == ".npy":
            img = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                if im.mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "P", "1"):
                    raise CFINError(f"{path}: unsupported PNG mode {im.mode}")
                if im.mode in ("P", "1"):
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                img = np.array(im)
    except CFINError:
        raise
    except Exception as e:  # PIL/NumPy raise many types for truncated or corrupt files
        raise CFINError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
    return as_rgb_uint8(img, str(path))


def image_size(path: str | Path) -> tuple[int, int]:
    """(rows, columns) of an image file from its header, without decoding it."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return tuple(np.load(path, mmap_mode="r").shape[:2])
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as e:  # PIL/NumPy raise many types for corrupt files
        raise CFINError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def write_png(path: str | Path, img: np.ndarray, compress_level: int = 1) -> Path:
    """Write an H x W x 3 uint8 image as PNG, atomically."""
    img = as_rgb_uint8(img, str(path))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=compress_level)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
