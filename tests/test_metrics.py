"""MATLAB bicubic and the field's PSNR/SSIM: hand-derived values and the published Set5 baselines."""
import numpy as np
import pytest
from scipy.signal import correlate2d

from cfin.data.io import read_image
from cfin.errors import CFINError
from cfin.imresize import contributions, imresize, modcrop, to_uint8
from cfin.metrics import psnr, rgb_to_y, ssim

# Published bicubic rows (Y channel, MATLAB), REFERENCE.md: (PSNR, SSIM). Measured here:
# x2 33.673/0.9303, x3 30.403/0.8689, x4 28.429/0.8111 (unrounded Y, as BasicSR). Rounding Y to
# integers (rgb2ycbcr on uint8) gives 33.640/0.9292, 30.385/0.8678, 28.416/0.8101: the published
# numbers sit between the two conventions, within 0.015 dB and 0.0007 of ours.
SET5_BICUBIC = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}


@pytest.mark.parametrize("scale", sorted(SET5_BICUBIC))
def test_set5_bicubic_matches_published(shared, scale):
    files = sorted((shared / "datasets" / "benchmark" / "Set5" / "HR").glob("*.png"))
    assert len(files) == 5
    p, s = [], []
    for f in files:
        hr = modcrop(read_image(f), scale)
        sr = imresize(imresize(hr, 1 / scale), scale)
        p.append(psnr(sr, hr, crop_border=scale))
        s.append(ssim(sr, hr, crop_border=scale))
    want_psnr, want_ssim = SET5_BICUBIC[scale]
    # published numbers (MATLAB), not float noise: printed to 0.01 dB / 1e-4, and MATLAB's own
    # rounding in its resize and SSIM differs from ours; ours are 0.009-0.013 dB and
    # 4e-4-7e-4 above them (float64 numpy, the same on any CPU)
    assert np.mean(p) == pytest.approx(want_psnr, abs=0.03)
    assert np.mean(s) == pytest.approx(want_ssim, abs=0.002)


# --- imresize -------------------------------------------------------------------------------

def test_upscale_x2_hand_derived():
    # MATLAB weights for x2: out(1) = 1.09375 x1 - 0.09375 x2 (mirror padding),
    # out(2) = 0.796875 x1 + 0.2265625 x2 - 0.0234375 x3
    row = np.array([[10.0, 20.0, 30.0, 40.0]])
    out = imresize(row, output_shape=(1, 8))
    assert out[0, 0] == pytest.approx(9.0625, abs=1e-12)
    assert out[0, 1] == pytest.approx(11.796875, abs=1e-12)
    assert out[0, 7] == pytest.approx(40.9375, abs=1e-12)  # mirror of out(1)


def test_downscale_half_hand_derived():
    # antialiased 1/2: out(1) = 0.546875 x1 + 0.3984375 x2 + 0.1015625 x3 - 0.046875 x4
    col = np.array([[10.0], [20.0], [30.0], [40.0]])
    out = imresize(col, output_shape=(2, 1))
    np.testing.assert_allclose(out[:, 0], [14.609375, 35.390625], atol=1e-12)
    w, ind = contributions(4, 2, 0.5)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert ind.min() >= 0 and ind.max() <= 3


def test_uint8_resizes_rows_first_and_rounds_between_passes():
    # MATLAB resizes the dimension with the smaller scale first, rows on a tie, and a uint8
    # image is rounded back to uint8 after each pass: with the 1/2 weights above (out(2) is
    # out(1) mirrored), rows first gives 120 at (2, 1) where columns first would give 121.
    w = np.array([[0.546875, 0.3984375, 0.1015625, -0.046875],
                  [-0.046875, 0.1015625, 0.3984375, 0.546875]])
    img = np.array([[224, 34, 148, 184], [216, 134, 96, 79], [108, 124, 184, 227], [18, 239, 136, 91]], np.uint8)

    def rnd(x):
        return np.floor(np.clip(x, 0, 255) + 0.5)
    rows_first = rnd(rnd(w @ img) @ w.T)
    np.testing.assert_array_equal(rows_first, [[155, 132], [120, 153]])
    assert rnd(w @ rnd(img @ w.T))[1, 0] == 121  # the order matters for this image
    np.testing.assert_array_equal(imresize(img, 0.5), rows_first)
    # a smaller scale along W: columns first
    np.testing.assert_array_equal(imresize(img.T.copy(), output_shape=(4, 2)), rnd(img.T @ w.T))


def test_shape_rules():
    img = np.zeros((37, 29, 3), np.uint8)
    assert imresize(img, 0.5).shape == (19, 15, 3)          # ceil(scale * size)
    assert imresize(img, 3).shape == (111, 87, 3)
    assert imresize(img[:, :, 0], 1 / 3).shape == (13, 10)
    assert imresize(img, output_shape=(10, 40)).shape == (10, 40, 3)
    assert modcrop(img, 4).shape == (36, 28, 3)
    for s in (2, 3, 4, 8):  # 1/s * n never rounds up past n / s
        for n in range(s, 800, s):
            assert imresize(np.zeros((n, 1)), 1 / s).shape[0] == n // s


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 0.5, 0.7, 2, 3, 4])  # 0.7: taps sum to 1 only once normalised
def test_constant_image_stays_constant(scale):
    assert np.all(imresize(np.full((24, 18, 3), 77, np.uint8), scale) == 77)
    np.testing.assert_allclose(imresize(np.full((24, 18), 0.3), scale), 0.3, atol=1e-12)


def test_uint8_and_float_paths():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)
    u = imresize(img, 1 / 3)
    f = imresize(img.astype(np.float64), 1 / 3)
    f32 = imresize(img.astype(np.float32), 1 / 3)
    assert u.dtype == np.uint8 and f.dtype == np.float64 and f32.dtype == np.float32
    # uint8 rounds after each pass (as MATLAB), so it may differ from the float result by one level
    assert np.abs(u.astype(int) - to_uint8(f).astype(int)).max() <= 1
    # float32 against float64 of the same taps (at most 12 of them, values <= 255): a few
    # roundings of 255 (1.5e-5 each) in any summation order; 1e-3 is ~60 of them
    np.testing.assert_allclose(f32, f, atol=1e-3)
    # float output is not clipped: bicubic overshoots on an edge
    edge = np.zeros((8, 8))
    edge[:, 4:] = 255
    up = imresize(edge, 2)
    assert up.min() < 0 and up.max() > 255
    # channels are resized independently
    np.testing.assert_array_equal(u[:, :, 1], imresize(img[:, :, 1], 1 / 3))


def test_imresize_and_modcrop_errors():
    with pytest.raises(CFINError, match="exactly one"):
        imresize(np.zeros((4, 4)))
    with pytest.raises(CFINError, match="dtype"):
        imresize(np.zeros((4, 4), np.int32), 2)
    with pytest.raises(CFINError, match="positive"):
        imresize(np.zeros((4, 4)), -1)
    with pytest.raises(CFINError, match="smaller than the scale"):
        modcrop(np.zeros((3, 9)), 4)


def test_to_uint8_rounds_half_away_and_saturates():
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 0.5, 1.49, 2.5, 254.6, 300.0])),
                                  [0, 1, 1, 3, 255, 255])


# --- metrics ---------------------------------------------------------------------------------

def test_rgb_to_y_range():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(img)[0], [16.0, 235.0, 16 + 65.481])


def test_psnr_known_value_and_quantisation():
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr.astype(np.float64) + 10.2  # quantised to 110, Y differs by 10 * 219 / 255
    want = 10 * np.log10(255 ** 2 / (10 * 219 / 255) ** 2)
    assert psnr(sr, hr, crop_border=2) == pytest.approx(want, abs=1e-9)
    assert psnr(sr, hr, crop_border=2, test_y_channel=False) == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert psnr(hr, hr, crop_border=0) == float("inf")


def _ssim_valid(a, b):
    """Wang et al.'s ssim_index.m: fspecial('gaussian', 11, 1.5), filter2 'valid'."""
    x = np.arange(-5, 6)
    w = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()

    def f(z):
        return correlate2d(z, w, mode="valid")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = f(a), f(b)
    va, vb, cov = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
    return np.mean((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))


def test_ssim_is_matlab_valid_gaussian_ssim():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 12, hr.shape), 0, 255)
    want = _ssim_valid(rgb_to_y(to_uint8(sr))[3:-3, 3:-3], rgb_to_y(hr)[3:-3, 3:-3])
    assert ssim(sr, hr, crop_border=3) == pytest.approx(want, abs=1e-10)
    assert ssim(hr, hr, crop_border=3) == pytest.approx(1.0)


def test_metric_errors():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(CFINError, match="differ in shape"):
        psnr(a, a[:10], 2)
    with pytest.raises(CFINError, match="crop_border"):
        psnr(a, a, 10)
    with pytest.raises(CFINError, match="H x W x 3"):
        ssim(a[:, :, 0], a[:, :, 0], 2)
