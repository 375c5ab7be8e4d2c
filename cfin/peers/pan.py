"""PAN: Zhao, Kong, He, Qiao, Dong, "Efficient Image Super-Resolution Using Pixel Attention",
ECCV Workshops (AIM 2020).

Shapes, widths and key names read from zhaohengyuan1/PAN @ 4d045d1
(``codes/models/archs/PAN_arch.py``: ``PA``, ``PAConv``, ``SCPA``, ``PAN``; ``arch_util.make_layer``),
built as its ``codes/options/test/test_PANx{2,3,4}.yml`` build it:
``PAN(in_nc=3, out_nc=3, nf=40, unf=24, nb=16, scale=s)``. The reconstruction differs by scale:
x2 and x3 have one U-PA stage (nearest x s, conv, PA, conv), x4 has two (nearest x2 each), so
the x4 network has three more layers (``upconv2``, ``att2``, ``HRconv2``).

Serves Table IX's PAN row (x4); x2 and x3 are registered as released. The released
``PANx{2,3,4}_DF2K.pth`` were trained on RGB in [0, 1]; the network here takes and returns
[0, 255] and converts at its ends.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.common import from_trained_range, to_trained_range
from cfin.peers.registry import PeerSpec, Source

LRELU_SLOPE = 0.2  # PAN's LeakyReLUs


class PA(nn.Module):
    """Pixel attention (PAN's PA): ``x * sigmoid(conv1x1(x))``, a C x H x W attention map.

    Args:
        nf: channels.
    """

    def __init__(self, nf: int):
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """The attention branch of PAN's SC-PA block: a 3x3 conv ``k3``
    weighted by the pixel attention ``sigmoid(k2(x))`` of the branch input, then a 3x3 conv ``k4``.

    Args:
        nf: channels.
        k_size: kernel size of ``k3`` and ``k4`` (3).
    """

    def __init__(self, nf: int, k_size: int = 3):
        super().__init__()
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.sigmoid = nn.Sigmoid()
        self.k3 = nn.Conv2d(nf, nf, k_size, padding=(k_size - 1) // 2, bias=False)
        self.k4 = nn.Conv2d(nf, nf, k_size, padding=(k_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k4(self.k3(x) * self.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated convolution with pixel attention (PAN's SC-PA block): two 1x1 convs split the
    input into two ``nf / reduction`` branches (LeakyReLU 0.2); one a plain 3x3 conv ``k1``, the
    other :class:`PAConv`; each LeakyReLU again, concatenated, fused by a 1x1 conv ``conv3``,
    plus the input. No biases but PAConv's ``k2``.

    Args:
        nf: channels (40).
        reduction: branch width divisor (2).
    """

    def __init__(self, nf: int, reduction: int = 2):
        super().__init__()
        width = nf // reduction
        self.conv1_a = nn.Conv2d(nf, width, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, width, 1, bias=False)
        self.k1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False))
        self.PAConv = PAConv(width)
        self.conv3 = nn.Conv2d(width * reduction, nf, 1, bias=False)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return self.conv3(torch.cat([a, b], dim=1)) + x


class PAN(nn.Module):
    """PAN: 3x3 conv, ``nb`` SC-PA blocks and a 3x3 conv with a global skip, then U-PA
    reconstruction (nearest upsampling, 3x3 conv ``upconv``, :class:`PA` ``att``, 3x3 conv
    ``HRconv``; LeakyReLU 0.2 after att and HRconv): once by ``scale`` at x2 and x3, twice by 2
    at x4; a last 3x3 conv, plus the bilinear upsampling of the input (``align_corners=False``).

    Args:
        scale: upscaling factor (2, 3 or 4).
        in_nc: input channels (3).
        out_nc: output channels (3).
        nf: trunk width (40).
        unf: reconstruction width (24).
        nb: number of SC-PA blocks (16).
    """

    trained_range = 1.0

    def __init__(self, scale: int, in_nc: int = 3, out_nc: int = 3, nf: int = 40, unf: int = 24, nb: int = 16):
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*(SCPA(nf, reduction=2) for _ in range(nb)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PA(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PA(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, out_nc, 3, padding=1)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)

    def _upa(self, x: torch.Tensor, factor: int, upconv: nn.Module, att: nn.Module, hrconv: nn.Module):
        """One U-PA stage: nearest upsampling, conv, PA, conv."""
        x = upconv(F.interpolate(x, scale_factor=factor, mode="nearest"))
        return self.lrelu(hrconv(self.lrelu(att(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_trained_range(x, self.trained_range)
        features = self.conv_first(x)
        h = features + self.trunk_conv(self.SCPA_trunk(features))
        if self.scale == 4:
            h = self._upa(h, 2, self.upconv1, self.att1, self.HRconv1)
            h = self._upa(h, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            h = self._upa(h, self.scale, self.upconv1, self.att1, self.HRconv1)
        out = self.conv_last(h) + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return from_trained_range(out, self.trained_range)


SPECS = (
    PeerSpec(
        name="pan",
        title="PAN",
        paper="Zhao, Kong, He, Qiao, Dong, Efficient Image Super-Resolution Using Pixel Attention, "
              "ECCV Workshops (AIM 2020)",
        source=Source("zhaohengyuan1/PAN", "4d045d1", ("codes/models/archs/PAN_arch.py",
                                                       "codes/models/archs/arch_util.py")),
        scales=(2, 3, 4),
        builder=PAN,
        trained_range=PAN.trained_range,
        tables=("IX",),
        printed_counting="torchsummaryX rule (paper convention, as PAN's codes/test_summary.py counts; here equal to "
                         "full): 272,419 / 28.16G at x4 vs Table IX's 272K / 28.2G; x2 261,403 / 70.52G and x3 "
                         "261,403 / 38.99G vs PAN's paper 261K / 70.5G and 261K / 39.0G.",
        weights={2: "PANx2_DF2K.pth", 3: "PANx3_DF2K.pth", 4: "PANx4_DF2K.pth"},
        notes="Table IX prints x4 only; x2 and x3 are the released networks (one U-PA stage instead of two).",
    ),
)
