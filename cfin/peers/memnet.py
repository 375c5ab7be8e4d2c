"""MemNet: Tai, Yang, Liu, Xu, "MemNet: A Persistent Memory Network for Image Restoration",
ICCV 2017.

Shapes read from tyshiwo/MemNet @ 10b18e9 (``test/MemNet_M6R6_80C64/MemNet_M6R6_80C64_deploy.prototxt``,
``caffe_files/MemNet_M6R6_80C64/MemNet_M6R6_80C64_train.prototxt``: which parameters are shared;
``test/MemNet_M6R6_80C64/test_MemNet_M6R6_SR.m``: how it is run). There is no PyTorch code: the
names are the paper's (FENet, memory blocks of a recursive unit and a gate unit, ReconNet).

Serves Table I's MemNet rows (x2, x3, x4): the 80-layer M6R6 network (6 memory blocks of 6
recursions, 64 channels). One network for every scale (trained on x2, x3 and x4 together): it
runs at the HR size on the bicubic-upsampled luminance (pre-upsampling). Built here with that
upsampling inside, MATLAB's bicubic (:func:`cfin.peers.luma.matlab_bicubic_upsample`: the
authors trained and tested on MATLAB ``imresize`` outputs), so it takes an LR RGB image in
[0, 255] like every other peer (:func:`cfin.peers.luma.luma_sr`: Y in [0, 1] through the network,
Cb and Cr bicubic).

Every unit is pre-activation (BN, ReLU, conv; Caffe's BatchNorm + Scale is one BatchNorm2d). In a
memory block the two 3x3 convs of the recursive unit are shared by its six recursions (the
train prototxt's ``conv0m_wa`` / ``conv0m_wb``), each recursion with BNs of its own; the
reconstruction conv is shared by the six outputs (``Recon_w``), each with a BN of its own.
Training supervises every block's output; the forward here returns the weighted sum (Eq. 11),
the deploy network's output. The released ``MemNet_M6R6_80C64_SR.caffemodel`` is not in the
stored copy of the repository.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.luma import luma_sr
from cfin.peers.registry import OwnCount, PeerSpec, Source

WIDTH = 64
BLOCKS = 6  # M
RECURSIONS = 6  # R


class PreActConv(nn.Module):
    """BN, ReLU, conv (k x k, 'same' padding): MemNet's unit everywhere.

    Args:
        in_ch: input width.
        out_ch: output width.
        k: kernel size.
    """

    def __init__(self, in_ch: int, out_ch: int, k: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.bn(x)))


class RecursiveUnit(nn.Module):
    """The recursive unit (Fig. 2, Eqs. 4-5): a residual building block (BN-ReLU-conv twice, plus
    its input) applied R times with the same two convs and per-recursion BNs; returns the R
    outputs (the short-term memory).

    Args:
        width: channels.
        recursions: R.
    """

    def __init__(self, width: int = WIDTH, recursions: int = RECURSIONS):
        super().__init__()
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(recursions))
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(recursions))
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for bn1, bn2 in zip(self.bn1, self.bn2):
            x = x + self.conv2(F.relu(bn2(self.conv1(F.relu(bn1(x))))))
            outs.append(x)
        return outs


class MemoryBlock(nn.Module):
    """A memory block (Fig. 2, Eq. 6): the recursive unit, then the gate unit, a BN-ReLU-1x1 conv
    over the long-term memory (FENet's and every earlier block's output, m maps for the m-th
    block) and the R short-term ones, to 64 channels.

    Args:
        index: m, 1-based (the gate's input is (m + R) x width channels).
        width: channels.
        recursions: R.
    """

    def __init__(self, index: int, width: int = WIDTH, recursions: int = RECURSIONS):
        super().__init__()
        self.recursive = RecursiveUnit(width, recursions)
        self.gate = PreActConv((index + recursions) * width, width, 1)

    def forward(self, x: torch.Tensor, long_term: list[torch.Tensor]) -> torch.Tensor:
        return self.gate(torch.cat(long_term + self.recursive(x), dim=1))


class OutputWeights(nn.Module):
    """The M learnable weights w_m of the final output (Eq. 11; Caffe Scale layers without bias),
    initialised to 1/M.

    Args:
        n: M.
    """

    def __init__(self, n: int = BLOCKS):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n,), 1.0 / n))

    def forward(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        return sum(w * y for w, y in zip(self.weight, outputs))


class ReconNet(nn.Module):
    """The reconstruction net (Eqs. 10-11): for each block output, its own BN, ReLU, the shared
    3x3 conv to one channel, plus the network's input; the weighted sum of the M estimates.

    Args:
        width: channels.
        blocks: M.
    """

    def __init__(self, width: int = WIDTH, blocks: int = BLOCKS):
        super().__init__()
        self.bn = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(blocks))
        self.conv = nn.Conv2d(width, 1, 3, padding=1)
        self.w = OutputWeights(blocks)

    def forward(self, x: torch.Tensor, memories: list[torch.Tensor]) -> torch.Tensor:
        return self.w([x + self.conv(F.relu(bn(b))) for bn, b in zip(self.bn, memories)])


class MemNet(nn.Module):
    """MemNet (Fig. 1) on the bicubic-upsampled luminance: FENet (BN-ReLU-conv 1 -> 64), M memory
    blocks with dense long-term connections, ReconNet.

    Args:
        scale: upscaling factor of the bicubic upsampling in front (the weights are the same).
        width: channels (64).
        blocks: M (6).
        recursions: R (6).
    """

    trained_range = 1.0

    def __init__(self, scale: int, width: int = WIDTH, blocks: int = BLOCKS, recursions: int = RECURSIONS):
        super().__init__()
        self.scale = scale
        self.fenet = PreActConv(1, width, 3)
        self.blocks = nn.ModuleList(MemoryBlock(m, width, recursions) for m in range(1, blocks + 1))
        self.recon = ReconNet(width, blocks)

    def luma(self, y: torch.Tensor, y_bicubic: torch.Tensor) -> torch.Tensor:
        """The HR luminance in [0, 1] from the bicubic-upsampled one (the LR ``y`` is not read)."""
        memories = [self.fenet(y_bicubic)]
        for block in self.blocks:
            memories.append(block(memories[-1], memories))
        return self.recon(y_bicubic, memories[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return luma_sr(x, self.scale, self.luma)


def memnet_count(model: nn.Module, shape: tuple[int, int, int, int]) -> tuple[int, int]:
    """MemNet's own count (its paper's 677K): convolution weights only, a shared conv once (no
    biases, BN or output weights); Multi-Adds: those weights x output pixels per call (every conv
    runs at the HR size)."""
    batch, _, h, w = shape
    hr_pixels = batch * h * w * model.scale ** 2
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    params = sum(c.weight.numel() for c in convs)
    recursions = len(model.blocks[0].recursive.bn1)
    calls = {id(c): 1 for c in convs}
    for block in model.blocks:
        calls[id(block.recursive.conv1)] = calls[id(block.recursive.conv2)] = recursions
    calls[id(model.recon.conv)] = len(model.blocks)
    return params, sum(c.weight.numel() * calls[id(c)] for c in convs) * hr_pixels


SPECS = (
    PeerSpec(
        name="memnet",
        title="MemNet",
        paper="Tai, Yang, Liu, Xu, MemNet: A Persistent Memory Network for Image Restoration, ICCV 2017",
        source=Source("tyshiwo/MemNet", "10b18e9", (
            "test/MemNet_M6R6_80C64/MemNet_M6R6_80C64_deploy.prototxt",
            "caffe_files/MemNet_M6R6_80C64/MemNet_M6R6_80C64_train.prototxt",
            "test/MemNet_M6R6_80C64/test_MemNet_M6R6_SR.m")),
        scales=(2, 3, 4),
        builder=MemNet,
        trained_range=MemNet.trained_range,
        tables=("I",),
        printed_counting="own (MemNet's count): 676,992 conv weights vs printed 677K at every scale; the "
                         "torchsummaryX rule and full give 695,497 (+ 1,217 biases, 17,282 BN weights, 6 output "
                         "weights). Multi-Adds printed '-'; own 2,665.00G at x2 and x4, 2,660.84G at x3 (output "
                         "720 x 1278), the paper rule the same plus BN weights per call.",
        own_count=OwnCount("MemNet's count: conv weights only, shared convs once (no biases, BN, output "
                           "weights); Multi-Adds: those weights x output pixels per call, at the HR size",
                           memnet_count),
        notes="Pre-upsampling: the network runs at the HR size on MATLAB-bicubic-upsampled Y; one set of weights "
              "for x2, x3 and x4. Y-channel (Y in [0, 1]), built in RGB [0, 255] around it (cfin.peers.luma). "
              "The output weights w_m start at 1/M (Caffe's Scale layers start at 1).",
    ),
)
