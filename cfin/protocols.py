"""Evaluation protocols: the ways SR papers' own code turns an SR image and its HR into PSNR/SSIM.

Every protocol here starts from the same uint8 SR image (the network's output rounded and
clipped) and the same HR image (modcropped to the scale), crops ``crop_border`` (= scale)
pixels from each side and scores the Y channel of ITU-R BT.601; they differ in how:

* ``matlab`` (the suite's default, :mod:`cfin.metrics`): Y = 16 + (65.481 R + 128.553 G +
  24.966 B) / 255 in float64, not rounded; PSNR with peak 255; SSIM as ``ssim_index.m``
  (11 x 11 Gaussian window, sigma 1.5, population statistics, 'valid' filtering).
* ``y-rounded``: Y rounded to integers before scoring, as MATLAB's ``rgb2ycbcr`` does on a
  uint8 image and as IMDN's ``test_IMDN.py`` does (``skimage.color.rgb2ycbcr``, then
  ``quantize``: round and clip to uint8); PSNR and SSIM otherwise as ``matlab``. The rounding
  adds about 1/12 to each image's Y variance, so the score is lower by roughly
  ``10 log10(1 + 2/12 / MSE)`` dB (0.01-0.02 dB at the MSEs of x4 SR).
* ``edsr``: the PSNR of EDSR's ``utility.calc_psnr`` (the code CFIN, FDIWN and SMSR were
  trained and tested with): the RGB difference ``(sr - hr) / 255`` in float32, converted to Y
  with the coefficients (65.738, 129.057, 25.064) / 256 (the offset cancels in a difference),
  mean square over the cropped image in float32. The coefficients differ from ``matlab``'s by
  at most 4e-6 relative, so the PSNR does too by about 3e-5 dB, plus float32 rounding. EDSR's
  code computes no SSIM: its SSIM column is ``matlab``'s.
* ``basicsr``: BasicSR's ``calculate_psnr`` / ``calculate_ssim`` with ``test_y_channel``: the
  crop first, Y by ``bgr2ycbcr`` in float32 (``to_y_channel``), PSNR in float64, SSIM by an
  11 x 11 Gaussian (``cv2.getGaussianKernel(11, 1.5)``) filtered 'valid'. The same formulas as
  ``matlab`` in another precision: the scores agree to about 1e-6 dB and 1e-7.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cfin.errors import choice_error
from cfin.metrics import SSIM_WINDOW, prepare, psnr, rgb_to_y, ssim

DEFAULT_PROTOCOL = "matlab"


@dataclass(frozen=True)
class Protocol:
    """One way of scoring: ``psnr(sr, hr, crop_border)`` and ``ssim(...)`` on uint8 H x W x 3 RGB.

    Args:
        name: the key (``--protocol NAME``).
        label: what it does, in a line.
        used_by: whose code computes it.
        psnr, ssim: the scores.
    """

    name: str
    label: str
    used_by: str
    psnr: Callable[[np.ndarray, np.ndarray, int], float]
    ssim: Callable[[np.ndarray, np.ndarray, int], float]

    def score(self, sr: np.ndarray, hr: np.ndarray, crop_border: int) -> dict:
        return {"psnr": float(self.psnr(sr, hr, crop_border)), "ssim": float(self.ssim(sr, hr, crop_border))}


def _psnr_of(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def _ssim_of(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def _rounded_y(sr, hr, crop_border):
    """The cropped Y channels, each rounded to an integer in [0, 255] (rgb2ycbcr on uint8)."""
    sr, hr = prepare(sr, hr, crop_border, test_y_channel=False)
    return tuple(np.clip(np.floor(rgb_to_y(x) + 0.5), 0, 255) for x in (sr, hr))


def rounded_y_psnr(sr, hr, crop_border: int) -> float:
    return _psnr_of(*_rounded_y(sr, hr, crop_border))


def rounded_y_ssim(sr, hr, crop_border: int) -> float:
    return _ssim_of(*_rounded_y(sr, hr, crop_border))


_EDSR_Y = np.array([65.738, 129.057, 25.064], np.float32) / np.float32(256)


def edsr_psnr(sr, hr, crop_border: int) -> float:
    """EDSR's ``calc_psnr`` on a benchmark image (module docstring), in float32 as on its GPU."""
    sr, hr = prepare(sr, hr, 0, test_y_channel=False)
    diff = (sr.astype(np.float32) - hr.astype(np.float32)) / np.float32(255)
    diff_y = diff @ _EDSR_Y
    if crop_border:
        diff_y = diff_y[crop_border:-crop_border, crop_border:-crop_border]
    mse = float(np.mean(np.square(diff_y, dtype=np.float32), dtype=np.float32))
    return float("inf") if mse == 0 else float(-10.0 * np.log10(mse))


def _basicsr_y(img: np.ndarray) -> np.ndarray:
    """BasicSR's ``to_y_channel``: float32 [0, 1], ``bgr2ycbcr(y_only=True)``, times 255."""
    x = img.astype(np.float32) / np.float32(255)
    y = x @ np.array([65.481, 128.553, 24.966], np.float32) + np.float32(16.0)
    return (y / np.float32(255)) * np.float32(255)


def _basicsr_prepare(sr, hr, crop_border):
    sr, hr = prepare(sr, hr, crop_border, test_y_channel=False)  # BasicSR crops, then converts
    return _basicsr_y(sr).astype(np.float64), _basicsr_y(hr).astype(np.float64)


def basicsr_psnr(sr, hr, crop_border: int) -> float:
    return _psnr_of(*_basicsr_prepare(sr, hr, crop_border))


def _gaussian_window() -> np.ndarray:
    r = SSIM_WINDOW // 2
    g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)


def basicsr_ssim(sr, hr, crop_border: int) -> float:
    """BasicSR's ``_ssim``: Gaussian-filtered means, variances and covariance, 'valid' region."""
    from scipy.signal import correlate2d

    a, b = _basicsr_prepare(sr, hr, crop_border)
    w = _gaussian_window()

    def f(x):
        return correlate2d(x, w, mode="valid")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = f(a), f(b)
    var_a, var_b, cov = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2, f(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


PROTOCOLS: dict[str, Protocol] = {
    "matlab": Protocol("matlab", "Y unrounded (float64), PSNR peak 255, SSIM as MATLAB ssim_index.m",
                       "the suite's default; MATLAB scripts that take Y of im2double; BasicSR's formulas",
                       lambda sr, hr, c: psnr(sr, hr, c), lambda sr, hr, c: ssim(sr, hr, c)),
    "y-rounded": Protocol("y-rounded", "Y rounded to integers before PSNR and SSIM (rgb2ycbcr on uint8)",
                          "IMDN's test_IMDN.py; MATLAB rgb2ycbcr on a uint8 image",
                          rounded_y_psnr, rounded_y_ssim),
    "edsr": Protocol("edsr", "EDSR calc_psnr: float32 RGB difference to Y by (65.738, 129.057, 25.064)/256; "
                             "SSIM as matlab (EDSR's code has none)",
                     "EDSR-based code: CFIN, FDIWN, SMSR (utility.calc_psnr)",
                     edsr_psnr, lambda sr, hr, c: ssim(sr, hr, c)),
    "basicsr": Protocol("basicsr", "BasicSR calculate_psnr/ssim, test_y_channel: Y in float32, SSIM by a "
                                   "Gaussian 'valid' filter", "BasicSR and mmsr-based code (PAN)",
                        basicsr_psnr, basicsr_ssim),
}


def protocol(name: str) -> Protocol:
    """The protocol called ``name``; a CFINError listing the valid ones otherwise."""
    if name not in PROTOCOLS:
        raise choice_error("evaluation protocol", name, PROTOCOLS)
    return PROTOCOLS[name]
