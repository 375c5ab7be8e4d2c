"""Table VI: the CGM against a linear layer and a grouped convolution as CFGT's token mixer, x4.

One ablation model with CGA's and IGP's projections switched (``CFINConfig.token_mixer``).
Its CGM row (178K / 4.1105G) is Table VII's KV+Cross row (177.8K / 4.1105G), so Tables VI
and VII share one fitted skeleton (``SKELETON``): one CT block, n_feats 45, CIAM deconv
width 12, a 48-wide CFGT whose two CGAs use CGM kernels 1 and 3 ("Cross", Table VII).

    python -m ablations.fit --table VI
"""
from cfin.config import CFINConfig
from cfin.tables import Table, Tolerance

from ablations.fit import Search
from ablations.printed import Columns

DATASETS = ("Set5", "B100", "Urban100")
COLUMNS = Columns("params", "multi_adds", *DATASETS)  # as printed (PSNR only)

SKELETON = CFINConfig(scale=4, n_feats=45, deconv_feats=12, dim=48, heads=(8,), loop=1, cga_kernels=(1, 3))

GCONV = SKELETON.replace(token_mixer="gconv", gconv_groups=4)

TABLE = Table(
    id="VI",
    title="Evaluate the effectiveness of CGM",
    scale=4,
    rows=(
        COLUMNS.row("CFIN+GConv", GCONV, "197K 5.7981G 31.95 27.41 25.68",
                    tolerance=Tolerance(params=0.03, multi_adds=0.07),
                    note=("every CGM replaced by a grouped conv with the CGM's kernel (CGA 1 and 3, IGP 1 and 3), "
                          "with bias. Outside the 2%/3% target: 4 groups give 201,427 / 5.4330G (+2.2%, -6.3%), "
                          "3 groups 209,107 / 5.8753G (+6.1%, +1.3%). The printed deltas from the CGM row "
                          "(+19K params, +1.6876G = 29.3K conv weights x 57,600 pixels) need more per-pixel conv "
                          "weights than added parameters, impossible when each CFGT runs once; 3x3 kernels "
                          "everywhere (tried with a patched mixer, not a config option) do no better (6 groups: "
                          "+4.6%, -1.7%). Tolerance widened to the gap "
                          "(3% / 7%)")),
        COLUMNS.row("CFIN+Linear", SKELETON.replace(token_mixer="linear"), "198K 4.1104G 29.19 26.37 23.62",
                    note=("every CGM replaced by an nn.Linear over channels (ChannelLinear, with bias): 196,819 / "
                          "4.1059G (-0.6%, -0.1%). The printed Multi-Adds equal the CGM row's because the paper's "
                          "rule charges a Linear its weights once, not per pixel: as a 1x1 conv it would add 18,432 "
                          "weights x 57,600 pixels = 1.06G")),
        COLUMNS.row("CFIN+CGM", SKELETON, "178K 4.1105G 32.14 27.43 25.71",
                    note="the CGM (the paper's design, with Cross: CGA kernels 1 and 3): 178,791 / 4.1059G "
                         "(+0.4%, -0.1%)"),
    ),
    datasets=DATASETS,
    recipe="paper",
    notes=(
        "Found with `python -m ablations.fit --table VI`: the skeleton is fitted jointly on the rows "
        "VI CFIN+CGM, VI CFIN+Linear and VII KV (no Cross) (VII's other rows have the CGM row's "
        "counts: KV has no parameters), grid n_feats 42 ... 48 x deconv_feats (8, 12, 16, 20) x dim "
        "(40, 48, 56, 64, 72) x blocks (1, 2) x loop (1, 2), objective max over the rows of "
        "max(|dParams|/2%, |dMulti-Adds|/3%). Best: one CT block, n_feats 45, deconv 12, dim 48, "
        "deviation 0.30; the runner-up is at 1.2. The linear row pins dim: it adds 8 dim^2 + 8 dim "
        "- 788 params per CFGT over the CGM (whose W the paper's rule does not count), 18.0K at dim "
        "48 against the printed +20K. The GConv row is then fitted on that skeleton over "
        "gconv_groups (1, 2, 3, 4, 6, 8, 12, 16, 24, 48): see its note."
    ),
)

SEARCHES = (
    Search("CGM skeleton", (("VI", "CFIN+CGM"), ("VI", "CFIN+Linear"), ("VII", "KV")), SKELETON,
           {"n_feats": tuple(range(42, 49)), "deconv_feats": (8, 12, 16, 20), "dim": (40, 48, 56, 64, 72),
            "blocks": (1, 2), "loop": (1, 2)},
           note="a small CFIN with its Transformer stage"),
    Search("CFIN+GConv", (("VI", "CFIN+GConv"),), GCONV,
           {"gconv_groups": (1, 2, 3, 4, 6, 8, 12, 16, 24, 48)},
           note="the CGM skeleton with grouped convs; only the groups are free"),
)
