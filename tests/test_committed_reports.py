"""The committed reports are what the code makes today.

The complexity reports (reports/complexity/) are regenerated in memory and compared with the
files; after a change to a model, a counting rule or a paper table, rebuild them with
``python run_all.py --complexity-only --table all`` and commit the result. The audit
(reports/audit.md and audit.json) takes minutes to measure: the test checks that it holds the
findings the code has, each confirmed, and that the Markdown is the rendering of the JSON;
rebuild it with ``cfin audit --scale 4``.
"""
from __future__ import annotations

import difflib

from cfin.paths import REPO_ROOT
from cfin.report.complexity import expected_files
from cfin.tables import all_tables

COMMITTED = REPO_ROOT / "reports" / "complexity"
REBUILD = "python run_all.py --complexity-only --table all"


def test_committed_complexity_reports_match_the_code():
    expected = expected_files(all_tables())
    missing = sorted(n for n in expected if not (COMMITTED / n).is_file())
    assert not missing, f"not committed under reports/complexity/: {missing}; run {REBUILD}"
    extra = sorted(p.name for p in COMMITTED.glob("*.md") if p.name not in expected)
    assert not extra, f"reports/complexity/ holds reports of no table: {extra}; delete them"
    from cfin.report.comparison import plot_files

    figures = sorted(name for name in plot_files().values() if not (COMMITTED / name).is_file())
    assert not figures, f"the comparison's figures are not committed in reports/complexity/: {figures}; run {REBUILD}"
    for name, text in expected.items():
        committed = (COMMITTED / name).read_text()
        if committed != text:
            diff = "\n".join(list(difflib.unified_diff(committed.splitlines(), text.splitlines(),
                                                       f"committed {name}", f"computed {name}", lineterm=""))[:40])
            raise AssertionError(f"reports/complexity/{name} no longer matches the code; run {REBUILD}\n{diff}")


AUDIT = REPO_ROOT / "reports"
AUDIT_REBUILD = "cfin audit --scale 4"


def test_committed_audit_holds_the_code_findings():
    import re

    from cfin.audit import FINDINGS, load_report, render_markdown

    report = load_report(AUDIT / "audit.json")
    assert [f.id for f in report.findings] == list(FINDINGS), \
        f"reports/audit.json lists other findings than cfin.audit.FINDINGS; run {AUDIT_REBUILD}"
    assert all(f.confirmed for f in report.findings), [f.id for f in report.findings if not f.confirmed]
    assert report.scale == 4 and report.weights_kind == "fixture"
    assert str(REPO_ROOT.parent) not in (AUDIT / "audit.md").read_text(), "a machine's folder in reports/audit.md"
    assert (AUDIT / "audit.md").read_text() == render_markdown(report), \
        f"reports/audit.md is not the rendering of reports/audit.json; run {AUDIT_REBUILD}"
    tests = set(re.findall(r"^def (test_\w+)", (REPO_ROOT / "tests" / "test_audit.py").read_text(), re.M))
    missing = [f.test for f in report.findings if f.test.rpartition("::")[2] not in tests]
    assert not missing, f"reports/audit.json names tests that tests/test_audit.py lacks: {missing}"
