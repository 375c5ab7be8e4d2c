"""Reports generated from records: the paper's tables and ours side by side (Markdown, HTML, plots),
and the complexity of every row computed from the code alone."""
from cfin.report.build import build_reports, write_index, write_table_report
from cfin.report.complexity import complexity_markdown, expected_files, write_complexity_reports

__all__ = ["build_reports", "write_index", "write_table_report", "complexity_markdown", "expected_files",
           "write_complexity_reports"]
