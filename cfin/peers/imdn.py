"""IMDN: Hui, Gao, Yang, Wang, "Lightweight Image Super-Resolution with Information
Multi-distillation Network", ACM Multimedia 2019.

Shapes, widths and key names read from Zheng222/IMDN @ 8f158e6 (``model/architecture.py``:
class ``IMDN``; ``model/block.py``: ``IMDModule``, ``CCALayer``, ``conv_layer``,
``conv_block``, ``pixelshuffle_block``), built as its ``test_IMDN.py`` builds it:
``IMDN(in_nc=3, nf=64, num_modules=6, out_nc=3, upscale=s)``, one network per scale that
differs only in the upsampler's output channels (3 s^2).

Serves Table I's IMDN rows (x2, x3, x4). The released ``IMDN_x{2,3,4}.pth`` (DataParallel
keys, ``module.`` prefix) were trained on RGB in [0, 1]; the network here takes and returns
[0, 255] and converts at its ends.

Table V's IMDB (:mod:`cfin.models.blocks.imdb`) is the same computation at CFIN's width with
other key names. :mod:`cfin.peers.rfdn` reuses the LeakyReLU slope and the upsampler.
"""
from __future__ import annotations

import torch
from torch import nn

from cfin.models.blocks.common import channel_std
from cfin.models.common import conv
from cfin.peers.common import from_trained_range, to_trained_range
from cfin.peers.registry import PeerSpec, Source

LRELU_SLOPE = 0.05  # every LeakyReLU of IMDN's code (and RFDN's)


class CCALayer(nn.Module):
    """Contrast-aware channel attention (IMDN's CCA layer): the per-channel contrast
    ``std + mean`` through a squeeze-excite 1x1-conv MLP (C -> C/r -> C, ReLU, sigmoid),
    multiplied onto the input.

    The public code takes the bare square root of the variance; :func:`channel_std` adds
    1e-12 under it so that a constant channel keeps a finite gradient (below float32's
    rounding step of any variance over 1e-4, where the result is unchanged).

    Args:
        channels: C.
        reduction: r (16 in IMDN).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(channel_std(x) + self.avg_pool(x))


class IMDB(nn.Module):
    """Information multi-distillation block (IMDN's IMDB; the code's ``IMDModule``).

    Progressive refinement: ``c1`` (C -> C), then three times split off ``d = C/4`` distilled
    channels and refine the other ``C - d`` (``c2``, ``c3``: -> C; ``c4``: -> d), all 3x3 with
    LeakyReLU(0.05) but after ``c4``; the four distilled parts (4d = C channels) go through CCA
    and a 1x1 fusion ``c5``, plus the block input.

    Args:
        channels: C (64).
        distillation_rate: d / C (0.25).
    """

    def __init__(self, channels: int, distillation_rate: float = 0.25):
        super().__init__()
        self.distilled = int(channels * distillation_rate)
        self.remaining = channels - self.distilled
        self.c1 = conv(channels, channels, 3)
        self.c2 = conv(self.remaining, channels, 3)
        self.c3 = conv(self.remaining, channels, 3)
        self.c4 = conv(self.remaining, self.distilled, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        self.c5 = conv(channels, channels, 1)
        self.cca = CCALayer(4 * self.distilled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        h = x
        for step in (self.c1, self.c2, self.c3):
            distilled, h = torch.split(self.act(step(h)), (self.distilled, self.remaining), dim=1)
            parts.append(distilled)
        parts.append(self.c4(h))
        return self.c5(self.cca(torch.cat(parts, dim=1))) + x


def pixel_shuffle_upsampler(channels: int, out_channels: int, scale: int) -> nn.Sequential:
    """3x3 conv to ``out_channels * scale^2`` then PixelShuffle (the code's ``pixelshuffle_block``)."""
    return nn.Sequential(conv(channels, out_channels * scale ** 2, 3), nn.PixelShuffle(scale))


class IMDN(nn.Module):
    """IMDN: 3x3 feature conv, ``num_modules`` IMDBs, a 1x1 fusion (+ LeakyReLU) of
    all their outputs, a 3x3 conv plus the features (global skip), and a pixel-shuffle upsampler.
    RFDN keeps this skeleton with its own block (:class:`cfin.peers.rfdn.RFDN`).

    Args:
        scale: upscaling factor.
        in_nc: input channels (3).
        nf: width (64).
        num_modules: number of IMDBs (6), registered as ``IMDB1`` ... as in the code.
        out_nc: output channels (3).
    """

    trained_range = 1.0
    block: type[nn.Module] = IMDB
    block_prefix = "IMDB"  # the blocks' names in the public code: IMDB1, IMDB2, ...

    def __init__(self, scale: int, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3):
        super().__init__()
        self.num_modules = num_modules
        self.fea_conv = conv(in_nc, nf, 3)
        for i in range(1, num_modules + 1):
            self.add_module(f"{self.block_prefix}{i}", self.block(nf))
        self.c = nn.Sequential(conv(nf * num_modules, nf, 1), nn.LeakyReLU(LRELU_SLOPE, inplace=True))
        self.LR_conv = conv(nf, nf, 3)
        self.upsampler = pixel_shuffle_upsampler(nf, out_nc, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.fea_conv(to_trained_range(x, self.trained_range))
        outs, h = [], features
        for i in range(1, self.num_modules + 1):
            h = getattr(self, f"{self.block_prefix}{i}")(h)
            outs.append(h)
        h = self.LR_conv(self.c(torch.cat(outs, dim=1))) + features
        return from_trained_range(self.upsampler(h), self.trained_range)


SPECS = (
    PeerSpec(
        name="imdn",
        title="IMDN",
        paper="Hui, Gao, Yang, Wang, Lightweight Image Super-Resolution with Information Multi-distillation "
              "Network, ACM MM 2019",
        source=Source("Zheng222/IMDN", "8f158e6", ("model/architecture.py", "model/block.py")),
        scales=(2, 3, 4),
        builder=IMDN,
        trained_range=IMDN.trained_range,
        tables=("I",),
        printed_counting="torchsummaryX rule (paper convention; here equal to full: every conv MAC, no biases): "
                         "694,404 / 158.77G (x2), 703,059 / 71.34G (x3), 715,176 / 40.89G (x4) vs printed 694K / "
                         "158.8G, 703K / 71.5G, 715K / 40.9G; the printed x3 is at a 240 x 427 LR input (1280 / 3 "
                         "rounded up): 71.50G there (--lr-size 240x427).",
        weights={2: "IMDN_x2.pth", 3: "IMDN_x3.pth", 4: "IMDN_x4.pth"},
    ),
)
