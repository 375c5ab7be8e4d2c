"""Number formatting for findings' prose (the measurement dicts keep the raw numbers)."""
from __future__ import annotations


def n(x: int) -> str:
    """3382410 -> '3,382,410'."""
    return f"{int(x):,}"


def m(x: float) -> str:
    """3382410 -> '3.38M', 698826 -> '699K'."""
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:.0f}K"
    return f"{x:g}"


def g(macs: float) -> str:
    """Multiply-adds in G: 230986018944 -> '231.0G'."""
    return f"{macs / 1e9:.1f}G"


def sci(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}e}"


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def test_name(fn: str) -> str:
    return f"tests/test_audit.py::{fn}"
