"""CFIN: Cross-receptive Focused Inference Network (Li et al., IEEE TMM 2023), Fig. 2.

Built as the official code builds it (../shared/REFERENCE.md); every ablation of the paper
is a field of :class:`cfin.config.CFINConfig`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from cfin.config import CFINConfig
from cfin.errors import CFINError
from cfin.models.blocks import build_conv_block
from cfin.models.cfgt import CFGT
from cfin.models.common import MeanShift, Scale, conv
from cfin.models.postops import conv_act


class Expand(nn.Sequential):
    """F_ce of eq. (2): 1x1 conv n_feats -> dim, ReLU (weight-normed at x2 in the official code).

    ``fused``: the ReLU inside the convolution where :mod:`cfin.models.postops` can.
    """

    def __init__(self, n_feats: int, dim: int, wn: bool, fused: bool = False):
        super().__init__(conv(n_feats, dim, 1, wn=wn), nn.ReLU(inplace=True))
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_act(x, self[0].weight, self[0].bias, "relu") if self.fused else super().forward(x)


class Squeeze(nn.Sequential):
    """F_cr of eq. (2): weight-normed 1x1 conv dim -> n_feats."""

    def __init__(self, dim: int, n_feats: int):
        super().__init__(conv(dim, n_feats, 1, wn=True))


class CTBody(nn.Module):
    """The N CT blocks of eq. (2)-(3) with the loop mechanism.

    Block i: ``x = x + squeeze_j(CFGT_i(expand_j(conv_j(x))))`` with ``j = i // loop``: each
    conv stage and expand/squeeze pair serves ``loop`` consecutive blocks, each block has
    its own CFGT. After the last block: ``a * x + b * input`` (learnable a, b).
    A block without a Transformer stage (``transformer=False``, or past the first
    ``num_cfgt`` blocks) is ``x = x + conv_j(x)``; without the conv stage (``conv_stage=False``)
    it is ``x = x + squeeze_j(CFGT_i(expand_j(x)))``.
    """

    def __init__(self, cfg: CFINConfig):
        super().__init__()
        self.loop = cfg.loop
        self.convs = nn.ModuleList(build_conv_block(cfg) for _ in range(cfg.num_conv_stages))
        self.num_cfgt = cfg.num_transformer_blocks
        if self.num_cfgt:
            pairs = cfg.num_expand_pairs
            self.expands = nn.ModuleList(Expand(cfg.n_feats, cfg.dim, cfg.expand_weight_norm, cfg.fused_attention)
                                         for _ in range(pairs))
            self.cfgts = nn.ModuleList(CFGT(cfg.dim, h, cfg.cga_kernels, cfg.kv_share, cfg.token_mixer, cfg.cgm_impl,
                                            cfg.fused_attention, gconv_groups=cfg.gconv_groups, gram=cfg.cga_gram,
                                            igp_kernels=cfg.igp_kernels)
                                       for h in cfg.heads[:self.num_cfgt])
            self.squeezes = nn.ModuleList(Squeeze(cfg.dim, cfg.n_feats) for _ in range(pairs))
        else:
            self.expands = self.cfgts = self.squeezes = None
        self.num_blocks = cfg.num_blocks
        self.grad_checkpoint = cfg.grad_checkpoint
        self.scale_body = Scale(1.0)
        self.scale_skip = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        recompute = self.grad_checkpoint and self.training and torch.is_grad_enabled()
        for i in range(self.num_blocks):
            if recompute:  # keep only the block's input; rerun it (same RNG draws) in backward
                x = checkpoint(self.block, i, x, use_reentrant=False)
            else:
                x = self.block(i, x)
        return self.scale_body(x) + self.scale_skip(skip)

    def block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """CT block ``i``: ``x + squeeze_j(CFGT_i(expand_j(conv_j(x))))``, ``j = i // loop``."""
        j = i // self.loop
        y = self.convs[j](x) if len(self.convs) else x
        if i < self.num_cfgt:
            y = self.squeezes[j](self.cfgts[i](self.expands[j](y)))
        return x + y


class Upsampler(nn.Sequential):
    """F_rec of eq. (4): 3x3 conv to 3 * s^2 channels, PixelShuffle(s)."""

    def __init__(self, in_ch: int, scale: int):
        super().__init__(conv(in_ch, 3 * scale * scale, 3), nn.PixelShuffle(scale))


def _described(x) -> str:
    if not isinstance(x, torch.Tensor):
        return type(x).__name__
    return f"shape {tuple(x.shape)}, {x.dtype}"


class CFIN(nn.Module):
    """CFIN (eq. 1-4): RGB in [0, rgb_range], B x 3 x H x W -> B x 3 x sH x sW.

    ``sub_mean -> head -> CT body -> conv -> upsample`` plus a second path
    ``raw input -> conv -> upsample`` (eq. 4), summed, then ``add_mean``.
    """

    def __init__(self, config: CFINConfig):
        super().__init__()
        if not isinstance(config, CFINConfig):
            raise CFINError(f"CFIN expects a CFINConfig (cfin.preset(4), cfin.CFINConfig(...)), got "
                            f"{type(config).__name__} {config!r:.60}")
        self.config = config
        c = config
        self.sub_mean = MeanShift(c.rgb_range, c.rgb_mean, -1)
        self.head = conv(3, c.n_feats, 3)
        self.body = CTBody(c)
        self.body_conv = conv(c.n_feats, c.n_feats, 3)
        self.upsample = Upsampler(c.n_feats, c.scale)
        self.lr_conv = conv(3, c.n_feats, 3)
        self.lr_upsample = Upsampler(c.n_feats, c.scale)
        self.add_mean = MeanShift(c.rgb_range, c.rgb_mean, +1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point() \
                or x.numel() == 0:
            raise CFINError(f"CFIN expects a non-empty B x 3 x H x W float tensor of RGB in "
                            f"[0, {self.config.rgb_range:g}], got {_described(x)}")
        h = self.head(self.sub_mean(x))
        if self.config.channels_last and x.shape[0] == 1 and x.device.type == "cpu":
            # one image: the body's per-sample convs are plain oneDNN convs, fastest channels-last;
            # a batch folds into grouped convs, which need NCHW. The tail stays NCHW (closer to
            # the official rounding). On CUDA cuDNN's float32 convs are NCHW kernels: channels-last
            # adds a transpose around each (docs/performance.md).
            h = self.body(h.contiguous(memory_format=torch.channels_last)).contiguous()
        else:
            h = self.body(h)
        if self.config.fused_tail:
            return self._fused_tail(self.body_conv(h), self.lr_conv(x))
        y = self.upsample(self.body_conv(h))
        return self.add_mean(y + self.lr_upsample(self.lr_conv(x)))

    def _fused_tail(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``add_mean(PS(conv_u(a)) + PS(conv_l(b)))`` as ``PS(conv(a, K W_u) + conv(b, K W_l))``.

        The pixel shuffle is linear, and the add-mean conv mixes the 3 colours of every output
        pixel, i.e. channels ``c * s^2 + r`` of the shuffle's input for each ``r``: the matrix
        ``K = M (x) I_{s^2}`` (Kronecker) applied to the upsampling convs' outputs, hence to
        their weights and biases.
        """
        s2 = self.config.scale ** 2
        eye = torch.eye(s2, device=a.device).to(a.dtype)   # torch < 2.3 has no bfloat16 eye on the CPU
        k = torch.kron(self.add_mean.weight[:, :, 0, 0], eye)
        up, lr_up = self.upsample[0], self.lr_upsample[0]
        w_up = (k @ up.weight.flatten(1)).view_as(up.weight)
        w_lr = (k @ lr_up.weight.flatten(1)).view_as(lr_up.weight)
        bias = k @ (up.bias + lr_up.bias) + self.add_mean.bias.repeat_interleave(s2)
        z = F.conv2d(a, w_up, bias, padding=up.padding).add_(F.conv2d(b, w_lr, None, padding=lr_up.padding))
        return F.pixel_shuffle(z, self.config.scale)
