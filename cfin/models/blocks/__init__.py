"""The conv-stage blocks of Table V, CFIN's CIAM and the alternatives it is compared with.

Every block has one contract (:class:`cfin.models.common.ConvStageBlock`): ``Block(n_feats)``
(any other hyper-parameter a keyword with its paper's default), B x n_feats x H x W in, the
same shape out, for any H, W >= 1; ``Block.from_config(cfg)`` builds it for a CFIN config.
:data:`REGISTRY` maps the lowercase paper name (``CFINConfig.conv_block``) to the class.
"""
from __future__ import annotations

from cfin.config import CFINConfig
from cfin.errors import choice_error
from cfin.models.blocks.hpb import HPB
from cfin.models.blocks.imdb import IMDB
from cfin.models.blocks.lb import LB
from cfin.models.blocks.rcab import RCAB
from cfin.models.blocks.rfdb import RFDB
from cfin.models.blocks.wdib import WDIB
from cfin.models.ciam import CIAM
from cfin.models.common import ConvStageBlock

# Table V's rows in the paper's order, CIAM first (the config's default). Its keys are
# cfin.config.CONV_BLOCKS, the names a config accepts (tests/test_blocks.py holds them equal).
REGISTRY: dict[str, type[ConvStageBlock]] = {
    "ciam": CIAM,   # CFIN, Fig. 3: reads its deconv width, mask, branch and implementation from the config
    "rcab": RCAB,   # RCAN, Zhang et al. ECCV 2018 [65]
    "imdb": IMDB,   # IMDN, Hui et al. ACM MM 2019 [33]
    "rfdb": RFDB,   # RFDN, Liu et al. ECCVW 2020 [34]
    "lb": LB,       # LatticeNet, Luo et al. ECCV 2020 [54]
    "hpb": HPB,     # ESRT, Lu et al. CVPRW 2022 [20]
    "wdib": WDIB,   # FDIWN, Gao et al. AAAI 2022 [36]
}


def build_conv_block(cfg: CFINConfig) -> ConvStageBlock:
    """The conv-stage block ``cfg.conv_block`` for ``cfg``; a CFINError lists the valid names."""
    if cfg.conv_block not in REGISTRY:
        raise choice_error("conv block", cfg.conv_block, REGISTRY)
    return REGISTRY[cfg.conv_block].from_config(cfg)


__all__ = ["REGISTRY", "build_conv_block", "CIAM", "HPB", "IMDB", "LB", "RCAB", "RFDB", "WDIB"]
