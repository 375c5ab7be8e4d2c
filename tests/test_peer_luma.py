"""cfin.peers.luma, the RGB <-> Y plumbing of the Y-channel peers (IDN, MemNet): MATLAB's bicubic
upsampling in torch equals cfin.imresize (MATLAB's imresize) on the same floats, the YCbCr
conversion is MATLAB's (its Y is cfin.metrics' scoring Y) and inverts exactly, and luma_sr with
an identity-on-bicubic network is MATLAB's bicubic upsampling of the RGB image."""
import numpy as np
import pytest
import torch

from cfin.imresize import imresize
from cfin.metrics import rgb_to_y
from cfin.peers.luma import luma_sr, matlab_bicubic_upsample, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.mark.parametrize("scale", (2, 3, 4))
def test_bicubic_upsampling_is_matlab_imresize(scale):
    """float64 on both sides: the same weights and taps summed in another order, so equal to
    ~1e-15 (the bound 1e-12 is far above float64 rounding of a 4-tap sum of [0, 1] values)."""
    x = torch.rand(2, 3, 7, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(scale))
    ours = matlab_bicubic_upsample(x, scale).numpy()
    matlab = np.stack([imresize(img.transpose(1, 2, 0), scale).transpose(2, 0, 1) for img in x.numpy()])
    assert ours.shape == (2, 3, 7 * scale, 10 * scale)
    assert np.abs(ours - matlab).max() < 1e-12


def test_bicubic_upsampling_on_meta_and_with_gradients():
    assert matlab_bicubic_upsample(torch.empty(1, 1, 5, 6, device="meta"), 3).shape == (1, 1, 15, 18)
    x = torch.rand(1, 1, 4, 4, requires_grad=True)
    matlab_bicubic_upsample(x, 2).sum().backward()
    # each output pixel's weights sum to 1, so the input gradients of the sum add up to the 64 output pixels
    assert x.grad is not None and abs(x.grad.sum().item() - 64.0) < 1e-4


def test_ycbcr_is_matlabs_and_inverts():
    """float64: MATLAB's matrix and its inverse, so within 1e-12 of identity (the float64 round trip
    through a 3x3 matrix and its inverse is ~1e-15)."""
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ycc = rgb_to_ycbcr(x)
    assert torch.allclose(ycbcr_to_rgb(ycc), x, atol=1e-12, rtol=0)
    y_scored = rgb_to_y(x[0].numpy().transpose(1, 2, 0) * 255)
    assert np.abs(ycc[0, 0].numpy() * 255 - y_scored).max() < 1e-10
    assert torch.allclose(rgb_to_ycbcr(torch.zeros(1, 3, 1, 1, dtype=torch.float64)).flatten(),
                          torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255)


def test_luma_sr_with_the_bicubic_luma_is_bicubic_rgb():
    """A network returning its bicubic input: the output is MATLAB bicubic of each RGB channel
    (an interpolation whose weights sum to 1 commutes with the affine YCbCr map), to float64
    rounding (1e-9 on values up to 255)."""
    x = torch.rand(1, 3, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 255
    out = luma_sr(x, 3, lambda y, y_bicubic: y_bicubic)
    assert torch.allclose(out, matlab_bicubic_upsample(x, 3), atol=1e-9, rtol=0)
