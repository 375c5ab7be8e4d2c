"""The paper's printed numbers, transcribed as printed ("177.8K", "4.1105G", "32.49/0.8985").

Table modules keep every number in the form the paper prints it, so a reader can check a
row against the paper by eye; these helpers turn those strings into the plain integers and
floats of :class:`cfin.tables.PaperNumbers`. :class:`Columns` names a table's printed columns
once, so that each row is one line: its id, its config, its numbers as printed.
"""
from __future__ import annotations

from decimal import Decimal

from cfin.config import CFINConfig
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


COUNT_COLUMNS = ("params", "multi_adds", "memory", "time")  # :func:`printed`'s count arguments


class Columns:
    """A table's printed columns in the paper's order, so that a row is transcribed in one line.

    ``Columns("params", "multi_adds", "Set5", "Set14")``: the count columns by their name in
    :data:`COUNT_COLUMNS`, every other name a dataset's metric column.
    """

    def __init__(self, *names: str):
        self.names = names
        self.datasets = tuple(n for n in names if n not in COUNT_COLUMNS)

    def numbers(self, line: str) -> PaperNumbers:
        """One row's printed values, whitespace-separated, one per column ("-" where blank):
        ``"192K 17.35G 31.63 28.19 25.29"``."""
        texts = line.split()
        if len(texts) != len(self.names):
            raise CFINError(f"expected {len(self.names)} printed values ({' '.join(self.names)}), got {line!r}")
        cell = dict(zip(self.names, texts))
        return printed(self.datasets, " ".join(cell[d] for d in self.datasets),
                       **{c: cell[c] for c in COUNT_COLUMNS if c in cell})

    def row(self, id: str, config: CFINConfig | None, line: str, **fields) -> Row:
        """A row: its id, its CFIN variant (None for another method's row), its printed values
        (:meth:`numbers`), and any other :class:`Row` field by keyword (``note``, ``tolerance``,
        ``self_ensemble``, ...). A row without a config is quoted unless ``quoted`` says otherwise."""
        fields.setdefault("quoted", config is None)
        return Row(id, config, self.numbers(line), **fields)

    def quoted_rows(self, block: str, prefix: str = "", per_method=None, **fields) -> tuple[Row, ...]:
        """Rows of other methods from a block of lines, each ``name`` then its printed values; the row
        id is ``prefix + name``, ``fields`` go to every row, and ``per_method(name)`` (e.g.
        :func:`ablations.peers.quoted_fields`) gives each row fields of its own."""
        return tuple(self.row(prefix + name, None, values, **fields, **(per_method(name) if per_method else {}))
                     for name, values in (line.split(None, 1) for line in block.strip().splitlines()))
