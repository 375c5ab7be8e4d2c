"""Files in the results folder that are not records this code reads: hand-edited fields, other
files, a newer version's records, copies, records of unknown tables, rows or budgets. Each is one
line naming the file and what to do, exit status 2, raised before any row trains or any report
is written, and the file is left as it was. The fixture table and records: tests/test_run_all.py."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

import cfin.tables
import fixture_tables
from cfin.errors import CFINError
from cfin.records import load_records, read_record, records_frame
from test_run_all import Runner, _copy_fixture_records, _one_line_error, _patch

KV_OFF = Path("TINY") / "KV_off" / "x4_seed0_micro_embedded.json"
KV_CROSS = Path("TINY") / "KV+Cross" / "x4_seed0_micro_embedded.json"
TRAIN = ("--table", "TINY", "--budget", "micro", "--device", "cpu")


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: a file's bytes, None for a folder, a link's target for a link."""
    return {str(p.relative_to(root)): ("link", os.readlink(p)) if p.is_symlink() else None if p.is_dir()
            else p.read_bytes() for p in sorted(root.rglob("*"))}


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path, monkeypatch):
    """The fixture records under ``tmp_path/results``, the fixture table and micro budget patched in."""
    _patch(monkeypatch)
    return _copy_fixture_records(tmp_path)


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if any row trains."""
    def train(job, progress=True):
        raise AssertionError(f"{job.name} trained")
    monkeypatch.setattr("cfin.runner.row.compute_record", train)


def _check_refused(capsys, rc, root: Path, before: dict, *needles: str) -> None:
    """One line with ``needles``, status 2, nothing trained or written, the results as they were."""
    _one_line_error(capsys, rc, *needles)
    assert _snapshot(root / "results") == before
    assert not (root / "runs").exists() and not (root / "reports").exists()


def _set(field, value):
    return lambda r: r.__setitem__(field, value)


HAND_EDITS = {
    "psnr a string": (lambda r: r["metrics"]["embedded"].update(psnr="15.2"),
                      "field 'metrics.embedded.psnr' must be a number (got '15.2')"),
    "metrics a string": (_set("metrics", "good"), "field 'metrics' must be a JSON object (got 'good')"),
    "no table": (lambda r: r.pop("table"), "field 'table' is missing (a string expected)"),
    "seed a string": (_set("seed", "zero"), "field 'seed' must be an int (got 'zero')"),
    "scale a bool": (_set("scale", True), "field 'scale' must be an int (got True)"),
    "curve a number": (_set("curve", 5), "field 'curve' must be a list (got 5)"),
    "curve point": (_set("curve", [{"iteration": 1, "loss": "low"}]),
                    "field 'curve[0].loss' must be a number or null (got 'low')"),
    "memory a list": (_set("memory", [40]), "field 'memory' must be a JSON object or null (got [40])"),
    "env a string": (_set("env", "cpu"), "field 'env' must be a JSON object or null (got 'cpu')"),
    "complexity input": (lambda r: r["complexity"]["paper"].update(input=[1, 3]),
                         "field 'complexity.paper.input' must be a list of 4 ints (got [1, 3])"),
    "version a string": (_set("version", "2"), "field 'version' must be an int (got '2')"),
    "lr step a string": (lambda r: r["recipe"].update(lr_step_every="1000"),
                         "field 'recipe.lr_step_every' must be an int (got '1000')"),
}


@pytest.mark.parametrize("edit", HAND_EDITS, ids=list(HAND_EDITS))
def test_report_only_names_the_hand_edited_field(results, capsys, edit):
    change, message = HAND_EDITS[edit]
    path = results / KV_OFF
    _edit(path, change)
    before = _snapshot(results)
    rc = Runner(results.parent)("--report-only")
    _check_refused(capsys, rc, results.parent, before, f"record {path}: {message}; fix or delete it")


def _binary(path: Path) -> None:
    path.write_bytes(bytes(range(256)))


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("a folder named like a record")


def _newer(path: Path) -> None:
    _edit(path, _set("version", 999))


def _foreign(path: Path) -> None:
    path.write_text('{"loss": [1, 2, 3]}')


def _truncated(path: Path) -> None:
    path.write_text(path.read_text()[:100])


def _dangling(path: Path) -> None:
    """Records kept on another drive, linked in, the drive not mounted."""
    path.unlink()
    path.symlink_to(Path("elsewhere") / path.name)


UNREADABLE = {
    "binary": (_binary, "is not a text file (not UTF-8 JSON); move it out of the results folder or delete it"),
    "folder": (_folder, "is a folder, not a record file; move it out of the results folder"),
    "newer version": (_newer, "has version 999, written by a newer cfin-bench (this code reads up to version 1); "
                              "read it with that version, or move it out of the results folder"),
    "foreign JSON": (_foreign, 'is not a cfin-record file (no "format": "cfin-record"); the results folder holds '
                               'records only: move it out of the results folder'),
    "truncated": (_truncated, "is not valid JSON"),
    "dangling link": (_dangling, "is a link to elsewhere/"),
}


@pytest.mark.parametrize("kind", UNREADABLE, ids=list(UNREADABLE))
def test_report_only_names_a_file_it_cannot_read(results, capsys, kind):
    spoil, message = UNREADABLE[kind]
    path = results / KV_OFF
    spoil(path)
    before = _snapshot(results)
    _check_refused(capsys, Runner(results.parent)("--report-only"), results.parent, before, f"{path} {message}")


@pytest.mark.parametrize("kind", UNREADABLE, ids=list(UNREADABLE))
@pytest.mark.parametrize("force", [False, True], ids=["resume", "force"])
def test_run_never_replaces_a_record_it_cannot_read(results, capsys, no_training, kind, force):
    """A file at a row's record path that this code cannot read (or a newer version wrote) stops
    the run before any row trains, --force or not; the file stays."""
    spoil, message = UNREADABLE[kind]
    path = results / KV_CROSS
    spoil(path)
    before = _snapshot(results)
    rc = Runner(results.parent)(*TRAIN, *(["--force"] if force else []))
    _check_refused(capsys, rc, results.parent, before, f"{path} {message}")


def test_jobs_check_every_record_before_any_row_trains(results, no_training):
    """The library: needs_run reads what is at a record's path even when forced, and run_jobs asks
    it of every job before running the first ("KV off" seed 2 has no record and would train)."""
    from cfin.runner import plan_jobs, run_jobs
    from cfin.runner.row import needs_run

    _newer(results / KV_CROSS)
    before = _snapshot(results)
    for force in (False, True):
        jobs = plan_jobs([fixture_tables.TABLE], "micro", [2, 0], None, results, results.parent / "runs", "cpu",
                         force)
        assert [j.row.id for j in jobs] == ["KV off", "KV off", "KV+Cross", "KV+Cross"]
        with pytest.raises(CFINError, match="written by a newer cfin-bench"):
            needs_run(jobs[3])
        with pytest.raises(CFINError, match="written by a newer cfin-bench"):
            run_jobs(jobs, progress=False)
    assert _snapshot(results) == before


@pytest.mark.parametrize("mode", [(), TRAIN], ids=["report-only", "run"])
def test_a_stray_file_in_the_results_folder_stops_before_anything(results, capsys, no_training, mode):
    stray = results / "TINY" / "KV_off" / "other.json"
    stray.write_text('{"note": "not a record"}')
    before = _snapshot(results)
    rc = Runner(results.parent)(*(mode or ("--report-only",)))
    _check_refused(capsys, rc, results.parent, before, str(stray), "is not a cfin-record file",
                   "move it out of the results folder")


def _unlistable(monkeypatch, folder: Path) -> None:
    """``folder`` as a chmod 000 folder looks to anyone but root: it cannot be listed and nothing
    in it can be looked at."""
    def refuse(real, itself):
        def call(path, *args, **kwargs):
            if (itself and Path(os.fspath(path)) == folder) or folder in Path(os.fspath(path)).parents:
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real(path, *args, **kwargs)
        return call
    for name, itself in (("scandir", True), ("listdir", True), ("stat", False)):
        monkeypatch.setattr(os, name, refuse(getattr(os, name), itself))


@pytest.mark.parametrize("mode", [("--report-only",), TRAIN], ids=["report-only", "run"])
def test_a_results_folder_it_cannot_list_stops_before_anything(results, capsys, no_training, monkeypatch, mode):
    """A row folder of results/ that cannot be read is not a row without records: glob would skip
    it, the reports would leave its records out and a run would train its rows again."""
    folder = results / "TINY" / "KV_off"
    _unlistable(monkeypatch, folder)
    _one_line_error(capsys, Runner(results.parent)(*mode), f"cannot read {folder} (Permission denied)")
    assert not (results.parent / "runs").exists() and not (results.parent / "reports").exists()
    assert Runner(results.parent)("--status", "--table", "TINY", "--budget", "micro") == 2
    out, err = capsys.readouterr()
    assert "unreadable" in out and err.strip().splitlines() == [
        f"run_all.py: a run would stop before any training: cannot read {folder} (Permission denied); make it "
        f"readable, or move it out of the results folder"]


def test_a_copy_of_a_record_is_not_a_second_seed(results, capsys):
    copy = results / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.backup.json"
    shutil.copy(results / KV_CROSS, copy)
    before = _snapshot(results)
    _check_refused(capsys, Runner(results.parent)("--report-only"), results.parent, before,
                   f"records {copy} and {results / KV_CROSS} are both Table TINY / KV+Cross, x4 seed 0, micro "
                   f"budget, embedded; keep one and move the other out of the results folder")
    with pytest.raises(CFINError, match="are both Table TINY / KV\\+Cross"):
        records_frame(results)


@pytest.mark.parametrize("how", ["renamed", "seed edited"])
@pytest.mark.parametrize("mode", [(), TRAIN], ids=["report-only", "run"])
def test_a_record_not_at_its_keys_file_is_named(results, capsys, no_training, how, mode):
    """A renamed record (or one whose key fields were edited) would not be found when its row is
    rerun, so the row would be trained again and a duplicate written: it is refused, naming the
    file it should be."""
    if how == "renamed":
        path = results / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.old.json"
        (results / KV_CROSS).rename(path)
        key = "Table TINY / KV+Cross, x4 seed 0"
        where = Path("TINY", "KV+Cross", "x4_seed0_micro_embedded.json")
    else:
        path = results / KV_OFF
        _edit(path, _set("seed", 5))
        key = "Table TINY / KV off, x4 seed 5"
        where = Path("TINY", "KV_off", "x4_seed5_micro_embedded.json")
    before = _snapshot(results)
    rc = Runner(results.parent)(*(mode or ("--report-only",)))
    _check_refused(capsys, rc, results.parent, before,
                   f"record {path}: its fields make it {key}, micro budget, embedded, whose file is {where} "
                   f"under the results folder")


UNKNOWN = {
    "table": (_set("table", "XI"), "unknown table 'XI'; valid: TINY"),
    "row": (_set("row", "KV on"), "unknown row of Table TINY 'KV on'; valid: KV off, KV+Cross"),
    "quoted row": (_set("row", "Other net"), "unknown row of Table TINY 'Other net'; valid: KV off, KV+Cross"),
    "budget": (_set("budget", "huge"), "unknown budget 'huge'; valid: smoke, short, paper, paper-text, micro"),
    "dataset": (_set("dataset", "div3k"), "unknown dataset 'div3k'; valid: embedded, div2k"),
    "scale": (_set("scale", 3), "scale 3 is not that of row 'KV off' of Table TINY (x4)"),
}


@pytest.mark.parametrize("what", UNKNOWN, ids=list(UNKNOWN))
@pytest.mark.parametrize("mode", [(), TRAIN], ids=["report-only", "run"])
def test_a_record_of_an_unknown_table_row_or_budget_names_its_file(results, capsys, no_training, what, mode):
    change, message = UNKNOWN[what]
    path = results / KV_OFF
    _edit(path, change)
    before = _snapshot(results)
    rc = Runner(results.parent)(*(mode or ("--report-only",)))
    _check_refused(capsys, rc, results.parent, before,
                   f"record {path}: {message}; fix it or move it out of the results folder")


def test_report_only_checks_every_table_asked_for_before_writing(results, capsys, monkeypatch):
    other = types.ModuleType("fixture_tables_other")
    other.TABLE = dataclasses.replace(fixture_tables.TABLE, id="TINY2")
    monkeypatch.setitem(sys.modules, other.__name__, other)
    monkeypatch.setitem(cfin.tables.TABLE_MODULES, "TINY2", other.__name__)
    before = _snapshot(results)
    rc = Runner(results.parent)("--report-only", "--table", "TINY", "TINY2")
    _check_refused(capsys, rc, results.parent, before, f"no records for Table TINY2 under {results}/ (nothing "
                   f"written); run python run_all.py --table TINY2 first, or leave TINY2 out of --table")


def test_results_folder_that_is_missing_or_a_file(tmp_path, monkeypatch, capsys, no_training):
    _patch(monkeypatch)
    run = Runner(tmp_path).module.main
    missing, a_file = tmp_path / "nope", tmp_path / "results.txt"
    a_file.write_text("not a folder")
    reports = ["--reports", str(tmp_path / "reports"), "--runs", str(tmp_path / "runs"), "--no-progress"]
    _one_line_error(capsys, run(["--report-only", "--results", str(missing), *reports]),
                    f"results folder {missing} does not exist; give --results the folder that holds the records")
    _one_line_error(capsys, run(["--report-only", "--results", str(a_file), *reports]),
                    f"results folder {a_file} is a file, not a folder")
    _one_line_error(capsys, run([*TRAIN, "--results", str(a_file), *reports]),
                    f"--results {a_file} is a file; expected a folder")
    assert a_file.read_text() == "not a folder"
    assert not missing.exists() and not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()
    assert load_records(missing) == []  # a run before its first record


def test_read_record_accepts_the_fixture_and_sets_its_path(results):
    record = read_record(results / KV_OFF)
    assert record["path"] == str(results / KV_OFF) and record["seed"] == 0
    assert len(load_records(results)) == 3
