"""Where CFIN as published and CFIN as released part ways, each point measured (issue 8).

``run_audit(weights=None, scale=4)`` measures every finding in :data:`FINDINGS` and returns an
:class:`AuditReport`; ``render_audit(out_dir)`` writes it as ``audit.md``, ``audit.html`` and
``audit.json``. ``cfin audit`` is the command line. Each finding is one function
``fn(ctx) -> Finding`` in :mod:`cfin.audit.findings`, re-measured by ``tests/test_audit.py``.
"""
from cfin.audit.context import AuditContext
from cfin.audit.findings import FINDINGS
from cfin.audit.record import AuditReport, Finding
from cfin.audit.render import load_report, render_audit, render_html, render_markdown
from cfin.audit.runner import run_audit

__all__ = ["AuditContext", "AuditReport", "FINDINGS", "Finding", "load_report", "render_audit", "render_html",
           "render_markdown", "run_audit"]
