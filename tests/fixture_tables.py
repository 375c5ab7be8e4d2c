"""A tiny paper table and a micro budget for the run_all tests (CPU seconds end to end).

Two reproducible rows of the ``tiny`` preset (with and without the KV sharing of eq. 17, as in
Table VII) and one quoted row. The paper numbers are made up for the fixture.
"""
from cfin.config import preset
from cfin.tables import PaperNumbers, Row, Table, Tolerance
from cfin.train import Recipe

TABLE = Table(
    id="TINY",
    title="Fixture: KV sharing on the tiny CFIN",
    scale=4,
    datasets=("Set5",),
    rows=(
        Row("Other net", None, PaperNumbers(params=50_000, multi_adds=2_000_000_000,
                                            metrics={"Set5": (31.50, 0.8800)}), quoted=True),
        Row("KV off", preset("tiny", kv_share=False),
            PaperNumbers(params=60_000, multi_adds=2_500_000_000, metrics={"Set5": (31.90, 0.8900)}),
            note="the second CGA computes its own K and V"),
        Row("KV+Cross", preset("tiny"),
            PaperNumbers(params=60_000, multi_adds=2_500_000_000, metrics={"Set5": (32.00, 0.8920)}),
            tolerance=Tolerance(params=0.5, multi_adds=0.5)),
    ),
    notes="A fixture, not a paper table.",
)

MICRO = Recipe(name="micro", iterations=4, batch_size=2, patch_size=16, checkpoint_every=2, val_every=2,
               val_images=1, log_every=1, num_workers=0)
