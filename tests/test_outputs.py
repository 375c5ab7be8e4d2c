"""Every place a command writes is checked before the work whose results it would hold: a
file where a folder belongs (or a folder where a file belongs) is one message and exit 2."""
from __future__ import annotations

import errno
import importlib.util
from pathlib import Path

import pytest

from cfin.atomic import atomic_write
from cfin.cli import main as cfin_main
from cfin.errors import CFINError
from cfin.paths import REPO_ROOT, output_dir, output_file


def _run_all(argv):
    spec = importlib.util.spec_from_file_location("run_all_outputs", REPO_ROOT / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


CASES = [
    (cfin_main, ["train", "--preset", "tiny", "--out", "{afile}"], "--out {afile} is a file; expected a folder"),
    (cfin_main, ["evaluate", "--model", "bicubic", "--scale", "4", "--save-images", "{afile}/x"],
     "--save-images {afile}/x: cannot create this folder"),
    (cfin_main, ["audit", "--out", "{afile}", "--only", "unused-parameters"], "--out {afile} is a file"),
    (cfin_main, ["bench", "--preset", "tiny", "--lr-size", "8x8", "--output", "{tmp}"],
     "--output {tmp} is a folder; expected a file name"),
    (cfin_main, ["complexity", "--preset", "tiny", "--no-libs", "--no-measure", "--output", "{afile}/x.json"],
     "--output {afile}/x.json: its folder {afile} is a file"),
    (cfin_main, ["convert", "{tmp}/model_best_x4.pt", "--scale", "4", "--out", "{tmp}"], "--out {tmp} is a folder"),
    (_run_all, ["--table", "VII", "--results", "{afile}"], "--results {afile} is a file; expected a folder"),
    (_run_all, ["--table", "VII", "--runs", "{afile}"], "--runs {afile} is a file"),
    (_run_all, ["--report-only", "--reports", "{afile}"], "--reports {afile} is a file"),
    (_run_all, ["--complexity-only", "--table", "VII", "--reports", "{afile}"], "--reports {afile} is a file"),
]


@pytest.mark.parametrize("main, argv, message", CASES, ids=lambda v: v[0] if isinstance(v, list) else None)
def test_an_unusable_output_path_fails_before_any_work(main, argv, message, afile, tmp_path, capsys):
    where = {"afile": afile, "tmp": tmp_path}
    assert main([a.format(**where) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(**where) in err, err
    assert afile.read_text() == "not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_that_takes_no_file_fails_the_check_whatever_its_mode_says(capsys):
    """/proc's mode lets root write (os.access says yes) but it takes no new file: like a folder
    that is not writable, it is named before the work, not met as a traceback after it."""
    with pytest.raises(CFINError, match="/proc is not writable"):
        output_dir("/proc/cfin-bench-out", "--results", create=False)
    argv = ["complexity", "--preset", "tiny", "--no-libs", "--no-measure", "--lr-size", "8x8"]
    assert cfin_main([*argv, "--output", "/proc/cfin-bench.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err], err
    assert "--output /proc/cfin-bench.json: its folder /proc: /proc is not writable" in err


def test_a_write_that_fails_midway_is_one_message_naming_the_file_and_leaves_nothing(tmp_path):
    """An output that cannot be written (a full disk, a file system that refuses it) is a CFINError
    naming the file asked for, not the temporary beside it, and no temporary is left."""
    def write(f):
        f.write(b"half a record")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CFINError, match=f"cannot write {tmp_path / 'r.json'} \\(No space left on device\\)"):
        atomic_write(tmp_path / "r.json", write)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("main, argv, option", [
    (cfin_main, ["train", "--preset", "tiny", "--out", ""], "--out"),  # was: the default run folder
    (cfin_main, ["evaluate", "--model", "bicubic", "--scale", "4", "--save-images", ""], "--save-images"),  # no images
    (cfin_main, ["convert", "", "--scale", "4", "--out", "x.pt"], "official"),
    (cfin_main, ["evaluate", "--model", "bicubic", "--scale", "4", "--data-root", ""], "--data-root"),  # the cwd
    (_run_all, ["--table", "VII", "--results", ""], "--results"),  # records written into the current folder
    (_run_all, ["--table", "VII", "--seeds", "0", ""], "--seeds"),
])
def test_an_empty_value_is_not_the_option_left_out_nor_the_current_folder(main, argv, option, tmp_path, capsys,
                                                                         monkeypatch):
    """``--out "$UNSET"``: an empty value is a mistake to name, not a default or ``.`` to use."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and f": error: {option} was given an empty value; give " in err, err
    assert list(tmp_path.iterdir()) == []


def test_output_paths_are_created_when_missing(tmp_path):
    assert output_dir(tmp_path / "a" / "b", "--x").is_dir()
    assert output_file(tmp_path / "c" / "r.json", "--y") == tmp_path / "c" / "r.json"
    assert (tmp_path / "c").is_dir() and not (tmp_path / "c" / "r.json").exists()


def test_an_output_never_replaces_a_file_of_another_kind(tmp_path, capsys):
    """--output / --out replace an earlier output of the same command, never a trained checkpoint
    or a record that happens to sit at that path."""
    import torch

    import cfin

    trained = tmp_path / "trained.pt"
    cfin.save(cfin.CFIN(cfin.preset("tiny")), trained)
    record = tmp_path / "x4_seed0_smoke_embedded.json"
    record.write_text('{"format": "cfin-record", "version": 1}')
    before = {p: p.read_bytes() for p in (trained, record)}
    for argv, path in ((["complexity", "--preset", "tiny", "--no-libs", "--no-measure", "--lr-size", "8x8"], trained),
                       (["complexity", "--preset", "tiny", "--no-libs", "--no-measure", "--lr-size", "8x8"], record),
                       (["bench", "--preset", "tiny", "--lr-size", "8x8"], record),
                       (["convert", str(tmp_path / "official.pt"), "--scale", "4"], trained)):
        option = "--out" if argv[0] == "convert" else "--output"
        assert cfin_main([*argv, option, str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{option} {path} exists and is not" in err and "writing would replace it" in err, err
    assert {p: p.read_bytes() for p in before} == before
    report = tmp_path / "counts.json"  # an earlier output of the same command is replaced
    argv = ["complexity", "--preset", "tiny", "--no-libs", "--no-measure", "--lr-size", "8x8", "--output", str(report)]
    assert cfin_main(argv) == 0 and cfin_main(argv) == 0
    official = REPO_ROOT.parent / "shared" / "reference" / "official_x4_random_state_dict.pt"
    if official.is_file():
        converted = tmp_path / "converted.pt"
        for _ in range(2):
            assert cfin_main(["convert", str(official), "--scale", "4", "--out", str(converted)]) == 0
        assert torch.load(converted, weights_only=True)["metadata"]["converted_from"] == "official"


def test_a_report_names_a_linked_shared_folder_relative_to_the_repository(tmp_path, monkeypatch):
    """``../shared`` beside a clone is often a link; a report names it as ``../shared/...``, not by
    the machine's folder it points to (a committed report names no machine's folders)."""
    import cfin.paths

    repo, target = tmp_path / "clone" / "repo", tmp_path / "elsewhere"
    repo.mkdir(parents=True)
    (target / "reference").mkdir(parents=True)
    (tmp_path / "clone" / "shared").symlink_to(target)
    monkeypatch.setattr(cfin.paths, "REPO_ROOT", repo)
    assert cfin.paths.shown(tmp_path / "clone" / "shared" / "reference" / "x.pt") == "../shared/reference/x.pt"
    assert cfin.paths.shown(repo / "results" / "r.json") == "results/r.json"
    assert cfin.paths.shown(tmp_path / "other" / "y.pt") == str(tmp_path / "other" / "y.pt")
