"""ECBSR-M16C64, re-parameterized (Table I: x2 and x4).

Paper: X. Zhang, H. Zeng, L. Zhang, "Edge-oriented Convolution Block for Real-time Super
Resolution on Mobile Devices", ACM MM 2021.

Shapes and key names read from xindongzhang/ECBSR @ c60b1d2: models/plainsr.py (``PlainSR``,
the network ``convert.py`` deploys: each ECB merged into one 3x3 conv), models/ecbsr.py and
models/ecb.py (the training-time ECBs it is merged from), train.py (``colors=1``).

ECBSR is trained and tested on the Y channel of YCbCr (train.py refuses ``colors=3``): Y in
[16, 235] from BT.601 (skimage's ``rgb2ycbcr``), one channel in, one out. The network here
keeps the suite's contract, RGB [0, 255] in and out: Y goes through ECBSR, Cb and Cr are
upsampled bicubically, and the result is converted back to RGB (the scores are on Y).

Which network Table I prints (596K / 137.3G at x2, 603K / 34.7G at x4; ECBSR's own numbers):
ECBSR-M16C64 (16 body blocks of 64 channels; M4C8, M4C16 ... are far smaller) after
re-parameterization, where each block is a plain 3x3 conv + PReLU. The training-time blocks
(3x3 conv, 1x1 -> 3x3 with depth multiplier 2, three 1x1 + Sobel/Laplacian branches) hold
133,696 parameters per 64-channel block, about 2.2M in all. The printed Multi-Adds are the
Params times the LR pixels (137.3G / 230,400 = 596K; 34.7G / 57,600 = 602K): every
parameter, biases and PReLU slopes included, once per pixel, as ptflops counts this network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.registry import PeerSpec, Source

MODULES = 16
CHANNELS = 64

# BT.601 (MATLAB / skimage rgb2ycbcr) for R, G, B in [0, 255]: offset + rows . rgb / 255
_YCBCR_OFFSET = (16.0, 128.0, 128.0)
_YCBCR_ROWS = ((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214))


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W RGB in [0, 255] -> YCbCr (Y in [16, 235]), BT.601 as MATLAB's rgb2ycbcr."""
    r, g, b = x.unbind(1)
    return torch.stack([o + (w[0] * r + w[1] * g + w[2] * b) / 255.0
                        for o, w in zip(_YCBCR_OFFSET, _YCBCR_ROWS)], 1)


# its inverse (x 255), on the CPU whatever device a caller's context sets
_RGB_ROWS = (torch.linalg.inv(torch.tensor(_YCBCR_ROWS, dtype=torch.float64, device="cpu")) * 255.0).tolist()


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr`."""
    centred = [c - o for c, o in zip(x.unbind(1), _YCBCR_OFFSET)]
    return torch.stack([row[0] * centred[0] + row[1] * centred[1] + row[2] * centred[2] for row in _RGB_ROWS], 1)


class Conv3X3(nn.Module):
    """One re-parameterized ECB (its inference form): a 3x3 conv and, but in the last
    block, a PReLU with one slope per channel.

    Args:
        cin: input channels.
        cout: output channels.
        act: PReLU after the conv.
    """

    def __init__(self, cin: int, cout: int, act: bool = True):
        super().__init__()
        self.conv3x3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3x3(x)
        return y if self.act is None else self.act(y)


class ECBSR(nn.Module):
    """ECBSR in its deployed form: ``M + 2`` plain 3x3 blocks on Y, the input
    added to every sub-pixel (a nearest-neighbour skip), then pixel shuffle; RGB [0, 255] in and
    out around it (module docstring).

    Args:
        scale: upscaling factor (2 or 4).
        modules: M, the body blocks (16).
        channels: C (64).
    """

    def __init__(self, scale: int, modules: int = MODULES, channels: int = CHANNELS):
        super().__init__()
        self.upscale = scale
        self.backbone = nn.Sequential(Conv3X3(1, channels),
                                      *(Conv3X3(channels, channels) for _ in range(modules)),
                                      Conv3X3(channels, scale * scale, act=False))
        self.upsampler = nn.PixelShuffle(scale)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        """The public code's forward: B x 1 x H x W luma (Y in [16, 235]) -> B x 1 x sH x sW."""
        return self.upsampler(self.backbone(y) + y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ycbcr = rgb_to_ycbcr(x)
        y = self.forward_y(ycbcr[:, :1])
        chroma = F.interpolate(ycbcr[:, 1:], scale_factor=self.upscale, mode="bicubic", align_corners=False)
        return ycbcr_to_rgb(torch.cat((y, chroma), 1))


def ecbsr(scale: int) -> ECBSR:
    """Table I's ECBSR (M16C64, re-parameterized) at ``scale``."""
    return ECBSR(scale)


SPECS = (
    PeerSpec(
        name="ecbsr", title="ECBSR",
        paper=("X. Zhang, H. Zeng, L. Zhang, \"Edge-oriented Convolution Block for Real-time Super Resolution "
               "on Mobile Devices\", ACM MM 2021"),
        source=Source("xindongzhang/ECBSR", "c60b1d2",
                      ("models/plainsr.py", "models/ecbsr.py", "models/ecb.py", "train.py")),
        scales=(2, 4), builder=ecbsr, trained_range=255.0, tables=("I",),
        printed_counting=("ptflops (pytorch backend; biases and PReLU outputs counted as MACs) on the re-parameterized "
                          "M16C64: 594,884 / 137.31G at x2 vs printed 596K / 137.3G, 601,808 / 34.73G at x4 vs 603K "
                          "/ 34.7G: Multi-Adds within 0.1%, Params 0.2% under (a 3-channel first conv would add the "
                          "missing 1,152, but ECBSR's code reads Y only). torchsummaryX rule: 136.56G / 34.54G."),
        notes="M16C64 after re-parameterization (one 3x3 conv + PReLU per ECB); a Y-channel network wrapped to "
              "RGB (bicubic Cb, Cr); no released weights.",
    ),
)
