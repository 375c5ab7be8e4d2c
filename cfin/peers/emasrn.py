"""EMASRN (Table I, "EMASRN+", x3 / x4; Params only).

Paper: X. Zhu, K. Guo, S. Ren, B. Hu, M. Hu, H. Fang, "Lightweight Image Super-Resolution with
Expectation-Maximization Attention Mechanism", IEEE TCSVT, 2021.

Shapes and key names: xyzhu1/EMASRN @ 8ded88c, ``networks/csunet_arch.py`` (the network, public
class ``CSUNET``), ``networks/EMANET_EMAU.py``, ``networks/deeplabv3_aspp.py``, ``networks/blocks.py``
and ``options/test/test_example_x{3,4}.json`` (``num_features`` 32, ``num_steps`` 4,
``num_groups`` 3, ``rgb_range`` 255). An SRFBN-style feedback network whose feedback block adds an
ASPP and an expectation-maximization attention unit (EMAU). The repository's ``models/x3.pth``
and ``models/x4.pth`` are not in its stored copy (not in shared/reference/peers either).

Input: RGB in [0, 255] (EDSR-style mean shifts inside). Table I's "+" is the x8 self-ensemble.

Where this network differs from the public code (none of it changes a parameter or an eval-mode
output): the public forward returns the image of each of the 4 feedback steps (its training loss
uses all of them, its test keeps the last); this one returns the last and reconstructs only it.
The ASPP image-pool branch's BatchNorm sees one value per channel on a batch of one image: in
training mode the public code raises there; this one normalises it with the running statistics.
The ASPP's dropout, never called, is left out.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cfin.peers.common import MeanShift
from cfin.peers.registry import PeerSpec, Source

N_FEATS = 32
N_STEPS = 4
N_GROUPS = 3
PRELU_INIT = 0.2
ASPP_DILATIONS = (1, 6, 12, 18)  # output_stride 16
EM_BASES = 64                    # k, the EMAU's bases
EM_STAGES = 3                    # EM iterations
EMAU_BN_MOMENTUM = 3e-4
EPS = 1e-6
# The projection convolutions per scale: kernel, stride, padding (x s exactly).
PROJECTION = {2: (6, 2, 2), 3: (7, 3, 2), 4: (8, 4, 2)}


def _conv_prelu(cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    """The public ``ConvBlock`` with PReLU: conv (key ``0``, 'same' padding unless given), PReLU (key ``1``)."""
    padding = (k - 1) // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=padding),
                         nn.PReLU(num_parameters=1, init=PRELU_INIT))


def _deconv_prelu(channels: int, scale: int) -> nn.Sequential:
    """The public ``DeconvBlock``: transposed conv x s (key ``0``), PReLU (key ``1``)."""
    k, stride, padding = PROJECTION[scale]
    return nn.Sequential(nn.ConvTranspose2d(channels, channels, k, stride=stride, padding=padding),
                         nn.PReLU(num_parameters=1, init=PRELU_INIT))


class BatchNormOneValue(nn.BatchNorm2d):
    """BatchNorm2d that, in training, normalises a batch holding one value per channel (one image's
    pooled 1 x 1 map) with its running statistics, where ``F.batch_norm`` would raise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class ASPPBranch(nn.Module):
    """The first ASPP branch: 1x1 conv (no bias), BN, ReLU; also returns the conv's output.
    Public class: ``_ASPPModule``.

    Args:
        channels: C in and out.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.atrous_conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.atrous_conv(x)
        return self.relu(self.bn(y)), y


class ASPPChainBranch(nn.Module):
    """A dilated ASPP branch chained to the previous one: ``y = conv1x1([atrous(x), y_prev])`` (+ PReLU),
    then BN and ReLU; returns both. Public class: ``_ASPPModule2``.

    Args:
        channels: C in and out.
        dilation: the 3x3 conv's dilation (and padding).
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.atrous_conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv = _conv_prelu(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, y_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(torch.cat((self.atrous_conv(x), y_prev), dim=1))
        return self.relu(self.bn(y)), y


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3) as EMASRN chains it (Sec. III, Fig. 3): a 1x1 branch,
    three dilated 3x3 branches (6, 12, 18) each fed the previous branch's pre-BN output, and an
    image-pool branch; the five outputs concatenated and fused by a 1x1 conv (no bias).

    Args:
        channels: C (32).
    """

    def __init__(self, channels: int = N_FEATS):
        super().__init__()
        self.aspp1 = ASPPBranch(channels)
        self.aspp2 = ASPPChainBranch(channels, ASPP_DILATIONS[1])
        self.aspp3 = ASPPChainBranch(channels, ASPP_DILATIONS[2])
        self.aspp4 = ASPPChainBranch(channels, ASPP_DILATIONS[3])
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1, bias=False),
                                             BatchNormOneValue(channels), nn.ReLU())
        self.conv1 = nn.Conv2d(5 * channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, y = self.aspp1(x)
        x2, y = self.aspp2(x, y)
        x3, y = self.aspp3(x, y)
        x4, _ = self.aspp4(x, y)
        x5 = F.interpolate(self.global_avg_pool(x), size=x4.shape[2:], mode="bilinear", align_corners=True)
        return self.conv1(torch.cat((x1, x2, x3, x4, x5), dim=1))


def l2_normalize(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x / (1e-6 + ||x||_2)`` along ``dim``."""
    return x / (EPS + x.norm(dim=dim, keepdim=True))


class EMAU(nn.Module):
    """Expectation-maximization attention unit (Sec. III-B, eq. (12)-(14); EMANet's EMAU) run at HR
    resolution: 1x1 conv C -> s^2 C and pixel shuffle; ``EM_STAGES`` E steps (softmax of the
    features against the k bases ``mu``) and M steps (bases = responsibility-weighted feature means,
    L2-normalised), without gradient; the features rebuilt from the bases, pixel-unshuffled to LR,
    ReLU, 1x1 conv s^2 C -> C (no bias) + BN, plus the input, ReLU.

    As in the public code (and EMANet), the EM iterations run under ``no_grad`` and the output is
    rebuilt from them alone, so ``conv1`` never receives a gradient. ``mu`` is a buffer (in the
    checkpoint), not learned.

    Args:
        channels: C.
        bases: k.
        scale: s.
        stages: EM iterations.
    """

    def __init__(self, channels: int = N_FEATS, bases: int = EM_BASES, scale: int = 4, stages: int = EM_STAGES):
        super().__init__()
        self.stages = stages
        mu = torch.empty(1, channels, bases).normal_(0, math.sqrt(2.0 / bases))
        self.register_buffer("mu", l2_normalize(mu, dim=1))
        self.conv1 = nn.Conv2d(channels, scale * scale * channels, 1)
        self.conv2 = nn.Sequential(nn.Conv2d(scale * scale * channels, channels, 1, bias=False),
                                   nn.BatchNorm2d(channels, momentum=EMAU_BN_MOMENTUM))
        self.down = nn.PixelUnshuffle(scale)
        self.up = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        feats = self.up(self.conv1(x))
        b, c, h, w = feats.shape
        feats = feats.view(b, c, h * w)
        mu = self.mu.repeat(b, 1, 1)
        with torch.no_grad():
            for _ in range(self.stages):
                z = F.softmax(torch.bmm(feats.permute(0, 2, 1), mu), dim=2)        # E step: b x n x k
                mu = l2_normalize(torch.bmm(feats, z / (EPS + z.sum(dim=1, keepdim=True))), dim=1)  # M step
        out = mu.matmul(z.permute(0, 2, 1)).view(b, c, h, w)
        out = self.conv2(F.relu(self.down(out)))
        return F.relu(out + identity)


class FeedbackBlock(nn.Module):
    """SRFBN's feedback block (its Fig. 3) with EMASRN's additions: ``compress_in`` fuses the input
    with the last step's output; an ASPP of it joins the projection groups' LR outputs before
    ``compress_out``; an EMAU refines the result.

    Args:
        n_feats: C.
        n_groups: projection groups (up / down pairs).
        scale: s.
    """

    def __init__(self, n_feats: int, n_groups: int, scale: int):
        super().__init__()
        k, stride, padding = PROJECTION[scale]
        self.n_groups = n_groups
        self.compress_in = _conv_prelu(2 * n_feats, n_feats, 1)
        self.upBlocks = nn.ModuleList(_deconv_prelu(n_feats, scale) for _ in range(n_groups))
        self.downBlocks = nn.ModuleList(_conv_prelu(n_feats, n_feats, k, stride, padding) for _ in range(n_groups))
        self.uptranBlocks = nn.ModuleList(_conv_prelu(n_feats * (i + 1), n_feats, 1) for i in range(1, n_groups))
        self.downtranBlocks = nn.ModuleList(_conv_prelu(n_feats * (i + 1), n_feats, 1) for i in range(1, n_groups))
        self.compress_out = _conv_prelu((n_groups + 1) * n_feats, n_feats, 1)
        self.feedaspp1 = ASPP(n_feats)
        self.feed_EMAU = EMAU(n_feats, EM_BASES, scale)

    def forward(self, x: torch.Tensor, last_hidden: torch.Tensor) -> torch.Tensor:
        x = self.compress_in(torch.cat((x, last_hidden), dim=1))
        context = self.feedaspp1(x)
        lr_features, hr_features = [x], []
        for i in range(self.n_groups):
            lr = torch.cat(lr_features, dim=1)
            if i > 0:
                lr = self.uptranBlocks[i - 1](lr)
            hr_features.append(self.upBlocks[i](lr))
            hr = torch.cat(hr_features, dim=1)
            if i > 0:
                hr = self.downtranBlocks[i - 1](hr)
            lr_features.append(self.downBlocks[i](hr))
        out = self.compress_out(torch.cat((*lr_features[1:], context), dim=1))
        return self.feed_EMAU(out)


class EMASRN(nn.Module):
    """EMASRN (Fig. 2): mean shift, 3x3 conv to 4C + PReLU, 1x1 conv to C + PReLU, then ``n_steps``
    passes of the feedback block (step 1 fed its own input as the last output); the last step's
    output is upsampled by a transposed conv + PReLU, a 3x3 conv to RGB, added to the bilinearly
    upsampled input. Public class: ``CSUNET``.

    Args:
        scale: the upscaling factor (3, 4; the public code also builds 2).
        n_feats: C.
        n_steps: feedback steps.
        n_groups: projection groups of the feedback block.
    """

    def __init__(self, scale: int, n_feats: int = N_FEATS, n_steps: int = N_STEPS, n_groups: int = N_GROUPS):
        super().__init__()
        self.scale = scale
        self.n_steps = n_steps
        self.sub_mean = MeanShift(255.0, sign=-1)
        self.conv_in = _conv_prelu(3, 4 * n_feats, 3)
        self.feat_in = _conv_prelu(4 * n_feats, n_feats, 1)
        self.block = FeedbackBlock(n_feats, n_groups, scale)
        self.out = _deconv_prelu(n_feats, scale)
        self.conv_out = nn.Sequential(nn.Conv2d(n_feats, 3, 3, padding=1))
        self.add_mean = MeanShift(255.0, sign=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x)
        upsampled = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        x = self.feat_in(self.conv_in(x))
        h = x
        for _ in range(self.n_steps):
            h = self.block(x, h)
        return self.add_mean(upsampled + self.conv_out(self.out(h)))


SPECS = (
    PeerSpec(
        name="emasrn",
        title="EMASRN+",
        paper="X. Zhu, K. Guo, S. Ren, B. Hu, M. Hu, H. Fang, \"Lightweight Image Super-Resolution with "
              "Expectation-Maximization Attention Mechanism\", IEEE TCSVT, 2021",
        source=Source("xyzhu1/EMASRN", "8ded88c", ("networks/csunet_arch.py", "networks/EMANET_EMAU.py",
                                                  "networks/deeplabv3_aspp.py", "networks/blocks.py",
                                                  "options/test/test_example_x4.json")),
        scales=(3, 4),
        builder=EMASRN,
        trained_range=255.0,
        tables=("I",),
        printed_counting=(
            "not reproduced: every parameter (the repository's own count, sum of parameters(); torchsummaryX "
            "rule and full alike) gives 436,813 at x3 and 558,893 at x4 vs printed 427K and 546K (+2.3%, "
            "+2.4%); without the never-trained EMAU conv1, 427,309 (x3 matches) and 541,997 (x4, -0.7%). "
            "No Multi-Adds printed."),
        unused=(r"block\.feed_EMAU\.conv1\.",),
        notes="Table I's '+' is the x8 self-ensemble of this network. block.feed_EMAU.conv1 is called but gets "
              "no gradient (it feeds only the EM iterations, which run under no_grad, as in the public code).",
    ),
)
