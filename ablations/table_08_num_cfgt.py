"""Table VIII: the number of CFGTs, x4.

CFGT-N is CFIN x4 with a Transformer stage in N of its 8 CT blocks (``CFINConfig.num_cfgt``):
the first N blocks keep theirs, the others are ``x = x + CIAM_j(x)``. An expand/squeeze pair
exists only for the CIAMs whose blocks keep a CFGT. CFGT-8 is CFIN.

    python -m ablations.fit --table VIII
"""
from cfin.config import preset
from cfin.tables import Table

from ablations.fit import Search
from ablations.printed import Columns

DATASETS = ("Set5", "Manga109")

# As printed: Params, Multi-Adds, PSNR on Set5 and Manga109, Memory.
COLUMNS = Columns("params", "multi_adds", *DATASETS, "memory")

_OURS = {0: "630,410 / 27.998G (+0.07%, -0.01%)", 4: "664,618 / 29.590G (-0.06%, -0.03%)",
         8: "698,826 / 31.183G (-0.02%, -0.06%): CFIN x4"}


TABLE = Table(
    id="VIII",
    title="Efficiency trade-off of CFGT",
    scale=4,
    rows=(
        COLUMNS.row("CFGT-0", preset(4, num_cfgt=0), "630K 28.0G 32.11 30.29 3551M",
                    note="no CFGT and no expand/squeeze: CNN-only CFIN"),
        COLUMNS.row("CFGT-4", preset(4, num_cfgt=4), "665K 29.6G 32.27 30.49 7485M", note="4 CFGTs, in blocks 1-4"),
        COLUMNS.row("CFGT-8", preset(4, num_cfgt=8), "699K 31.2G 32.49 30.73 11419M", note="8 CFGTs, in blocks 1-8"),
    ),
    datasets=DATASETS,
    recipe="paper",
    notes=(
        "Paper-rule counts: " + "; ".join(f"CFGT-{n} {_OURS[n]}" for n in (0, 4, 8)) + ". The printed "
        "CFGT-4 fixes where the 4 CFGTs sit: in two loop pairs (2 expand/squeeze pairs: 665K), not "
        "one per CIAM (4 pairs: 637K); which pairs does not change a count, so we keep blocks 1-4. "
        "Each CFGT costs 0.40G, nearly all of it its expand (a per-pixel 1x1 conv, 48 -> 144); the "
        "weight-normed squeeze and the CFGT's own CGMs and LayerNorms are charged their weights "
        "once. Memory is a training figure (section VI). `python -m ablations.fit --table VIII` "
        "scans num_cfgt 0 ... 8 for each row: each row's N is its unique best."
    ),
)

SEARCHES = tuple(Search(f"CFGT-{n}", (("VIII", f"CFGT-{n}"),), preset(4, num_cfgt=n),
                        {"num_cfgt": (*range(8), None)},  # None: all 8 blocks (CFGT-8, the config's reading of 8)
                        note="CFIN x4 with its first N blocks' CFGTs")
                 for n in (0, 4, 8))
