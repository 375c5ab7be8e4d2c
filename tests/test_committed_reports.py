"""The committed complexity reports (reports/complexity/) are what the code computes today.

They are regenerated in memory and compared with the files; after a change to a model, a
counting rule or a paper table, rebuild them with
``python run_all.py --complexity-only --table all`` and commit the result.
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
    for name, text in expected.items():
        committed = (COMMITTED / name).read_text()
        if committed != text:
            diff = "\n".join(list(difflib.unified_diff(committed.splitlines(), text.splitlines(),
                                                       f"committed {name}", f"computed {name}", lineterm=""))[:40])
            raise AssertionError(f"reports/complexity/{name} no longer matches the code; run {REBUILD}\n{diff}")
