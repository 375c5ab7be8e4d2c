"""IMDB: information multi-distillation block of IMDN (Hui et al., ACM MM 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cfin.errors import CFINError
from cfin.models.blocks.common import CCALayer, check_width
from cfin.models.common import ConvStageBlock, conv

LRELU_SLOPE = 0.05


class IMDB(ConvStageBlock):
    """Information multi-distillation block (IMDN, progressive refinement + CCA).

    Progressive refinement: three steps of ``3x3 conv -> LeakyReLU(0.05) -> channel split``;
    each split keeps ``d = int(C * rate)`` channels (distilled) and refines the other
    ``C - d`` with the next 3x3 conv (back to C channels); a last 3x3 conv maps the
    remaining ``C - d`` channels to ``d``. The four distilled parts (4d channels) are
    concatenated, weighted by contrast-aware channel attention (CCA, reduction 16), fused by
    a 1x1 conv to C, and added to the input. Widths as IMDN (rate 0.25: at C = 64 the
    splits are 16 / 48); no simplification.

    Args:
        n_feats: width C.
        distillation_rate: fraction of channels kept at each split (0.25).
        reduction: CCA reduction (16).
    """

    def __init__(self, n_feats: int, *, distillation_rate: float = 0.25, reduction: int = 16):
        super().__init__()
        check_width("IMDB", n_feats)
        d = int(n_feats * distillation_rate)
        if not 0 < d < n_feats:
            raise CFINError(f"IMDB: distillation_rate {distillation_rate} leaves no channels to "
                             f"distil or refine at n_feats={n_feats}")
        self.distilled, self.remaining = d, n_feats - d
        self.c1 = conv(n_feats, n_feats, 3)
        self.c2 = conv(self.remaining, n_feats, 3)
        self.c3 = conv(self.remaining, n_feats, 3)
        self.c4 = conv(self.remaining, d, 3)
        self.cca = CCALayer(4 * d, reduction)
        self.fuse = conv(4 * d, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        h = x
        for step in (self.c1, self.c2, self.c3):
            distilled, h = torch.split(F.leaky_relu(step(h), LRELU_SLOPE), (self.distilled, self.remaining), dim=1)
            parts.append(distilled)
        parts.append(self.c4(h))
        return x + self.fuse(self.cca(torch.cat(parts, dim=1)))
