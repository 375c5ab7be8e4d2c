"""The evaluation protocols (cfin.protocols) differ from each other by what their definitions imply.

On a fixture whose SR is its HR plus seeded noise (Y error of a known size), each protocol's
PSNR is predicted from the default one:

* ``basicsr`` is the default's formulas with Y in float32: PSNR within 1e-4 dB and SSIM within
  1e-6 (float32 carries 24 bits: a Y value near 235 is off by at most 1e-5, and the MSE of a
  few tens moves by a relative 1e-6 at most, 4e-6 dB);
* ``edsr`` converts the RGB difference with (65.738, 129.057, 25.064) / 256, whose ratios to
  the default's coefficients lie within 1 +- 4e-6: the MSE moves by at most a relative 8e-6
  (3.5e-5 dB), plus float32's mean over 60,000 pixels (relative 1e-6): within 1e-4 dB;
* ``y-rounded`` rounds each image's Y: two independent errors uniform on [-1/2, 1/2] add 1/6 to
  the MSE, so its PSNR is lower by 10 log10(1 + 1/(6 MSE)); over 60,000 pixels the sample mean
  of those errors' square is within 5% of 1/6 (its standard error is 0.3%), so the measured
  drop is within 10% of the predicted one. These bounds depend on numpy's float64 and float32
  arithmetic only, the same on every x86 CPU.
"""
from __future__ import annotations

import numpy as np
import pytest

from cfin.errors import CFINError
from cfin.protocols import DEFAULT_PROTOCOL, PROTOCOLS, protocol

CROP = 4


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(7)
    hr = rng.integers(20, 236, size=(256, 256, 3)).astype(np.uint8)
    sr = np.clip(hr.astype(np.float64) + rng.normal(0, 6, hr.shape), 0, 255)
    return np.floor(sr + 0.5).astype(np.uint8), hr


def _mse(psnr_db: float) -> float:
    return 255.0 ** 2 / 10 ** (psnr_db / 10)


def test_basicsr_is_the_default_in_float32(pair):
    a, b = PROTOCOLS["matlab"].score(*pair, CROP), PROTOCOLS["basicsr"].score(*pair, CROP)
    assert abs(a["psnr"] - b["psnr"]) < 1e-4 and abs(a["ssim"] - b["ssim"]) < 1e-6


def test_edsr_psnr_differs_by_its_coefficients(pair):
    a, e = PROTOCOLS["matlab"].score(*pair, CROP), PROTOCOLS["edsr"].score(*pair, CROP)
    assert abs(a["psnr"] - e["psnr"]) < 1e-4
    assert e["ssim"] == a["ssim"]  # EDSR's code computes no SSIM: the default's


def test_rounding_y_lowers_psnr_by_the_rounding_noise(pair):
    a, r = PROTOCOLS["matlab"].score(*pair, CROP), PROTOCOLS["y-rounded"].score(*pair, CROP)
    predicted = 10 * np.log10(1 + 1 / (6 * _mse(a["psnr"])))
    measured = a["psnr"] - r["psnr"]
    assert predicted > 0.01  # the fixture's MSE makes the effect visible
    assert measured == pytest.approx(predicted, rel=0.10)
    assert r["ssim"] < a["ssim"]


def test_identical_images_score_infinite_psnr_and_ssim_one(pair):
    hr = pair[1]
    for p in PROTOCOLS.values():
        s = p.score(hr, hr, CROP)
        assert s["psnr"] == float("inf") and s["ssim"] == pytest.approx(1.0, abs=1e-12), p.name


def test_set5_bicubic_under_each_protocol(shared):
    """The published x4 bicubic Set5 baseline (28.42 / 0.8104, REFERENCE.md) lies between the
    default (unrounded Y) and y-rounded, as tests/test_metrics.py measured for the default."""
    from cfin.data.io import read_image
    from cfin.imresize import imresize, modcrop

    scores = {name: [] for name in PROTOCOLS}
    for f in sorted((shared / "datasets" / "benchmark" / "Set5" / "HR").glob("*.png")):
        hr = modcrop(read_image(f), 4)
        sr = imresize(imresize(hr, 1 / 4), 4)
        for name, p in PROTOCOLS.items():
            scores[name].append(p.score(sr, hr, 4))
    mean = {n: (np.mean([s["psnr"] for s in v]), np.mean([s["ssim"] for s in v])) for n, v in scores.items()}
    assert mean["y-rounded"][0] < 28.42 < mean["matlab"][0]
    assert mean["y-rounded"][1] < 0.8104 < mean["matlab"][1]
    assert abs(mean["edsr"][0] - mean["matlab"][0]) < 1e-4


def test_unknown_protocol_lists_the_valid_ones():
    assert DEFAULT_PROTOCOL in PROTOCOLS
    with pytest.raises(CFINError, match="unknown evaluation protocol 'imdn'; valid: matlab, y-rounded, edsr, basicsr"):
        protocol("imdn")


def test_evaluate_reports_every_protocol_asked_for(capsys):
    """``cfin evaluate --protocols all``: the main protocol's scores at the top (as before), the others
    beside them, from the same SR images."""
    import json

    from cfin.cli import main

    rc = main(["evaluate", "--model", "bicubic", "--scale", "2", "--datasets", "embedded", "--protocol",
               "y-rounded", "--protocols", "all", "--json"])
    out = json.loads(capsys.readouterr().out)["embedded"]
    assert rc == 0 and out["protocol"] == "y-rounded"
    assert set(out["protocols"]) == set(PROTOCOLS) - {"y-rounded"}
    assert out["psnr"] < out["protocols"]["matlab"]["psnr"]
