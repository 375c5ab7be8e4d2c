"""The records an audit produces: one :class:`Finding` per divergence, one :class:`AuditReport` per run."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One place where CFIN as published and CFIN as released part ways, with its measurement.

    Args:
        id: short stable key (``"gumbel-at-inference"``).
        title: one line.
        paper_claim: what the paper says, quoted or paraphrased closely.
        citation: where (equation, table, section).
        code_behaviour: what the official code (and this faithful rebuild) computes.
        measurement: named numbers the audit computed in this run.
        how: how those numbers were measured.
        user_impact: what it changes for someone using the published model or numbers.
        test: the test in ``tests/test_audit.py`` that re-measures it in CI.
        found_by: how the divergence came to light.
        confirmed: whether this run's measurement shows the divergence.
        weights: which weights the numbers depend on ("" when they depend on none).
    """

    id: str
    title: str
    paper_claim: str
    citation: str
    code_behaviour: str
    measurement: dict[str, Any]
    how: str
    user_impact: str
    test: str
    found_by: str
    confirmed: bool
    weights: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["measurement"] = _jsonable(d["measurement"])
        return d


@dataclass
class AuditReport:
    """The findings of one ``run_audit`` call and what they were measured on."""

    scale: int
    weights: str
    weights_kind: str            # "official", "fixture" or "init"
    data: str
    findings: list[Finding]
    environment: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def confirmed(self) -> int:
        return sum(f.confirmed for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "weights": self.weights, "weights_kind": self.weights_kind,
                "data": self.data, "environment": self.environment, "seconds": round(self.seconds, 2),
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AuditReport":
        findings = [Finding(**f) for f in d["findings"]]
        return cls(d["scale"], d["weights"], d["weights_kind"], d["data"], findings,
                   d.get("environment", {}), d.get("seconds", 0.0))


def _jsonable(v: Any) -> Any:
    """Plain JSON types: tuples become lists, non-finite floats become strings."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        return _jsonable(v.item())
    return v
