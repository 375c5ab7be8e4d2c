"""Run every finding of the audit and collect an :class:`AuditReport`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from tqdm.auto import tqdm

from cfin.audit.context import AuditContext
from cfin.audit.findings import FINDINGS
from cfin.audit.record import AuditReport
from cfin.device import tf32_mode
from cfin.errors import choice_error
from cfin.provenance import environment


def run_audit(weights: str | Path | None = None, scale: int = 4, device=None, data_root: str | Path | None = None,
              seeds: int = 5, only: Iterable[str] | None = None, progress: bool = True) -> AuditReport:
    """Measure every finding (or those in ``only``) on one set of weights.

    Args:
        weights: an official ``model_best_x{s}.pt``; None uses the official-format random-weight
            fixture in ``../shared/reference`` when present, else freshly initialised weights
            (the report labels which).
        scale: 2, 3 or 4.
        device: ``cpu``, ``cuda``, ``cuda:N``; default CUDA when present.
        data_root: folder with ``benchmark/Set5/HR``; default the shared Set5.
        seeds: Gumbel seeds for the stochasticity finding (>= 2).
        only: finding ids to run (default all, in report order).
        progress: show progress bars.

    On CUDA the findings are measured in float32, TF32 off (:func:`cfin.device.tf32_mode`).
    """
    ids = list(FINDINGS) if only is None else list(only)
    for i in ids:
        if i not in FINDINGS:
            raise choice_error("finding", i, FINDINGS)
    ctx = AuditContext(weights, scale, device, data_root, seeds, progress)
    start = time.perf_counter()
    findings = []
    with tf32_mode(ctx.device, False):  # float32 means float32: cuDNN's default TF32 moves the golden outputs
        for i in tqdm(ids, desc="audit", unit="finding", disable=not progress):
            findings.append(FINDINGS[i](ctx))
    data = ctx.data_label if "gumbel-at-inference" in ids else "image crops from " + ctx.data_label
    return AuditReport(scale=ctx.scale, weights=ctx.label, weights_kind=ctx.kind, data=data, findings=findings,
                       environment=environment(ctx.device), seconds=time.perf_counter() - start)
