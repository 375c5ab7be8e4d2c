"""The convolution stage: RIFU (eq. 5-9, Fig. 3) and CIAM (eq. 10-12, Fig. 3).

Both follow the official code, which differs from the paper's equations (REFERENCE.md):
RIFU scales its residual with learnable scalars, and CIAM chains its three RIFUs with a
sigmoid gate from the up/down-sampling branch instead of eq. (11)-(12).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cfin.config import CIAM_BRANCH_IMPLS, CFINConfig
from cfin.models.common import ConvStageBlock, Scale, conv, records_grad
from cfin.models.rng import exponential_like

LRELU_SLOPE = 0.05


class ECA(nn.Module):
    """Channel attention f_CA of eq. (9) as the official code builds it (the paper names only
    "the channel attention mechanism").

    Global average pool, then each channel c mixes the pooled values of channels
    (c-1, c, c+1) with its own three weights (zero-padded at the ends), sigmoid, multiply.
    Unlike ECA-Net's one 1-D kernel shared by every channel, the official layer gives each
    channel its own (REFERENCE.md).
    """

    def __init__(self, channels: int, k: int = 3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, k))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.k = k

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel factor in (0, 1): B x C x 1 x 1."""
        y = x.mean(dim=(2, 3))                                    # B x C
        windows = F.pad(y, (self.k // 2, self.k // 2)).unfold(1, self.k, 1)  # B x C x k
        return torch.sigmoid((windows * self.weight.squeeze(1)).sum(-1))[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class RIFUMask(nn.Module):
    """The mask of eq. (6)-(8): 1x1 conv to M = 3 channels, then one map in [0, 1].

    kinds: ``gumbel`` (hard Gumbel-softmax, tau 1, channel 1; straight-through in training),
    ``softmax`` (channel 1 of a plain softmax), ``maxpool`` (sigmoid of the max over the M
    channels: our reading of Table IV's "max-pooling operation"). ``mask_eval`` picks what
    the Gumbel mask does in eval mode: ``sample`` (official: a fresh hard sample, so outputs
    depend on the RNG) or ``argmax`` (noiseless). ``fused``: where no gradient is taken, the
    hard sample is the one-hot of the same draw's softmax, without the straight-through
    ``y_hard - y_soft + y_soft`` (which leaves the ones off by a rounding error).
    """

    def __init__(self, channels: int, kind: str = "gumbel", mask_eval: str = "sample", m: int = 3,
                 fused: bool = False):
        super().__init__()
        self.spatial_mask = nn.Conv2d(channels, m, 1, bias=False)
        self.kind = kind
        self.mask_eval = mask_eval
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.spatial_mask(x)
        if self.kind == "gumbel":
            if self.training or self.mask_eval == "sample":
                if self.fused and not records_grad(logits):
                    return hard_gumbel_sample(logits)
                return F.gumbel_softmax(logits, tau=1.0, hard=True, dim=1)[:, 1:2]
            return (logits.argmax(dim=1, keepdim=True) == 1).to(x.dtype)
        if self.kind == "softmax":
            return logits.softmax(dim=1)[:, 1:2]
        return torch.sigmoid(logits.amax(dim=1, keepdim=True))  # maxpool


def hard_gumbel_sample(logits: torch.Tensor) -> torch.Tensor:
    """Channel 1 of ``F.gumbel_softmax(logits, tau=1, hard=True, dim=1)``'s forward value,
    from the same random draws (the same exponential draws on a tensor of the same layout,
    vectorised on the CPU by :func:`cfin.models.rng.exponential_like`)."""
    gumbels = -exponential_like(logits).log()
    index = (logits + gumbels).softmax(dim=1).max(dim=1, keepdim=True)[1]  # not argmax: slow channels-last
    return (index == 1).to(logits.dtype)


class RIFU(nn.Module):
    """Redundant Information Filter Unit (eq. 5-9).

    ``h = lrelu(wn_conv3x3(x))`` (eq. 5); ``h = h * mask(h)`` (eq. 6-8);
    ``h = ECA(lrelu(wn_conv3x3(h)))`` (eq. 9); out ``= s1 * h + s2 * x``. The official code
    applies a LeakyReLU (0.05) after the second conv too and scales both residual paths.
    ``fused`` computes the same function in fewer passes: the activations in place on the
    conv outputs, and ECA's gate with both scalars in one multiply-add,
    ``addcmul(s2 * x, h, s1 * gate)``.
    """

    def __init__(self, n_feats: int, mask: str = "gumbel", mask_eval: str = "sample", fused: bool = False):
        super().__init__()
        self.conv1 = conv(n_feats, n_feats, 3, wn=True)
        self.mask = RIFUMask(n_feats, mask, mask_eval, fused=fused) if mask != "none" else None
        self.conv2 = conv(n_feats, n_feats, 3, wn=True)
        self.eca = ECA(n_feats)
        self.scale_res = Scale(1.0)
        self.scale_skip = Scale(1.0)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:  # conv outputs are fresh and their backward does not read them
            h = F.leaky_relu_(self.conv1(x), LRELU_SLOPE)
            if self.mask is not None:
                h = h * self.mask(h)
            h = F.leaky_relu_(self.conv2(h), LRELU_SLOPE)
            return torch.addcmul(self.scale_skip(x), h, self.eca.gate(h) * self.scale_res.scale)
        h = F.leaky_relu(self.conv1(x), LRELU_SLOPE)
        if self.mask is not None:
            h = h * self.mask(h)
        h = self.eca(F.leaky_relu(self.conv2(h), LRELU_SLOPE))
        return self.scale_res(h) + self.scale_skip(x)


class CIAM(ConvStageBlock):
    """Cross-scale Information Aggregation Module (Fig. 3; official form of eq. 10-12).

    ``a = RIFU1(x)``, ``b = RIFU2(a)``, ``g = sigmoid(down(lrelu(up(x))) + x)`` with ``up`` a
    2x2 stride-2 transposed conv and ``down`` a 1x1 stride-2 conv, ``c = RIFU3(g * b)``,
    out ``= s1 * c + s2 * x``. ``down`` reads only tap (0, 0) of ``up``'s output, so the
    branch is two 1x1 convs at input resolution (the audit measures this).

    Args:
        n_feats: width.
        deconv_feats: width of the transposed conv (64; 72 at x2).
        branch: keep the up/down-sampling branch (section V-A.2); without it ``g = 1``.
        branch_impl: "deconv" runs the official transposed conv and strided conv; "1x1"
            computes the same branch from the same parameters as two 1x1 convs at the
            input resolution (tap (0, 0) of ``up``, then ``down`` without stride),
            skipping the 4x upsampled tensor. The other three taps get no gradient
            either way.
        fused: RIFUs and the gate and residual in fewer elementwise passes (same function).
    """

    def __init__(self, n_feats: int, deconv_feats: int = 64, mask: str = "gumbel",
                 mask_eval: str = "sample", branch: bool = True, branch_impl: str = "deconv",
                 fused: bool = False):
        super().__init__()
        if branch_impl not in CIAM_BRANCH_IMPLS:
            raise ValueError(f"unknown CIAM branch_impl {branch_impl!r}; valid: {', '.join(CIAM_BRANCH_IMPLS)}")
        self.branch_impl = branch_impl
        self.fused = fused
        self.rifu1 = RIFU(n_feats, mask, mask_eval, fused)
        self.rifu2 = RIFU(n_feats, mask, mask_eval, fused)
        self.rifu3 = RIFU(n_feats, mask, mask_eval, fused)
        if branch:
            self.up = nn.ConvTranspose2d(n_feats, deconv_feats, 2, stride=2)
            self.down = nn.Conv2d(deconv_feats, n_feats, 1, stride=2)
        else:
            self.up = self.down = None
        self.scale_res = Scale(1.0)
        self.scale_skip = Scale(1.0)

    @classmethod
    def from_config(cls, cfg: CFINConfig) -> CIAM:
        """CIAM with the config's width and deconv width, its RIFUs' mask (Tables III, IV), its
        branch (section V-A.2) and how it computes (``ciam_branch_impl``, ``fused_conv_stage``)."""
        return cls(cfg.n_feats, deconv_feats=cfg.deconv_feats, mask=cfg.mask, mask_eval=cfg.mask_eval,
                   branch=cfg.ciam_branch, branch_impl=cfg.ciam_branch_impl, fused=cfg.fused_conv_stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.rifu2(self.rifu1(x))
        if self.up is not None:
            # fused: in place on the branch's fresh output (sigmoid's backward reads its result)
            g = torch.sigmoid_(self._branch(x).add_(x)) if self.fused else torch.sigmoid(self._branch(x) + x)
            b = g * b
        c = self.rifu3(b)
        if self.fused:
            return torch.addcmul(self.scale_skip(x), c, self.scale_res.scale)
        return self.scale_res(c) + self.scale_skip(x)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """``down(lrelu(up(x)))``: officially, or as two 1x1 convs on the same parameters."""
        if self.branch_impl == "deconv":
            return self.down(F.leaky_relu(self.up(x), LRELU_SLOPE))
        up_00 = self.up.weight[:, :, 0, 0].t()[:, :, None, None]      # ConvTranspose: in x out x 2 x 2
        h = F.leaky_relu(F.conv2d(x, up_00, self.up.bias), LRELU_SLOPE)
        return F.conv2d(h, self.down.weight, self.down.bias)
