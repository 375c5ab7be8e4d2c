"""IDN: Hui, Wang, Gao, "Fast and Accurate Single Image Super-Resolution via Information
Distillation Network", CVPR 2018.

Shapes read from Zheng222/IDN-Caffe @ 482c601 (``test/IDN_x{2,3,4}_deploy.prototxt``, the
networks of the released ``test/caffemodel/IDN_x{2,3,4}.caffemodel``, trained on the 291
images; ``test/test_IDN.m``: how they are run). There is no PyTorch code: the Caffe layer names
(``conv3_1`` ... ``down4``, ``upsample``) and those of the TensorFlow port (Zheng222/IDN-tensorflow,
an RGB variant with a sub-pixel upsampler and other widths, 579K-600K params) do not apply; the
names here are the paper's (FBlock, DBlocks of an enhancement and a compression unit, RBlock).

Serves Table I's IDN rows (x2, x3, x4): the Caffe network, 552,769 params at every scale (the
repository's README; printed 553K). It works on the luminance: Y in [0, 1] in, the residual to
MATLAB's bicubic upsampling out (:func:`cfin.peers.luma.luma_sr` takes and returns RGB in
[0, 255]: Cb and Cr are bicubic).

Where it differs from the Caffe network: Caffe's 17 x 17 transposed conv (stride s, pad 8)
returns ``(H - 1) s + 1`` rows, aligned with the HR rows from ``s - 1`` on (``mycrop.m`` drops
the first ``s - 1`` bicubic rows to match). Here the same layer runs on the features padded by
one zero row and column at the top left and its first output row and column are dropped: the
``s H x s W`` image whose rows and columns from ``s - 1`` on are Caffe's exactly, the first
``s - 1`` computed by the same kernel.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.luma import luma_sr
from cfin.peers.registry import PeerSpec, Source

LRELU_SLOPE = 0.05  # every activation of IDN (Caffe ReLU with negative_slope 0.05)
WIDTH = 64  # D3 in the paper: the width between blocks
DISTILLED = 16  # D3 / s with s = 4: the channels the enhancement unit keeps aside
GROUPS = 4  # the grouped convolutions (2nd and 5th of each enhancement unit)
KERNEL = 17  # the reconstruction block's transposed conv


def _conv(in_ch: int, out_ch: int, k: int = 3, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, k, padding=k // 2, groups=groups)


class FBlock(nn.Module):
    """The feature extraction block: two 3x3 convs (1 -> 64 -> 64), each with LReLU(0.05).

    Args:
        width: output width (64).
    """

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.conv1 = _conv(1, width)
        self.conv2 = _conv(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), LRELU_SLOPE)), LRELU_SLOPE)


class EnhancementUnit(nn.Module):
    """The enhancement unit (Fig. 3): the upper module (3x3 convs 64 -> 48 -> 32 (4 groups) ->
    64) whose output is sliced into 16 channels concatenated with the input (64 + 16 = 80) and
    48 fed to the lower module (48 -> 64 -> 48 (4 groups) -> 80); the sum of the two 80-channel
    maps. Every conv is followed by LReLU(0.05).

    Args:
        width: input width (64); the output has ``width + DISTILLED`` channels.
    """

    def __init__(self, width: int = WIDTH):
        super().__init__()
        rest = width - DISTILLED
        self.conv1 = _conv(width, width - DISTILLED)
        self.conv2 = _conv(width - DISTILLED, width // 2, groups=GROUPS)
        self.conv3 = _conv(width // 2, width)
        self.conv4 = _conv(rest, width)
        self.conv5 = _conv(width, rest, groups=GROUPS)
        self.conv6 = _conv(rest, width + DISTILLED)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in (self.conv1, self.conv2, self.conv3):
            h = F.leaky_relu(conv(h), LRELU_SLOPE)
        kept, h = h.split((DISTILLED, h.shape[1] - DISTILLED), dim=1)
        for conv in (self.conv4, self.conv5, self.conv6):
            h = F.leaky_relu(conv(h), LRELU_SLOPE)
        return torch.cat([x, kept], dim=1) + h


class DBlock(nn.Module):
    """An information distillation block: the enhancement unit, then the compression unit
    (1x1 conv 80 -> 64 with LReLU(0.05)).

    Args:
        width: width (64).
    """

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.enhancement = EnhancementUnit(width)
        self.compression = nn.Conv2d(width + DISTILLED, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.compression(self.enhancement(x)), LRELU_SLOPE)


class RBlock(nn.Module):
    """The reconstruction block: a 17 x 17 transposed conv, stride s, 64 -> 1, aligned to the
    HR grid (module docstring).

    Args:
        scale: upscaling factor (the stride).
        width: input width (64).
    """

    def __init__(self, scale: int, width: int = WIDTH):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(width, 1, KERNEL, stride=scale, padding=KERNEL // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(F.pad(x, (1, 0, 1, 0)))[..., 1:, 1:]


class IDN(nn.Module):
    """IDN (Fig. 2): FBlock, four DBlocks, RBlock, plus the bicubic-upsampled input, on Y.

    Args:
        scale: upscaling factor.
        width: width (64).
        n_blocks: DBlocks (4).
    """

    trained_range = 1.0

    def __init__(self, scale: int, width: int = WIDTH, n_blocks: int = 4):
        super().__init__()
        self.scale = scale
        self.fblock = FBlock(width)
        self.dblocks = nn.Sequential(*(DBlock(width) for _ in range(n_blocks)))
        self.rblock = RBlock(scale, width)

    def luma(self, y: torch.Tensor, y_bicubic: torch.Tensor) -> torch.Tensor:
        """Y in [0, 1] -> SR Y in [0, 1]: the network's residual plus the bicubic upsampling."""
        return self.rblock(self.dblocks(self.fblock(y))) + y_bicubic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return luma_sr(x, self.scale, self.luma)


def caffe_key(key: str) -> str:
    """A key of the Caffe network (``<layer>.weight`` / ``.bias``, the layer names of the deploy
    prototxt) -> ours; any other key unchanged."""
    layer, dot, blob = key.rpartition(".")
    if m := re.fullmatch(r"conv(\d)_(\d)", layer):
        layer = f"dblocks.{int(m[1]) - 3}.enhancement.conv{m[2]}"
    elif m := re.fullmatch(r"down(\d)", layer):
        layer = f"dblocks.{int(m[1]) - 1}.compression"
    else:
        layer = {"conv1": "fblock.conv1", "conv2": "fblock.conv2", "upsample": "rblock.deconv"}.get(layer, layer)
    return layer + dot + blob


SPECS = (
    PeerSpec(
        name="idn",
        title="IDN",
        paper="Hui, Wang, Gao, Fast and Accurate Single Image Super-Resolution via Information Distillation "
              "Network, CVPR 2018",
        source=Source("Zheng222/IDN-Caffe", "482c601", ("test/IDN_x2_deploy.prototxt", "test/IDN_x3_deploy.prototxt",
                                                        "test/IDN_x4_deploy.prototxt", "test/test_IDN.m")),
        scales=(2, 3, 4),
        builder=IDN,
        trained_range=IDN.trained_range,
        tables=("I",),
        printed_counting="Params: 552,769 under every convention (the Caffe repository's README; printed 553K). "
                         "Multi-Adds not reproduced: full (every conv MAC, the transposed conv at its LR input) "
                         "126.99G / 56.36G / 31.76G, the torchsummaryX rule (the transposed conv charged weight x its "
                         "HR output) 139.78G / 71.50G / 47.76G, vs printed 124.6G / 56.3G / 32.3G. The three printed "
                         "fit ~534K MACs per LR pixel (the convs' 532,544 + 1,728 biases) plus ~1.55G at every "
                         "scale, which no count of the 17 x 17 transposed conv gives.",
        key_map=caffe_key,
        notes="A Y-channel Caffe network (Y in [0, 1]); built in RGB [0, 255] around it with MATLAB's bicubic for "
              "the residual's base and for Cb/Cr (cfin.peers.luma). Released weights are Caffe .caffemodel files "
              "(not PyTorch state_dicts).",
    ),
)
