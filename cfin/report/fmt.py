"""Numbers as the paper prints them (177.8K, 4.1105G, 32.14 / 0.8940) and paper-vs-ours cells.

A :class:`Cell` is one column of one row: the paper's number, ours, the difference and its
status against the row's tolerance: ``ok`` (within), ``off`` (outside), ``better`` (above the
paper by more than the tolerance, for accuracy), ``na`` (nothing to compare).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

DASH = "—"
STATUS_MARK = {"ok": "✓", "off": "✗", "better": "▲", "na": ""}


def count_k(n) -> str:
    """Parameters in thousands, one decimal: 177_812 -> ``177.8K``."""
    return DASH if n is None else f"{n / 1e3:,.1f}K"


def count_exact(n) -> str:
    return DASH if n is None else f"{int(n):,}"


def macs_g(n) -> str:
    """Multi-Adds in G with five significant digits, trailing zeros kept so a column reads alike:
    ``4.1105G``, ``31.182G``, ``116.85G``, ``9.1000G``."""
    return DASH if n is None else f"{n / 1e9:#.5g}".rstrip(".") + "G"


def psnr(v) -> str:
    return DASH if v is None else f"{v:.2f}"


def ssim(v) -> str:
    return DASH if v is None else f"{v:.4f}"


def megabytes(v) -> str:
    """MiB as the paper prints GPU memory (11419M); one decimal below 100M."""
    if v is None:
        return DASH
    return f"{v:,.0f}M" if abs(v) >= 100 else f"{v:.1f}M"


def seconds(v) -> str:
    return DASH if v is None else f"{v:.3f}s"


def code_spans(text) -> Markup:
    """Text written for the Markdown reports, for an HTML page: escaped, its `code` spans as <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


@dataclass(frozen=True)
class Cell:
    """Paper | ours | delta, and how the delta stands against the tolerance."""

    paper: str = DASH
    ours: str = DASH
    delta: str = DASH
    status: str = "na"
    tolerance: str = ""  # a row's own tolerance, where it is not the default

    @property
    def mark(self) -> str:
        """✓, ✗ or ▲ (the status as the Markdown and the HTML print it); "" where not judged."""
        return STATUS_MARK[self.status]

    @property
    def delta_marked(self) -> str:
        mark = self.mark
        text = f"{self.delta} {mark}" if mark else self.delta
        return f"{text} (tol {self.tolerance})" if self.tolerance and mark else text


def relative_cell(paper, ours, tolerance: float | None, fmt, ours_text: str | None = None,
                  paper_text: str | None = None, tolerance_text: str = "") -> Cell:
    """Counts: the delta relative to the paper's number (``+0.12%``)."""
    p = paper_text if paper_text is not None else fmt(paper)
    o = ours_text if ours_text is not None else fmt(ours)
    if paper is None or ours is None or paper == 0:
        return Cell(p, o)
    rel = (ours - paper) / paper
    status = "na" if tolerance is None else ("ok" if abs(rel) <= tolerance + 1e-12 else "off")
    return Cell(p, o, f"{rel * 100:+.2f}%", status, tolerance_text)


def absolute_cell(paper, ours, tolerance: float | None, fmt, unit: str = "", ours_text: str | None = None,
                  tolerance_text: str = "") -> Cell:
    """PSNR (dB) and SSIM: the absolute difference; above the paper by more than the tolerance is ``better``."""
    p, o = fmt(paper), ours_text if ours_text is not None else fmt(ours)
    if paper is None or ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return Cell(p, o)
    d = ours - paper
    if tolerance is None:
        status = "na"
    elif abs(d) <= tolerance + 1e-12:
        status = "ok"
    else:
        status = "better" if d > 0 else "off"
    return Cell(p, o, f"{fmt(d) if d < 0 else '+' + fmt(d)}{unit}", status, tolerance_text)
