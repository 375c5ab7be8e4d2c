"""The paper's printed numbers, transcribed as printed ("177.8K", "4.1105G", "32.49/0.8985").

Table modules keep every number in the form the paper prints it, so a reader can check a
row against the paper by eye; these helpers turn those strings into the plain integers and
floats of :class:`cfin.tables.PaperNumbers`.
"""
from __future__ import annotations

from decimal import Decimal

from cfin.errors import CFINError
from cfin.tables import PaperNumbers, Row

_UNITS = {"K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9}
MISSING = "-"  # what the paper prints where it has no number


def count(text: str) -> int | None:
    """A printed count as an int: ``"177.8K"`` -> 177_800, ``"4.1105G"`` -> 4_110_500_000; "-" -> None."""
    text = text.strip()
    if text == MISSING:
        return None
    if not text or text[-1] not in _UNITS:
        raise CFINError(f"a printed count ends in K, M or G, got {text!r}")
    return int(Decimal(text[:-1]) * _UNITS[text[-1]])


def memory_mb(text: str) -> float | None:
    """A printed GPU memory ``"11419M"`` in MB; "-" -> None."""
    text = text.strip()
    return None if text == MISSING else float(text.removesuffix("M"))


def seconds(text: str) -> float | None:
    """A printed time ``"0.035s"`` in seconds; "-" -> None."""
    text = text.strip()
    return None if text == MISSING else float(text.removesuffix("s"))


def metric(text: str) -> tuple[float, float | None] | None:
    """``"32.49/0.8985"`` -> (32.49, 0.8985); ``"31.63"`` -> (31.63, None); "-" -> None."""
    text = text.replace(" ", "")
    if text == MISSING:
        return None
    psnr, _, ssim = text.partition("/")
    return float(psnr), (float(ssim) if ssim else None)


def metrics(datasets: tuple[str, ...], texts: list[str] | tuple[str, ...]) -> dict[str, tuple[float, float | None]]:
    """One printed metric per dataset, in order; datasets the paper leaves blank ("-") are left out."""
    if len(texts) != len(datasets):
        raise CFINError(f"expected {len(datasets)} metrics ({', '.join(datasets)}), got {list(texts)}")
    return {d: m for d, t in zip(datasets, texts) if (m := metric(t)) is not None}


def printed(datasets: tuple[str, ...], metric_texts: str, params: str = MISSING, multi_adds: str = MISSING,
            memory: str = MISSING, time: str = MISSING) -> PaperNumbers:
    """A row's printed numbers: ``printed(("Set14",), "32.49/0.8985", "177.8K", "4.1105G")``.

    ``metric_texts``: one printed metric per dataset, whitespace-separated ("-" where blank).
    """
    texts = {"params": params, "multi_adds": multi_adds, "memory_mb": memory, "time_s": time}
    return PaperNumbers(params=count(params), multi_adds=count(multi_adds), memory_mb=memory_mb(memory),
                        time_s=seconds(time), metrics=metrics(datasets, metric_texts.split()),
                        printed={k: v.strip() for k, v in texts.items() if v.strip() != MISSING})


def quoted_rows(block: str, datasets: tuple[str, ...], prefix: str = "", note: str = "") -> tuple[Row, ...]:
    """Rows of other methods from a whitespace-separated block, one method per line.

    Each line: ``name params multi_adds metric...`` (one metric per dataset, "-" where the
    paper prints none). The row id is ``prefix + name``.
    """
    rows = []
    for line in block.strip().splitlines():
        name, params, multi_adds, *rest = line.split()
        rows.append(Row(prefix + name, None, printed(datasets, " ".join(rest), params, multi_adds),
                        quoted=True, note=note))
    return tuple(rows)
