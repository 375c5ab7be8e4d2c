"""CARN: Ahn, Kang, Sohn, "Fast, Accurate, and Lightweight Super-Resolution with Cascading
Residual Network", ECCV 2018.

Shapes, widths and key names read from nmhkahn/CARN-pytorch @ 40d3514 (``carn/model/carn.py``:
``Block``, ``Net``; ``carn/model/ops.py``: ``MeanShift``, ``BasicBlock``, ``ResidualBlock``,
``UpsampleBlock``, ``_UpsampleBlock``).

Serves Table I's CARN rows (x2, x3, x4). The paper's CARN is one multi-scale network: a shared
body and three upsamplers (x2, x3, x4), one of which runs per forward (``Net(multi_scale=True)``,
the released ``checkpoint/carn.pth``). The registry builds one network per scale with that
scale's upsampler only (the code's ``multi_scale=False`` option: key ``upsample.up``), so that
every parameter it holds is used. The printed 1592K counts the multi-scale network, all three
upsamplers: :func:`carn_count` (the ``own`` convention) reproduces it.

Trained on RGB in [0, 1] (the mean shifts hold the DIV2K mean in [0, 1]); the network here
takes and returns [0, 255] and converts at its ends.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.common import RGB_MEAN_DIV2K, from_trained_range, to_trained_range
from cfin.peers.registry import OwnCount, PeerSpec, Source

WIDTH = 64  # every feature map of CARN
HR_PIXELS = 1280 * 720  # the output CARN's paper counts Mult-Adds at


class MeanShift(nn.Module):
    """Adds (``sub=False``) or subtracts the RGB mean as a frozen 1x1 conv ``shifter``.

    Args:
        mean_rgb: the per-channel mean in the trained range.
        sub: subtract (True) or add (False).
    """

    def __init__(self, mean_rgb=RGB_MEAN_DIV2K, sub: bool = True):
        super().__init__()
        sign = -1.0 if sub else 1.0
        self.shifter = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(mean_rgb))
        for p in self.shifter.parameters():
            p.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class BasicBlock(nn.Module):
    """Conv + ReLU (``body``): the 1x1 cascading fusions of Fig. 2.

    Args:
        in_channels: input width.
        out_channels: output width.
        ksize: kernel size.
    """

    def __init__(self, in_channels: int, out_channels: int, ksize: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, out_channels, ksize, padding=ksize // 2),
                                  nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    """The residual block of Fig. 3(b): conv 3x3, ReLU, conv 3x3, plus the input, then ReLU.

    Args:
        channels: width.
    """

    def __init__(self, channels: int = WIDTH):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + x)


def cascade(x: torch.Tensor, blocks, fusions) -> torch.Tensor:
    """The cascading mechanism (Fig. 2, Eqs. 3-4): after each block, the concatenation of the
    input and every block output so far is fused by a 1x1 conv, which feeds the next block."""
    concat = out = x
    for block, fuse in zip(blocks, fusions):
        concat = torch.cat([concat, block(out)], dim=1)
        out = fuse(concat)
    return out


class Block(nn.Module):
    """The cascading block (Fig. 2(b)): three residual blocks with local cascading (1x1 fusions
    over 2, 3 and 4 x 64 channels).

    Args:
        channels: width (64).
    """

    def __init__(self, channels: int = WIDTH):
        super().__init__()
        self.b1, self.b2, self.b3 = (ResidualBlock(channels) for _ in range(3))
        self.c1, self.c2, self.c3 = (BasicBlock(channels * k, channels) for k in (2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cascade(x, (self.b1, self.b2, self.b3), (self.c1, self.c2, self.c3))


class _UpsampleBlock(nn.Module):
    """Sub-pixel upsampling: (3x3 conv to 4C, ReLU, shuffle 2) twice at x4, once at x2; 3x3 conv
    to 9C, ReLU, shuffle 3 at x3.

    Args:
        channels: width.
        scale: 2, 3 or 4.
    """

    def __init__(self, channels: int, scale: int):
        super().__init__()
        steps = [2] * (scale // 2) if scale in (2, 4) else [3]
        layers = []
        for r in steps:
            layers += [nn.Conv2d(channels, channels * r * r, 3, padding=1), nn.ReLU(inplace=True), nn.PixelShuffle(r)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsampleBlock(nn.Module):
    """The upsampler of one scale, registered as ``up`` (the code's single-scale layout).

    Args:
        channels: width.
        scale: 2, 3 or 4.
    """

    def __init__(self, channels: int, scale: int):
        super().__init__()
        self.up = _UpsampleBlock(channels, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class CARN(nn.Module):
    """CARN (Fig. 2(a)): mean shift, 3x3 entry conv, three cascading blocks with global
    cascading (1x1 fusions ``c1``-``c3``), the upsampler, a 3x3 exit conv, mean shift back.

    Args:
        scale: upscaling factor (its upsampler is the only one built).
        channels: width (64).
    """

    trained_range = 1.0

    def __init__(self, scale: int, channels: int = WIDTH):
        super().__init__()
        self.sub_mean = MeanShift(RGB_MEAN_DIV2K, sub=True)
        self.add_mean = MeanShift(RGB_MEAN_DIV2K, sub=False)
        self.entry = nn.Conv2d(3, channels, 3, padding=1)
        self.b1, self.b2, self.b3 = (Block(channels) for _ in range(3))
        self.c1, self.c2, self.c3 = (BasicBlock(channels * k, channels) for k in (2, 3, 4))
        self.upsample = UpsampleBlock(channels, scale)
        self.exit = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(self.sub_mean(to_trained_range(x, self.trained_range)))
        x = cascade(x, (self.b1, self.b2, self.b3), (self.c1, self.c2, self.c3))
        return from_trained_range(self.add_mean(self.exit(self.upsample(x))), self.trained_range)


def carn_count(model: nn.Module, shape: tuple[int, int, int, int]) -> tuple[int, int]:
    """CARN's own count: Params of the multi-scale network (the shared body, both mean shifts and
    the x2, x3 and x4 upsamplers); Mult-Adds of every conv (``weight.numel()`` x output pixels, no
    biases) for an SR output of exactly 1280 x 720 (at x3 an LR of 102,400 pixels, 426.67 x 240).

    The Mult-Adds are the torchsummaryX rule's per LR pixel (every conv of CARN runs at the LR
    size or at s^2 times it) times ``1280 * 720 / s^2``.
    """
    from cfin.complexity.paper import count_paper

    batch, _, h, w = shape
    scale = model.scale
    channels = model.entry.out_channels
    with torch.device("meta"):
        upsamplers = [UpsampleBlock(channels, s) for s in (2, 3, 4)]
    own = sum(p.numel() for p in model.upsample.parameters())
    params = (sum(p.numel() for p in model.parameters()) - own
              + sum(p.numel() for up in upsamplers for p in up.parameters()))
    macs = count_paper(model, (h, w), batch).multi_adds
    per_lr_pixel, rest = divmod(macs, batch * h * w)
    assert rest == 0, "every conv of CARN runs at the LR size or at an integer multiple of it"
    return params, batch * per_lr_pixel * HR_PIXELS // scale ** 2


SPECS = (
    PeerSpec(
        name="carn",
        title="CARN",
        paper="Ahn, Kang, Sohn, Fast, Accurate, and Lightweight Super-Resolution with Cascading Residual Network, "
              "ECCV 2018",
        source=Source("nmhkahn/CARN-pytorch", "40d3514", ("carn/model/carn.py", "carn/model/ops.py")),
        scales=(2, 3, 4),
        builder=CARN,
        trained_range=CARN.trained_range,
        tables=("I",),
        printed_counting="own (CARN's count, see own_count): the multi-scale network's 1,591,963 params (body "
                         "816,475 incl. mean shifts + upsamplers x2 147,712, x3 332,352, x4 295,424) vs printed "
                         "1592K at every scale; Mult-Adds 222,831,129,600 / 118,799,769,600 / 90,882,259,200 vs "
                         "printed 222.8G / 118.8G / 90.9G. The per-scale network under the torchsummaryX rule: "
                         "964,187 / 1,148,827 / 1,111,899 params, the same Mult-Adds at x2 and x4, 118.61G at x3 "
                         "(LR 240 x 426; 118.89G at 240 x 427): the printed x3 is at exactly 1280 x 720 output.",
        own_count=OwnCount(
            "CARN's count: params of the multi-scale network (x2, x3 and x4 upsamplers); every conv's "
            "weight x output pixels at exactly 1280 x 720 output (LR 1280*720/s^2 pixels), no biases",
            carn_count,
        ),
        notes="One network per scale with that scale's upsampler (key upsample.up); the released carn.pth is the "
              "multi-scale network (keys upsample.up2/up3/up4) and would load here only after its other two "
              "upsamplers are dropped and upsample.up{s} is renamed upsample.up. It is not in the stored copy of "
              "the repository (a large file listed but absent), nor in ../shared/reference/peers.",
    ),
)
