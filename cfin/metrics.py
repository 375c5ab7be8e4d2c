"""PSNR and SSIM as the SR literature reports them (MATLAB scripts, BasicSR ``test_y_channel``).

The convention behind every table the CFIN paper compares with: quantise the SR output to
uint8, convert both images to the Y channel of ITU-R BT.601 YCbCr (16-235, not rounded),
shave ``crop_border`` (= scale) pixels from each side, then
- PSNR = 10 log10(255^2 / MSE), averaged over images;
- SSIM as Wang et al.'s ``ssim_index.m``: 11 x 11 Gaussian window (sigma 1.5), 'valid'
  filtering, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, mean of the SSIM map.

SSIM uses scikit-image's ``structural_similarity`` with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255``: its Gaussian has radius
``int(3.5 * 1.5 + 0.5) = 5`` (an 11-tap window, normalised like ``fspecial``) and it
averages the map only over pixels at least 5 from the border, which is MATLAB's 'valid'
filtering (checked against a direct 'valid' convolution in tests/test_metrics.py).
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from cfin.errors import CFINError
from cfin.imresize import to_uint8

__all__ = ["rgb_to_y", "psnr", "ssim", "prepare"]

# BT.601 luma for R, G, B in [0, 1] mapped to [16, 235] (MATLAB rgb2ycbcr's first row)
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 Y (16-235, float64, unrounded) of an H x W x 3 RGB image with values in [0, 255].

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``.
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise CFINError(f"rgb_to_y expects an H x W x 3 RGB image; got shape {img.shape}")
    return 16.0 + img @ _Y_WEIGHTS / 255.0


def prepare(sr: np.ndarray, hr: np.ndarray, crop_border: int, test_y_channel: bool = True
            ) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``sr`` to uint8, optionally take Y, and shave ``crop_border`` pixels per side."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape:
        raise CFINError(f"SR and HR images differ in shape: {sr.shape} vs {hr.shape}")
    if sr.ndim != 3 or sr.shape[2] != 3:
        raise CFINError(f"metrics expect H x W x 3 RGB images in [0, 255]; got shape {sr.shape}")
    crop_border = int(crop_border)
    if crop_border < 0 or 2 * crop_border >= min(sr.shape[:2]):
        raise CFINError(f"crop_border {crop_border} leaves nothing of a {sr.shape[0]}x{sr.shape[1]} image")
    sr = to_uint8(sr).astype(np.float64)
    hr = to_uint8(hr).astype(np.float64)
    if test_y_channel:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    return sr, hr


SSIM_WINDOW = 11  # MATLAB ssim_index's Gaussian window


def smallest_scorable(crop_border: int) -> int:
    """The smallest side an image can have and be scored: SSIM's window after the border crop."""
    return SSIM_WINDOW + 2 * crop_border


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int, test_y_channel: bool = True) -> float:
    """PSNR in dB (peak 255) after :func:`prepare`; ``inf`` for identical images."""
    sr, hr = prepare(sr, hr, crop_border, test_y_channel)
    mse = float(np.mean((sr - hr) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int, test_y_channel: bool = True) -> float:
    """SSIM (Wang et al. 2004, MATLAB ``ssim_index`` settings) after :func:`prepare`.

    On RGB (``test_y_channel=False``) it is the mean of the three per-channel SSIMs.
    """
    sr, hr = prepare(sr, hr, crop_border, test_y_channel)
    if min(sr.shape[:2]) < SSIM_WINDOW:
        raise CFINError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping; got "
                        f"{sr.shape[0]}x{sr.shape[1]}")
    return float(structural_similarity(
        sr, hr, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=None if sr.ndim == 2 else 2))
