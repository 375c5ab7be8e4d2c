"""Table IX: the Transformer part of CFIN alone (OnlyT) against lightweight CNNs, x4.

"OnlyT indicates that only the Transformer part of the CFIN is retained": CFIN x4 without
its conv stage (``CFINConfig.conv_stage=False``), block i ``x = x + squeeze_j(CFGT_i(expand_j(x)))``
with CFIN's 8 CFGTs (dim 144, heads 8, 12, 16, 12, ...) and 4 expand/squeeze pairs. The
printed 91K / 4.5G fix the width of the rest of the network: n_feats 33.

    python -m ablations.fit --table IX
"""
from cfin.config import preset
from cfin.tables import Table

from ablations.fit import Search
from ablations.peers import quoted_fields
from ablations.printed import Columns

DATASETS = ("Set5", "Set14", "B100", "Urban100")

ONLYT = preset(4, conv_stage=False, n_feats=33)

# As printed: method, Params, Multi-Adds, PSNR on Set5, Set14, B100, U100.
COLUMNS = Columns("params", "multi_adds", *DATASETS)

_OTHERS = """
PAN      272K 28.2G 32.13 28.61 27.59 26.11
MAFFSRN  441K 19.3G 32.18 28.58 27.57 26.04
RFDN     550K 31.6G 32.24 28.61 27.57 26.11
FDIWN-M  454K 19.6G 32.17 28.55 27.58 26.02
"""

TABLE = Table(
    id="IX",
    title="Comparison of CFGT with other methods",
    scale=4,
    rows=COLUMNS.quoted_rows(_OTHERS, per_method=quoted_fields) + (
        COLUMNS.row("OnlyT", ONLYT, "91K 4.5G 32.33 28.61 27.58 26.08",
                    note="CFIN x4 without its conv stage, n_feats 33: 91,332 / 4.4992G (+0.4%, -0.02%)"),
    ),
    datasets=DATASETS,
    recipe="paper",
    notes=(
        "Found with `python -m ablations.fit --table IX`: grid n_feats 28 ... 40 x loop (1, 2, 4, 8) x "
        "dim (120, 144) around CFIN x4 without conv stage, objective max(|dParams|/2%, "
        "|dMulti-Adds|/3%). Best: CFIN's Transformer part unchanged (dim 144, loop 2) at n_feats 33, "
        "deviation 0.18 (n_feats 32: 88,666 / 4.346G, 34: 94,016 / 4.653G). What feeds the CFGTs "
        "without the conv stage is not printed; ours: the expand reads the block input (the head's "
        "features for block 1). PAN, MAFFSRN, RFDN and FDIWN-M are quoted; those whose network is rebuilt "
        "(cfin.peers) are counted beside their printed numbers."
    ),
)

SEARCHES = (
    Search("OnlyT", (("IX", "OnlyT"),), ONLYT,
           {"n_feats": tuple(range(28, 41)), "loop": (1, 2, 4, 8), "dim": (120, 144)},
           note="CFIN x4 without its conv stage"),
)
