"""Section V-A.2: CIAM with and without its up/down-sampling branch, x4.

The paper reports this in the text, not a table: "the performance (x4, Set5) of the ablation
model (165K) with and without the upsampling-downsampling branch is 31.75dB and 31.63dB".
31.75 is Table IV's Gumbel row, so the model is Table IV's; the other row switches the
branch off (``CFINConfig.ciam_branch=False``: the gate g = 1).
"""
from cfin.tables import Table

from ablations.printed import Columns
from ablations.table_04_gumbel import SKELETON

DATASETS = ("Set5",)
COLUMNS = Columns("params", *DATASETS)  # as the text prints them

TABLE = Table(
    id="V-A.2",
    title="The up/down-sampling branch in CIAM (section V-A.2, in the text)",
    scale=4,
    rows=(
        COLUMNS.row("with branch", SKELETON, "165K 31.75",
                    note="Table IV's RIFU+Gumbel-Softmax model; the paper prints its size (165K) only"),
        COLUMNS.row("without branch", SKELETON.replace(ciam_branch=False), "- 31.63",
                    note="no counts printed; ours drops the transposed conv and the stride-2 1x1 conv "
                         "(most of the model's paper-rule Multi-Adds)"),
    ),
    datasets=DATASETS,
    recipe="paper",
    notes=(
        "No Multi-Adds are printed. The paper adds that the branch's position 'will not have "
        "much impact on model performance' without saying which positions it tried: not "
        "reproduced. The model is fitted in ablations/table_04_gumbel.py."
    ),
)
