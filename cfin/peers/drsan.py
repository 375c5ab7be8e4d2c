"""DRSAN: Park, Soh, Cho, "A Dynamic Residual Self-Attention Network for Lightweight Single Image
Super-Resolution", IEEE Transactions on Multimedia 2021 (vol. 25, 2023).

Shapes read from saturnian77/DRSAN @ 8841874 (``model.py``: ``DRSAN32``, ``DRSAN48``; ``ops.py``:
``pReLU``, ``resmod``, ``upsample_x2/x3/x4``; ``build.py``: the variants, 32s/32m/32l = width
32 with 4/8/10 blocks, 48s/48m = width 48 with 4/8 blocks). The public code is TensorFlow 1.x
(``tf.layers`` with generated variable names): its names do not apply, the names here are the
paper's (DRAG, DRM, RB, RSA).

Serves Table I's DRSAN rows (x2, x3, x4): DRSAN-32m (8 DRAGs of width 32), whose 688,851 /
735,091 / 725,843 params are the printed 690K / 740K / 730K (the DRSAN paper's 0.69M / 0.74M /
0.73M). Trained on RGB in [0, 1] (no mean shift); the network here takes and returns [0, 255]
and converts at its ends. The released TensorFlow checkpoints are not in the stored copy of the
repository (their data files are listed but absent). Converting one would need the variable
order of ``tf.layers`` and TensorFlow's ``depth_to_space`` channel order (channels last: the
sub-pixel index before the feature index, where ``nn.PixelShuffle`` takes the feature first).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from cfin.complexity.counts import meta_forward
from cfin.peers.common import from_trained_range, to_trained_range
from cfin.peers.registry import OwnCount, PeerSpec, Source

DRM_WIDTH = 16  # the DRM's hidden 1x1 width


class RB(nn.Module):
    """A residual block's body (Fig. 3): PReLU, 3x3 conv, PReLU, 3x3 conv (pre-activation; the
    PReLUs are per channel and start at 0, i.e. as ReLUs).

    Args:
        width: channels.
    """

    def __init__(self, width: int):
        super().__init__()
        self.prelu1 = nn.PReLU(width, init=0.0)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.prelu2 = nn.PReLU(width, init=0.0)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.prelu2(self.conv1(self.prelu1(x))))


class DRM(nn.Module):
    """The dynamic residual module (Eq. 4): 1x1 conv to 16, PReLU, 1x1 conv to one weight per
    residual path, averaged over the image: the dynamic residual attention (DRA), B x K x 1 x 1.

    Args:
        width: input channels.
        paths: K = n (n + 1) / 2 residual paths for n RBs.
    """

    def __init__(self, width: int, paths: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, DRM_WIDTH, 1)
        self.prelu = nn.PReLU(DRM_WIDTH, init=0.0)
        self.conv2 = nn.Conv2d(DRM_WIDTH, paths, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.prelu(self.conv1(x))).mean(dim=(2, 3), keepdim=True)


class DRAG(nn.Module):
    """The dynamic residual attention group (Fig. 2-3, Eqs. 3-6): n RBs in a chain; the n-th
    output is DRSA's ``(r_n + sum_k a_nk f_k) * sigmoid(r_n)`` over the group input f_0 and every
    earlier output f_k, with the DRA weights a from the DRM on the group input (the sigmoid of
    the RB's own output is the residual self-attention, RSA); a 1x1 conv fuses [f_0, ..., f_n].

    Args:
        width: channels.
        n_rbs: RBs per group (4 at width 32, 3 at width 48).
    """

    def __init__(self, width: int, n_rbs: int):
        super().__init__()
        self.drm = DRM(width, n_rbs * (n_rbs + 1) // 2)
        self.rbs = nn.ModuleList(RB(width) for _ in range(n_rbs))
        self.fuse = nn.Conv2d(width * (n_rbs + 1), width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dra = self.drm(x)
        feats, offset = [x], 0
        for rb in self.rbs:
            r = rb(feats[-1])
            paths = sum(f * dra[:, offset + k:offset + k + 1] for k, f in enumerate(feats))
            offset += len(feats)
            feats.append((r + paths) * torch.sigmoid(r))
        return self.fuse(torch.cat(feats, dim=1))


def upsampler(width: int, scale: int) -> nn.Sequential:
    """3x3 conv to width r^2 and a shuffle by r (no activation); twice with r = 2 at x4."""
    steps = [2, 2] if scale == 4 else [scale]
    layers = []
    for r in steps:
        layers += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class DRSAN(nn.Module):
    """DRSAN (Fig. 2): 3x3 head conv, the DRAGs, a 3x3 conv plus the head's output, the
    sub-pixel upsampler, a 3x3 conv to RGB.

    Args:
        scale: upscaling factor.
        width: channels (32 for DRSAN-32m).
        n_groups: DRAGs (8 for the "m" models).
        n_rbs: RBs per DRAG (4 at width 32, 3 at width 48 in the public code).
    """

    trained_range = 1.0

    def __init__(self, scale: int, width: int = 32, n_groups: int = 8, n_rbs: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.drags = nn.Sequential(*(DRAG(width, n_rbs) for _ in range(n_groups)))
        self.body_conv = nn.Conv2d(width, width, 3, padding=1)
        self.upsampler = upsampler(width, scale)
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(to_trained_range(x, self.trained_range))
        h = self.body_conv(self.drags(h)) + h
        return from_trained_range(self.tail(self.upsampler(h)), self.trained_range)


HR_PIXELS = 1280 * 720


def drsan_count(model: nn.Module, shape: tuple[int, int, int, int]) -> tuple[int, int]:
    """The count that reproduces DRSAN's printed Mult-Adds: every conv's multiply-accumulates plus
    its bias adds, and one operation per PReLU output (thop's rules for Conv2d and PReLU), for an
    SR output of exactly 1280 x 720 (at x3 an LR of 102,400 pixels); params: all of them."""
    batch, _, h, w = shape
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        positions = output.shape[0] * math.prod(output.shape[2:])
        if isinstance(module, nn.Conv2d):
            total += (module.weight.numel() + (module.out_channels if module.bias is not None else 0)) * positions
        else:
            total += output.numel()

    meta_forward(model, shape, [(m, hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.PReLU))])
    per_lr_pixel, rest = divmod(total, batch * h * w)
    assert rest == 0, "every layer of DRSAN runs at the LR size or at an integer multiple of it"
    return sum(p.numel() for p in model.parameters()), batch * per_lr_pixel * HR_PIXELS // model.scale ** 2


SPECS = (
    PeerSpec(
        name="drsan",
        title="DRSAN",
        paper="Park, Soh, Cho, A Dynamic Residual Self-Attention Network for Lightweight Single Image "
              "Super-Resolution, IEEE TMM 2021",
        source=Source("saturnian77/DRSAN", "8841874", ("model.py", "ops.py", "build.py")),
        scales=(2, 3, 4),
        builder=DRSAN,
        trained_range=DRSAN.trained_range,
        tables=("I",),
        printed_counting="own (see own_count): 159.31G / 75.98G / 48.95G vs printed 159.3G / 76.0G / 49.0G "
                         "(x4 0.1% under); params 688,851 / 735,091 / 725,843 under every convention vs printed "
                         "690K / 740K / 730K (the DRSAN paper's 0.69M / 0.74M / 0.73M). The torchsummaryX rule "
                         "and full (conv weights only) give 158.18G / 75.35G / 48.64G, ptflops 159.81G / 76.09G / "
                         "49.08G (x3 at LR 240 x 426).",
        own_count=OwnCount("conv MACs + bias adds + one per PReLU output (thop's Conv2d and PReLU rules) at "
                           "exactly 1280 x 720 output; all params", drsan_count),
        notes="DRSAN-32m (width 32, 8 DRAGs of 4 RBs), the variant whose params are the printed ones. TensorFlow "
              "code: names from the paper; the released checkpoints are not in the stored repository.",
    ),
)
