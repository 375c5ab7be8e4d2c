"""The conv-stage blocks of Table V, each written from its own paper.

Every block has one contract: ``Block(n_feats)`` (any other hyper-parameter is a keyword
with its paper's default), B x n_feats x H x W in, the same shape out, for any H, W >= 1.
``ALTERNATIVE_BLOCKS`` maps the lowercase paper name to the class; CFIN's own CIAM lives in
``cfin.models.ciam`` and is chosen by ``cfin.models.cfin.conv_stage`` beside this dict.
"""
from __future__ import annotations

from torch import nn

from cfin.errors import choice_error
from cfin.models.blocks.hpb import HPB
from cfin.models.blocks.imdb import IMDB
from cfin.models.blocks.lb import LB
from cfin.models.blocks.rcab import RCAB
from cfin.models.blocks.rfdb import RFDB
from cfin.models.blocks.wdib import WDIB

# Table V's alternatives to CIAM, in the paper's order (CIAM itself: cfin.models.cfin.conv_stage).
ALTERNATIVE_BLOCKS: dict[str, type[nn.Module]] = {
    "rcab": RCAB,   # RCAN, Zhang et al. ECCV 2018 [65]
    "imdb": IMDB,   # IMDN, Hui et al. ACM MM 2019 [33]
    "rfdb": RFDB,   # RFDN, Liu et al. ECCVW 2020 [34]
    "lb": LB,       # LatticeNet, Luo et al. ECCV 2020 [54]
    "hpb": HPB,     # ESRT, Lu et al. CVPRW 2022 [20]
    "wdib": WDIB,   # FDIWN, Gao et al. AAAI 2022 [36]
}


def build_conv_block(name: str, n_feats: int) -> nn.Module:
    """The block registered as ``name`` at width ``n_feats``; a CFINError lists the valid names."""
    if name not in ALTERNATIVE_BLOCKS:
        raise choice_error("conv block", name, ALTERNATIVE_BLOCKS)
    return ALTERNATIVE_BLOCKS[name](n_feats)


__all__ = ["ALTERNATIVE_BLOCKS", "build_conv_block", "HPB", "IMDB", "LB", "RCAB", "RFDB", "WDIB"]
