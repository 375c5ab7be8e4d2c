"""One function per finding: ``fn(ctx: AuditContext) -> Finding``, in report order."""
from __future__ import annotations

from cfin.audit.findings.conv_stage import ciam_branch, ciam_equations, residual_scalars, rifu_equation
from cfin.audit.findings.counts import printed_complexity, unused_parameters
from cfin.audit.findings.inference import gumbel_at_inference
from cfin.audit.findings.structure import loop_mechanism, per_scale_shapes, reconstruction_tail
from cfin.audit.findings.training import mean_shift, schedule, weight_norm
from cfin.audit.findings.transformer import attention_eq13, cga_kernel, kv_eq17

# id -> function; the ids are the Finding.id each function returns
FINDINGS = {
    "printed-complexity": printed_complexity,
    "unused-parameters": unused_parameters,
    "gumbel-at-inference": gumbel_at_inference,
    "ciam-branch-not-cross-scale": ciam_branch,
    "cga-kernel-ignored": cga_kernel,
    "ciam-equations": ciam_equations,
    "attention-eq13": attention_eq13,
    "kv-eq17": kv_eq17,
    "rifu-equation": rifu_equation,
    "weight-norm-placement": weight_norm,
    "training-schedule": schedule,
    "mean-shift-trainable": mean_shift,
    "loop-mechanism": loop_mechanism,
    "residual-scalars": residual_scalars,
    "per-scale-shapes": per_scale_shapes,
    "reconstruction-tail": reconstruction_tail,
}

__all__ = ["FINDINGS"]
