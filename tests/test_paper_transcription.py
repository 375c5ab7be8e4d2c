"""Every number in ``ablations/`` against the paper's own text (``../shared/paper``).

The table modules transcribe the paper's printed numbers by hand. These tests read the
paper's text, find the lines of each table, and check that every row's Params, Multi-Adds,
memory, time and PSNR/SSIM stand together on one printed line of its table, in the printed
order, that every printed line of a table is some row, and that the line holding a row's
numbers is the line the paper names as that row: a typo in a transcription, a row left out or
two rows swapped fails here, not in a reader's comparison.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from ablations.printed import count
from cfin.tables import PaperNumbers, all_tables

# Misprints in the paper, read as the table modules read them (each row's note says so).
MISPRINTS = {
    "28.22 / 07723": "28.22 / 0.7723",   # Table III, "no mask": the SSIM lacks its point
}
# Tables printed in the text, not as a captioned table: a sentence that finds the paragraph.
IN_THE_TEXT = {
    "V-A.2": "with and\nwithout the upsampling-downsampling branch",
}
# Rows printed under marks, not names: "!" is on, "#" is off (Table III: "+0.08dB after using
# the masking mechanism" is the "!" line); Table VII's columns are KV, then Cross.
PRINTED_LABELS = {("III", "no mask"): "#", ("III", "mask"): "!",
                  ("VII", "Cross"): "# !", ("VII", "KV"): "! #", ("VII", "KV+Cross"): "! !"}
_CAPTION = re.compile(r"^\s*TABLE ([IVX]+):")
_PAIR = re.compile(r"^(\d+\.\d+)/(\d*\.\d+)$")


@dataclass(frozen=True)
class Line:
    """One printed line (or paragraph) of the paper, its numbers parsed by kind."""

    text: str
    counts: tuple[int, ...]
    memory_mb: tuple[float, ...]
    times_s: tuple[float, ...]
    metrics: tuple[tuple[float, float | None], ...]

    @property
    def is_row(self) -> bool:
        """A table's data line: a count or a memory beside at least one metric."""
        return bool(self.counts or self.memory_mb) and bool(self.metrics)


def parse(text: str) -> Line:
    counts, memory, times, metrics = [], [], [], []
    for token in re.sub(r"\s*/\s*", "/", text).split():
        token = token.strip("(),;:.")
        if re.fullmatch(r"\d+(\.\d+)?[KG]", token):
            counts.append(count(token))
        elif re.fullmatch(r"\d+M", token):
            memory.append(float(token[:-1]))
        elif re.fullmatch(r"\d*\.\d+s", token):
            times.append(float(token[:-1]))
        elif m := _PAIR.fullmatch(token):
            metrics.append((float(m[1]), float(m[2])))
        elif m := re.fullmatch(r"(\d+\.\d+)(dB)?", token):
            metrics.append((float(m[1]), None))
    return Line(text, tuple(counts), tuple(memory), tuple(times), tuple(metrics))


def paper_lines(paper: str) -> dict[str, list[Line]]:
    """The printed lines of each captioned table (caption to next caption), and the
    paragraph of each table printed in the text."""
    for wrong, right in MISPRINTS.items():
        assert wrong in paper, f"the misprint {wrong!r} is no longer in the paper's text"
        paper = paper.replace(wrong, right)
    blocks: dict[str, list[Line]] = {}
    current = None
    for text in paper.splitlines():
        if m := _CAPTION.match(text):
            current = m[1]
            blocks[current] = []
        elif current is not None:
            blocks[current].append(parse(text))
    for table_id, sentence in IN_THE_TEXT.items():
        paragraph = next(p for p in paper.split("\n\n") if sentence in p)
        blocks[table_id] = [parse(paragraph.replace("\n", " "))]
    return blocks


def _subsequence(wanted, have) -> bool:
    it = iter(have)
    return all(any(w == h for h in it) for w in wanted)


def matches(numbers: PaperNumbers, line: Line) -> bool:
    """Whether every number the row transcribes stands on ``line`` (metrics in order)."""
    counts = [n for n in (numbers.params, numbers.multi_adds) if n is not None]
    return (_subsequence(counts, line.counts)
            and all(text in line.text for text in numbers.printed.values())  # as printed, to the letter
            and (numbers.memory_mb is None or numbers.memory_mb in line.memory_mb)
            and (numbers.time_s is None or numbers.time_s in line.times_s)
            and _subsequence(list(numbers.metrics.values()), line.metrics))


def transcribed(numbers: PaperNumbers) -> bool:
    return any(v is not None for v in (numbers.params, numbers.multi_adds, numbers.memory_mb,
                                       numbers.time_s)) or bool(numbers.metrics)


@pytest.fixture(scope="module")
def printed_lines(shared):
    return paper_lines((shared / "paper" / "CFIN_paper.txt").read_text(encoding="utf-8"))


@pytest.mark.parametrize("table", all_tables(), ids=lambda t: t.id)
def test_every_row_is_a_printed_line_of_its_table(table, printed_lines):
    assert table.id in printed_lines, f"Table {table.id} not found in the paper's text"
    lines = printed_lines[table.id]
    missing = [row.id for row in table.rows
               if transcribed(row.paper) and not any(matches(row.paper, line) for line in lines)]
    assert not missing, f"Table {table.id}: rows whose numbers no printed line holds: {missing}"
    assert all(transcribed(row.paper) for row in table.rows), f"Table {table.id} has a row without numbers"


@pytest.mark.parametrize("table", [t for t in all_tables() if t.id not in IN_THE_TEXT], ids=lambda t: t.id)
def test_every_printed_line_of_a_table_is_a_row(table, printed_lines):
    rows = [line for line in printed_lines[table.id] if line.is_row]
    assert rows, f"no data lines found under the caption of Table {table.id}"
    left_out = [line.text for line in rows if not any(matches(r.paper, line) for r in table.rows)]
    assert not left_out, f"Table {table.id}: printed lines no row transcribes: {left_out}"


def printed_label(table_id: str, row_id: str) -> str:
    """How the paper names a row: its id, less Table I's scale prefix, or its marks."""
    if (table_id, row_id) in PRINTED_LABELS:
        return PRINTED_LABELS[table_id, row_id]
    return re.sub(r"^x\d ", "", row_id) if table_id == "I" else row_id


@pytest.mark.parametrize("table", [t for t in all_tables() if t.id not in IN_THE_TEXT], ids=lambda t: t.id)
def test_each_row_is_the_printed_line_of_its_name(table, printed_lines):
    """The line holding a row's numbers is the one the paper labels as that row (two rows with
    their numbers swapped would pass the tests above). A line that starts with a number had its
    name wrapped onto the line above it, past blank lines and the scale (Table I's MemNet)."""
    lines = printed_lines[table.id]
    wrong = []
    for row in table.rows:
        label = printed_label(table.id, row.id)
        at = [i for i, line in enumerate(lines) if matches(row.paper, line)]
        named = [i for i in at if _names(lines[i].text, label) or (
            re.match(r"\s*\d", lines[i].text) and _names(_wrapped_name(lines, i), label))]
        if len(at) != 1 or not named:
            wrong.append((row.id, [lines[i].text for i in at]))
    assert not wrong, f"Table {table.id}: rows not on the one printed line of their name: {wrong}"


def _wrapped_name(lines, i: int) -> str:
    """The line a wrapped name stands on above line ``i``: the first one up that is neither blank
    nor a scale marker (Table I's "×2")."""
    return next((lines[j].text for j in range(i - 1, -1, -1)
                 if lines[j].text.strip() and not re.fullmatch(r"\s*×\d\s*", lines[j].text)), "")


def _names(text: str, label: str) -> bool:
    text = text.strip()
    return text == label or text.startswith(label + " ")


def test_the_parser_reads_each_printed_form():
    line = parse("CFIN 699K 31.2G 11419M 0.035s 32.49 / 0.8985 28.74/ 0.7849 27.68/0.7396 -")
    assert line.counts == (699_000, 31_200_000_000)
    assert line.memory_mb == (11419.0,) and line.times_s == (0.035,)
    assert line.metrics == ((32.49, 0.8985), (28.74, 0.7849), (27.68, 0.7396))
    assert parse("model (165K) with and without ... is 31.75dB and 31.63dB.").metrics == ((31.75, None), (31.63, None))
    row = PaperNumbers(params=699_000, metrics={"Set5": (32.49, 0.8985), "B100": (27.68, 0.7396)})
    assert matches(row, line)
    assert not matches(PaperNumbers(params=699_000, metrics={"B100": (27.68, 0.7396), "Set5": (32.49, 0.8985)}), line)
    assert not matches(PaperNumbers(params=698_000, metrics={"Set5": (32.49, 0.8985)}), line)
    assert not matches(PaperNumbers(params=699_000, printed={"params": "699.0K"}), line)
