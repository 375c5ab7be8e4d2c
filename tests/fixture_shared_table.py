"""The tiny fixture table with a row that shares another's training, as CFIN+ shares CFIN's:
"KV+Cross" and "KV+Cross+" (the same network, scored with the self-ensemble). For the Slurm
launcher's tests: two rows, one training, one job."""
import dataclasses

from fixture_tables import TABLE as TINY

_KV_CROSS = TINY.row("KV+Cross")
TABLE = dataclasses.replace(TINY, id="TINYPLUS", title="Fixture: a row and its self-ensemble, one training",
                            rows=(_KV_CROSS, dataclasses.replace(_KV_CROSS, id="KV+Cross+", self_ensemble=True)))
