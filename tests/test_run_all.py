"""run_all.py end to end on a tiny fixture table and a micro budget; reports against a golden file;
resume, force and the errors a user can make. The fixture table and budget: tests/fixture_tables.py."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cfin
import cfin.paths
import cfin.tables
import torch
import fixture_tables
from cfin.paths import REPO_ROOT
from cfin.records import load_records, read_record, records_frame
from cfin.train import RECIPES

DATA = Path(__file__).parent / "data" / "run_all"
PAPER_TABLES = dict(cfin.tables.TABLE_MODULES)  # before any test swaps in the fixture table
ROWS = ("KV off", "KV+Cross")


def _load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", REPO_ROOT / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _patch(mp: pytest.MonkeyPatch) -> None:
    """Only the fixture table exists; the micro budget is a recipe."""
    mp.setattr(cfin.tables, "TABLE_MODULES", {"TINY": "fixture_tables"})
    mp.setitem(RECIPES, "micro", fixture_tables.MICRO)


class Runner:
    def __init__(self, root: Path):
        self.root = root
        self.module = _load_run_all()

    def dirs(self) -> list[str]:
        return ["--results", str(self.root / "results"), "--runs", str(self.root / "runs"),
                "--reports", str(self.root / "reports")]

    def __call__(self, *argv: str) -> int:
        return self.module.main([*argv, *self.dirs(), "--no-progress"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``--table TINY --budget micro --jobs 2`` once, after an interrupted start of row "KV off"."""
    root = tmp_path_factory.mktemp("run_all")
    with pytest.MonkeyPatch.context() as mp:
        _patch(mp)
        run = Runner(root)
        # Interrupt "KV off" after 2 of its 4 iterations, as a killed run would leave it.
        from cfin.runner import plan_jobs
        from cfin.runner.row import _prepare_run_dir
        from cfin.commands.train import build_data
        from cfin.train import train
        import torch
        import cfin

        job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, root / "results", root / "runs")[0]
        assert job.row.id == "KV off"
        _prepare_run_dir(job)
        torch.manual_seed(0)
        model = cfin.CFIN(job.row.config)
        train_set, val_set, _ = build_data(None, 4, job.recipe, False)
        train(model, job.recipe, train_set, job.run_dir, device="cpu", val_set=val_set, progress=False,
              max_iterations=2)
        rc = run("--table", "TINY", "--budget", "micro", "--device", "cpu", "--jobs", "2")
        yield run, rc


def test_end_to_end_records(tiny_run):
    run, rc = tiny_run
    assert rc == 0
    records = {r["row"]: r for r in load_records(run.root / "results")}
    assert set(records) == set(ROWS)  # the quoted row is never run
    rec = records["KV+Cross"]
    assert Path(rec["path"]) == run.root / "results" / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.json"
    assert (rec["table"], rec["scale"], rec["seed"], rec["budget"], rec["dataset"]) == ("TINY", 4, 0, "micro",
                                                                                       "embedded")
    assert rec["config"]["kv_share"] is True and records["KV off"]["config"]["kv_share"] is False
    assert len(rec["config_hash"]) == 16 and rec["config_hash"] != records["KV off"]["config_hash"]
    assert rec["recipe"]["name"] == "micro" and rec["recipe"]["iterations"] == 4
    m = rec["metrics"]["embedded"]
    assert m["images"] == 4 and 5 < m["psnr"] < 40 and 0 < m["ssim"] < 1
    from cfin.complexity import CONVENTIONS

    assert set(rec["complexity"]) == {n for n, c in CONVENTIONS.items() if not c.peers_only}
    assert rec["complexity"]["full"]["params"] >= rec["complexity"]["paper"]["params"] > 0
    assert rec["memory"]["peak_mb"] >= 0 and "training step" in rec["memory"]["condition"]
    assert rec["latency"]["seconds"] > 0
    assert rec["env"]["torch"] and "git_commit" in rec["env"] and rec["env"]["device"] == "cpu"
    assert rec["wall_time_s"] > 0 and rec["command"].startswith("python run_all.py --table TINY")
    assert rec["training"]["completed"] and rec["training"]["iterations"] == 4
    assert [p["iteration"] for p in rec["curve"]] == [1, 2, 3, 4]
    assert rec["training"]["scored_weights"] == {"weights": "best", "iteration": rec["training"]["best_iteration"],
                                                 "val_psnr": rec["training"]["best_val_psnr"]}
    # "KV off" was interrupted at iteration 2: it resumed from its checkpoint
    assert records["KV off"]["training"]["resumed_from"] == 2 and rec["training"]["resumed_from"] is None


def test_end_to_end_reports(tiny_run):
    run, _ = tiny_run
    reports = run.root / "reports"
    md = (reports / "table_TINY.md").read_text()
    assert "## micro budget on embedded images: accuracy not comparable to the paper" in md
    folders = " ".join(f"--{n} {run.root / n}" for n in ("results", "runs", "reports"))
    assert f"Reproduce: `python run_all.py --table TINY --budget micro --seeds 0 {folders}`" in md
    assert f"Rebuild: `python run_all.py --report-only --table TINY {folders}`" in md
    assert ("scored with the weights of the best validation PSNR (the official code's model_best) for 2 of 2 "
            "record(s)") in md
    for row in ROWS:
        assert f"| {row} |" in md
    html = (reports / "table_TINY.html").read_text()
    assert "<table" in html and 'class="num delta' in html
    assert "http://" not in html and "https://" not in html  # readable offline
    for kind in ("psnr_params", "curves"):
        png = reports / f"table_TINY_micro_embedded_{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f'src="{png.name}"' in html
    index = (reports / "index.html").read_text()
    assert 'href="table_TINY.html"' in index and "1/2" not in index and "2/2" in index
    assert 'reports/audit.' in index  # none written here: the repository's committed one


def test_rows_are_scored_with_the_best_validated_weights(tmp_path):
    from types import SimpleNamespace

    from cfin.checkpoint import save_checkpoint
    from cfin.runner.row import load_scored_weights

    def tiny(seed):
        torch.manual_seed(seed)
        return cfin.CFIN(cfin.preset("tiny"))

    best, model = tiny(1), tiny(2)
    last = {k: v.clone() for k, v in model.state_dict().items()}
    path = save_checkpoint(best, tmp_path / "best.pt")
    unvalidated = SimpleNamespace(best_weights=None, best_iteration=None, best_psnr=None, iterations=4)
    assert load_scored_weights(model, unvalidated) == {"weights": "last", "iteration": 4}
    assert all(torch.equal(v, last[k]) for k, v in model.state_dict().items())
    validated = SimpleNamespace(best_weights=path, best_iteration=2, best_psnr=21.5, iterations=4)
    assert load_scored_weights(model, validated) == {"weights": "best", "iteration": 2, "val_psnr": 21.5}
    assert all(torch.equal(v, best.state_dict()[k]) for k, v in model.state_dict().items())


def test_index_links_the_audit(tmp_path):
    """The committed audit Markdown (a fresh clone has no audit.html), else the page cfin audit writes."""
    from cfin.report.build import committed_page, write_index

    (tmp_path / "audit.md").write_text("# audit\n")
    assert '<a href="audit.md">Audit' in write_index([], tmp_path).read_text()
    (tmp_path / "audit.html").write_text("<html></html>")
    assert '<a href="audit.html">Audit' in write_index([], tmp_path).read_text()
    elsewhere = tmp_path / "elsewhere"  # reports written with --reports: the repository's committed pages
    index = write_index([], elsewhere).read_text()
    committed = Path(os.path.relpath(cfin.paths.REPO_ROOT / "reports", elsewhere)).as_posix()
    assert f'<a href="{committed}/audit.' in index
    assert committed_page(elsewhere, "complexity/table_VII.md") == f"{committed}/complexity/table_VII.md"


def _screenshot_tool():
    """``tools/screenshot_report.py``, the tool that made the README's picture of a report."""
    spec = importlib.util.spec_from_file_location("screenshot_report", REPO_ROOT / "tools" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SHOT = _screenshot_tool()


@pytest.mark.skipif(SHOT.find_chromium() is None, reason="chromium not installed (Debian package 'chromium'; "
                                                         "CI installs it in .ci/run)")
def test_html_renders_in_headless_chromium(tiny_run, tmp_path):
    run, _ = tiny_run
    page = run.root / "reports" / "table_TINY.html"
    cmd = SHOT.chromium_command(page, tmp_path / "profile", "--dump-dom")
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    # the page's own script counts plots that loaded (naturalWidth > 0) after the load event
    assert 'data-plots-loaded="2/2"' in dom, dom[-2000:]
    assert dom.count('class="cmp"') >= 3
    for row in ROWS:
        assert f'<td class="row">{row}</td>' in dom.replace("&amp;", "&")

    # the screenshot the README's picture is made with: the page drawn, cut at --height, blank rows cropped
    from PIL import Image
    import numpy as np

    out = tmp_path / "shot" / "table_TINY.png"
    assert SHOT.main([str(page), "--out", str(out), "--width", "900", "--height", "700"]) == 0
    with Image.open(out) as image:
        assert image.mode == "P" and image.width == 900 and 200 < image.height <= 700
        gray = np.asarray(image.convert("L"))
    # drawn, not blank: dark text on the light page (a blank or failed render is one colour)
    assert (gray < 100).mean() > 0.005 and (gray > 200).mean() > 0.5
    assert out.stat().st_size < 300_000  # a 256-colour page of this size: tens of KB


def test_the_screenshot_tool_names_a_missing_page(tmp_path, capsys):
    assert SHOT.main([str(tmp_path / "none.html"), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "none.html is not a file" in err and "run_all.py --table VII" in err
    assert not (tmp_path / "x.png").exists()


def _copy_fixture_records(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(DATA / "results", results)
    return results


def test_report_from_fixture_records_matches_golden(tmp_path, monkeypatch):
    _patch(monkeypatch)
    _copy_fixture_records(tmp_path)
    monkeypatch.chdir(tmp_path)  # the default folders, as the golden's commands name them
    assert _load_run_all().main(["--report-only", "--no-progress"]) == 0
    expected = (DATA / "expected_table_TINY.md").read_text()
    assert (tmp_path / "reports" / "table_TINY.md").read_text() == expected
    html = (tmp_path / "reports" / "table_TINY.html").read_text()
    # deltas are coloured by status and marked as in the Markdown (a page printed in grey still says it):
    # out of tolerance, within it
    assert '<td class="num delta off" title="off">-40.72% ✗</td>' in html
    assert '<td class="num delta ok" title="ok">-0.17% ✓ <small>(tol ±50%)</small></td>' in html
    assert "micro budget on embedded images: accuracy not comparable to the paper" in html
    # the Markdown's code spans are code in the page too, not backticks
    text = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert "<code>scale</code> border pixels cropped" in text and "`" not in text


def test_records_frame(tmp_path):
    df = records_frame(DATA / "results")
    assert len(df) == 3
    assert set(df["row"]) == set(ROWS)
    assert df.loc[df["row"] == "KV+Cross", "metrics.embedded.psnr"].item() == pytest.approx(15.16)
    assert "complexity.paper.params" in df.columns and "curve" not in df.columns


class _Counting:
    """Stands in for compute_record: counts calls and returns a stored record of the row."""

    def __init__(self, stored: dict[tuple, dict]):
        self.stored, self.calls = stored, []

    def __call__(self, job, progress=True):
        self.calls.append((job.row.id, job.seed))
        rec = dict(self.stored[(job.row.id, job.seed)])
        rec.pop("path", None)
        return rec


def test_resume_skips_finished_rows(tmp_path, monkeypatch):
    _patch(monkeypatch)
    results = _copy_fixture_records(tmp_path)
    stored = {(r["row"], r["seed"]): r for r in load_records(results)}
    fake = _Counting(stored)
    monkeypatch.setattr("cfin.runner.row.compute_record", fake)
    run = Runner(tmp_path)
    argv = ("--table", "TINY", "--budget", "micro", "--seeds", "0", "1", "--device", "cpu")
    kept = results / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.json"
    before = kept.stat().st_mtime_ns
    # "KV+Cross" seed 1 is the only job without a record
    stored[("KV+Cross", 1)] = {**stored[("KV+Cross", 0)], "seed": 1}
    assert run(*argv) == 0
    assert fake.calls == [("KV+Cross", 1)]
    assert kept.stat().st_mtime_ns == before
    # everything recorded now: nothing runs
    assert run(*argv) == 0
    assert fake.calls == [("KV+Cross", 1)]
    # a record made from another config is stale and is recomputed
    stale = read_record(kept)
    stale["config_hash"] = "0" * 16
    kept.write_text(json.dumps({k: v for k, v in stale.items() if k != "path"}))
    assert run(*argv) == 0
    assert fake.calls[1:] == [("KV+Cross", 0)]
    # --force recomputes every row
    assert run(*argv, "--force") == 0
    assert sorted(fake.calls[2:]) == sorted(stored)


@pytest.mark.parametrize("damage", ["truncated", "list", "binary", "folder"])
def test_a_damaged_run_folder_says_how_to_start_over(tmp_path, monkeypatch, damage):
    from cfin.runner import plan_jobs
    from cfin.runner.row import RUN_MARKER, _prepare_run_dir

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs")[0]
    _prepare_run_dir(job)
    marker = job.run_dir / RUN_MARKER
    good = marker.read_bytes()
    marker.unlink()
    if damage == "folder":
        marker.mkdir()
    else:
        marker.write_bytes({"truncated": good[:20], "list": b"[1, 2]", "binary": b"\x80\x81\xff"}[damage])
    with pytest.raises(cfin.CFINError, match=f"{marker} .* is damaged .*; delete {job.run_dir} to start "
                                             f"this row's training over, or run with --force"):
        _prepare_run_dir(job)
    _prepare_run_dir(dataclasses.replace(job, force=True))  # --force starts it over
    assert marker.read_bytes() == good


def test_a_run_folder_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    from cfin.runner import plan_jobs
    from cfin.runner.row import compute_record

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs")[0]
    job.run_dir.parent.mkdir(parents=True)
    job.run_dir.write_text("not a folder")
    with pytest.raises(cfin.CFINError, match="should be this row's run folder but is a file"):
        compute_record(job, progress=False)
    assert job.run_dir.read_text() == "not a folder"


def test_a_garbled_training_log_keeps_its_whole_records(tmp_path):
    from cfin.train.log import TrainLog

    log = tmp_path / "train_log.jsonl"
    log.write_bytes(b'{"iteration": 1, "loss": 2.0}\n\x80\xff garbage\n5\n{"iteration": 2, "loss": 1.5}\n{"iter')
    assert [r["iteration"] for r in TrainLog(log).read()] == [1, 2]


def test_fast_path_rows_train_fast_and_measure_faithful(tmp_path, monkeypatch):
    """``--impl fast``: the row trains and is evaluated by the fast path; the record is the row's
    (same config hash as a faithful one) and says which path; memory and latency are measured
    on the faithful computation with the trained weights."""
    import torch

    from cfin.records import config_hash
    from cfin.runner import plan_jobs
    from cfin.runner.row import compute_record

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs",
                    "cpu", impl="fast")[1]
    seen = {}

    def evaluate(model, *args, **kwargs):
        seen["evaluated"] = model.config
        return {"embedded": {"psnr": 20.0, "ssim": 0.5, "images": 1}}

    def measure(model, config, device, recipe):
        seen["measured"], seen["weights"] = model.config, {k: v.clone() for k, v in model.state_dict().items()}
        return {"memory": {}, "latency": {}}
    monkeypatch.setattr("cfin.evaluate.evaluate_model", evaluate)
    monkeypatch.setattr("cfin.runner.measure.memory_latency", measure)
    record = compute_record(job, progress=False)
    row = job.row.config
    assert record["impl"] == "fast" and record["config_hash"] == config_hash(row) and record["config"] == row.to_dict()
    assert seen["evaluated"] == row.with_impl("fast") and seen["measured"] == row
    assert record["tf32"] is False  # not on a CPU, and not asked for
    scored = record["training"]["scored_weights"]["weights"]
    trained = cfin.load(job.run_dir / ("best.pt" if scored == "best" else "final.pt"))
    assert trained.config == row.with_impl("fast")
    for k, v in trained.state_dict().items():
        assert torch.equal(seen["weights"][k], v)
    with pytest.raises(cfin.CFINError, match="implementation 'turbo'; valid: faithful, fast"):
        plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path, tmp_path, impl="turbo")


def test_report_says_which_records_the_fast_path_and_tf32_made(tmp_path):
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    faithful = build_sections(fixture_tables.TABLE, records)[0]
    assert "--impl" not in faithful.command and not any("fast path" in line for line in faithful.environment)
    for r in records:
        r["impl"] = "fast"
    fast = build_sections(fixture_tables.TABLE, records)[0]
    assert fast.command.endswith("--impl fast")
    assert any("fast path" in line and f"{len(records)} of {len(records)} record(s)" in line
               for line in fast.environment)
    for r in records:
        r["tf32"] = True
    tf32 = build_sections(fixture_tables.TABLE, records)[0]
    assert tf32.command.endswith("--impl fast --tf32")
    assert any("TF32" in line and f"{len(records)} of {len(records)} record(s)" in line for line in tf32.environment)
    records[0]["impl"], records[0]["tf32"] = "faithful", False
    mixed = build_sections(fixture_tables.TABLE, records)[0]
    assert "--impl" not in mixed.command and "--tf32" not in mixed.command
    assert any(f"{len(records) - 1} of {len(records)} record(s)" in line for line in mixed.environment)


def test_report_says_whether_the_ablation_holds(tmp_path):
    """Each row's PSNR gap to the paper's best reproduced row, printed and ours (paired by seed);
    judged only on the paper's budget and data; no grid where ours is not on a paper dataset."""
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    assert not any(g.title == "Does the ablation hold?" for g in build_sections(fixture_tables.TABLE, records)[0].grids)
    psnr = {("KV off", 0): 30.0, ("KV off", 1): 30.2, ("KV+Cross", 0): 30.5, ("KV+Cross", 1): 30.6}
    for r in records:
        r["dataset"], r["budget"] = "div2k", "paper"
        r["metrics"] = {"Set5": {"psnr": psnr[(r["row"], r["seed"])], "ssim": 0.8, "images": 5}}
    kv_cross = next(r for r in records if r["row"] == "KV+Cross")  # a second seed of the reference
    records.append({**kv_cross, "seed": 1, "metrics": {"Set5": {"psnr": 30.6, "ssim": 0.8, "images": 5}}})

    def gaps(recs):
        grid = next(g for g in build_sections(fixture_tables.TABLE, recs)[0].grids
                    if g.title == "Does the ablation hold?")
        return {label: (cells[0], extras[0]) for label, cells, extras, _ in grid.rows}

    kv_off, ref = gaps(records)["KV off"], gaps(records)["KV+Cross"]
    assert (kv_off[0].paper, kv_off[0].ours, kv_off[0].delta, kv_off[0].status) == \
        ("-0.10", "-0.45 ± 0.07 (2 seeds)", "holds", "ok")  # paired: -0.5 and -0.4
    assert kv_off[1] == "KV+Cross" and ref[0].ours == "(reference)"
    for r in records:
        if r["row"] == "KV off":
            r["metrics"]["Set5"]["psnr"] += 1.0
    assert (gaps(records)["KV off"][0].delta, gaps(records)["KV off"][0].status) == ("reversed", "off")
    for r in records:
        r["budget"] = "smoke"
    assert (gaps(records)["KV off"][0].delta, gaps(records)["KV off"][0].status) == ("reversed", "na")
    # a gap that rounds to +0.00, or that one std over seeds spans, has no sign to hold or reverse
    ref_psnr = {0: 30.5, 1: 30.6}
    for shift, spread, delta in ((0.003, 0.0, "no sign (under 0.005 dB)"),
                                 (0.05, 0.2, "no sign (within the seeds' std)"),
                                 (0.05, 0.0, "reversed")):
        for r in records:
            if r["row"] == "KV off":
                r["metrics"]["Set5"]["psnr"] = ref_psnr[r["seed"]] + shift + (spread if r["seed"] else -spread)
        assert gaps(records)["KV off"][0].delta == delta


def test_accuracy_is_the_mean_over_seeds_judged_against_the_rows_tolerance(tmp_path):
    """Ours is the mean over seeds ± the sample std; its delta to the paper is "ok" within the
    row's tolerance (PSNR 0.1 dB, SSIM 0.002 here), "better" above it by more, "off" below."""
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    kv_off = next(r for r in records if r["row"] == "KV off")
    records.append({**kv_off, "seed": 2})
    metrics = {("KV off", 0): (32.30, 0.8850), ("KV off", 1): (32.40, 0.8850), ("KV off", 2): (33.10, 0.8850),
               ("KV+Cross", 0): (31.95, 0.8925)}  # paper: KV off 31.90 / 0.8900, KV+Cross 32.00 / 0.8920
    for r in records:
        psnr, ssim = metrics[(r["row"], r["seed"])]
        r.update(dataset="div2k", budget="paper", metrics={"Set5": {"psnr": psnr, "ssim": ssim, "images": 5}})
    grid = next(g for g in build_sections(fixture_tables.TABLE, records)[0].grids if g.title == "Accuracy")
    assert grid.groups == ["Set5 PSNR", "Set5 SSIM"]
    cells = {label: [(c.ours, c.delta, c.status) for c in row] for label, row, _, _ in grid.rows}
    # KV off: mean 32.60 (median 32.40), std sqrt(0.19 / 2) = 0.44; SSIM 0.005 below the paper
    assert cells["KV off"] == [("32.60 ± 0.44 (3 seeds)", "+0.70 dB", "better"),
                               ("0.8850 ± 0.0000 (3 seeds)", "-0.0050", "off")]
    assert cells["KV+Cross"] == [("31.95", "-0.05 dB", "ok"), ("0.8925", "+0.0005", "ok")]


def test_a_sections_recipe_line_says_how_the_cosine_steps(tmp_path):
    """``paper`` and ``paper-text`` differ in the cosine's step as well as its end: the report's recipe
    line says the official code's per-epoch step (a record from before the field: every iteration)."""
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    assert "stepped" not in build_sections(fixture_tables.TABLE, records)[0].recipe
    for r in records:
        r["recipe"] = {**r["recipe"], "name": "paper", "eta_min": 1e-7, "lr_step_every": 1000}
    assert "cosine to 1e-07 stepped every 1,000 iterations," in build_sections(fixture_tables.TABLE, records)[0].recipe


def test_complexity_caption_names_every_scale_counted(tmp_path):
    """A mixed-scale table (Table I: x2, x3 and x4 rows) labels the input of every scale its
    records were counted at, not the first record's alone."""
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    x2 = next(r for r in records if r["row"] == "KV off")
    x2["scale"] = 2
    for c in x2["complexity"].values():
        c["input"] = [1, 3, 360, 640]
    for ordered in (records, records[::-1]):
        grid = next(g for g in build_sections(fixture_tables.TABLE, ordered)[0].grids if g.title == "Complexity")
        assert "1x3x360x640 LR -> 720x1280 output (x2)" in grid.caption
        assert "1x3x180x320 LR -> 720x1280 output (x4)" in grid.caption


def test_ablation_gap_pairs_the_seeds(tmp_path):
    """A row's gap is taken seed by seed: with the reference trained on seed 1 only, it is the gap
    of the two seed-1 records, whatever order the records come in."""
    from cfin.report.compare import build_sections

    records = load_records(_copy_fixture_records(tmp_path))
    psnr = {("KV off", 0): 30.0, ("KV off", 1): 30.2, ("KV+Cross", 1): 30.5}
    for r in records:
        if r["row"] == "KV+Cross":
            r["seed"] = 1
        r.update(dataset="div2k", budget="paper",
                 metrics={"Set5": {"psnr": psnr[(r["row"], r["seed"])], "ssim": 0.8, "images": 5}})
    for ordered in (records, records[::-1]):
        grid = next(g for g in build_sections(fixture_tables.TABLE, ordered)[0].grids
                    if g.title == "Does the ablation hold?")
        gap = next(cells[0] for label, cells, _, _ in grid.rows if label == "KV off")
        assert (gap.paper, gap.ours, gap.delta) == ("-0.10", "-0.30", "holds")  # 30.2 - 30.5, not 30.0 - 30.5


def _one_line_error(capsys, rc: int, *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("run_all.py: error: ")
    for n in needles:
        assert n in err, err


def test_report_only_without_records(tmp_path, monkeypatch, capsys):
    """An empty results folder (a missing one: tests/test_records.py)."""
    _patch(monkeypatch)
    (tmp_path / "results").mkdir()
    _one_line_error(capsys, Runner(tmp_path)("--report-only"), "no records")


def test_unknown_table(tmp_path, monkeypatch, capsys):
    _patch(monkeypatch)
    _one_line_error(capsys, Runner(tmp_path)("--table", "XIV"), "unknown table 'XIV'", "TINY")


def test_unknown_budget(tmp_path, monkeypatch, capsys):
    _patch(monkeypatch)
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--budget", "huge"), "unknown budget 'huge'",
                    "smoke", "short", "paper")
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--budget", "micro", "--impl", "turbo"),
                    "unknown implementation 'turbo'", "faithful, fast")


def test_bad_seeds_and_missing_table(tmp_path, monkeypatch, capsys):
    _patch(monkeypatch)
    run = Runner(tmp_path)
    _one_line_error(capsys, run("--table", "TINY", "--seeds", "x"), "--seeds")
    _one_line_error(capsys, run(), "--table")
    for seed in ("99999999999999999999", str(2**63), "-1"):
        _one_line_error(capsys, run("--table", "TINY", "--budget", "micro", "--seeds", "0", seed),
                        f"--seeds takes an integer from 0 to 2**63 - 1 = {2**63 - 1}, got {seed}")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()  # no row started
    from cfin.runner.command import parse_seeds

    assert parse_seeds(["0,3", str(2**63 - 1), "3"]) == [0, 3, 2**63 - 1]


@pytest.mark.parametrize("mode", [[], ["--complexity-only"], ["--report-only"], ["--list"]])
def test_device_is_checked_in_every_mode(tmp_path, monkeypatch, capsys, mode):
    """A device this machine lacks is an error before anything runs, with or without training."""
    _patch(monkeypatch)
    _one_line_error(capsys, Runner(tmp_path)(*mode, "--table", "TINY", "--device", "cuda:99"), "'cuda:99'")
    _one_line_error(capsys, Runner(tmp_path)(*mode, "--table", "TINY", "--device", "tpu"),
                    "unknown device 'tpu'; valid forms: cpu, cuda, cuda:N")
    assert not (tmp_path / "reports").exists()


def test_data_root_checked_before_training(tmp_path, monkeypatch, capsys):
    _patch(monkeypatch)
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--data-root", str(tmp_path / "nope")),
                    "does not exist")
    # the 800 training images (links to one picture), but not the validation images training reads
    train_hr = tmp_path / "data" / "DIV2K_train_HR"
    train_hr.mkdir(parents=True)
    import numpy as np

    from cfin.data.io import write_png

    write_png(train_hr / "0001.png", np.zeros((32, 32, 3), np.uint8))
    for i in range(2, 801):
        (train_hr / f"{i:04d}.png").symlink_to(train_hr / "0001.png")
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--data-root", str(tmp_path / "data")),
                    "DIV2K not found", "DIV2K_valid_HR/0896.png")
    # the validation images too, and a benchmark with an image too small to score
    valid_hr = tmp_path / "data" / "DIV2K_valid_HR"
    valid_hr.mkdir()
    for i in range(896, 901):
        (valid_hr / f"{i:04d}.png").symlink_to(train_hr / "0001.png")
    set5 = tmp_path / "data" / "benchmark" / "Set5" / "HR"
    set5.mkdir(parents=True)
    write_png(set5 / "small.png", np.zeros((10, 10, 3), np.uint8))
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--data-root", str(tmp_path / "data")),
                    "too small to score at x4", "small.png (10x10)")
    # training images smaller than the budget's patch (the smoke budget's 24x24 LR at x4)
    (set5 / "small.png").unlink()
    write_png(set5 / "big.png", np.zeros((48, 48, 3), np.uint8))
    _one_line_error(capsys, Runner(tmp_path)("--table", "TINY", "--data-root", str(tmp_path / "data")),
                    "training image '0001': LR 8x8 (HR 32x32) is smaller than the 24x24 LR patch at x4")
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_list(tmp_path, monkeypatch, capsys):
    _patch(monkeypatch)
    assert Runner(tmp_path)("--list") == 0
    out = capsys.readouterr().out
    assert "Table TINY: Fixture" in out
    for row in (*ROWS, "Other net"):
        assert row in out
    assert "quoted" in out


def test_complexity_only(tmp_path, monkeypatch):
    _patch(monkeypatch)
    assert Runner(tmp_path)("--complexity-only", "--table", "all") == 0
    out = tmp_path / "reports" / "complexity"
    text = (out / "table_TINY.md").read_text()
    assert "| KV+Cross | 60.0K |" in text and "| Other net (quoted) | 50.0K | quoted |" in text
    assert "[Table TINY](table_TINY.md)" in (out / "README.md").read_text()
    assert not (tmp_path / "results").exists()  # no training, no records


def test_script_runs_as_a_program():
    """The command a user types: ``python run_all.py --list`` with the real tables."""
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "run_all.py"), "--table", "nope"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2 and "unknown table 'nope'" in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sets a pipe's size with fcntl (Linux)")
def test_a_reader_that_stops_early_gets_no_traceback():
    """``python run_all.py --list | head``: the pipe closes under the writer; it exits quietly."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ: a small pipe, so that the writer waits on it
    proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "run_all.py"), "--list"], stdout=write_end,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    os.close(write_end)
    assert os.read(read_end, 64).startswith(b"Table I:")
    os.close(read_end)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc (Linux)")
def test_an_interrupted_parallel_run_stops_its_workers(tmp_path):
    """SIGTERM (as run_all.py turns it into an interrupt) or Ctrl-C: the worker processes are
    terminated with the command, not left training and writing records after it."""
    import signal
    import textwrap

    script = textwrap.dedent(f"""
        import signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from cfin.runner.parallel import in_worker_processes
        from pool_tasks import sleep_and_report

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)
        try:
            for _ in in_worker_processes(sleep_and_report, [({str(tmp_path)!r},)] * 2, 2):
                pass
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc, workers = _start_two_workers(script, tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)  # not the workers' minute
    assert proc.returncode == 0 and "interrupted" in out, err
    assert "leaked" not in err, err  # a worker's progress bar leaves no semaphore to the resource tracker
    assert _ended_within(workers, 10)


def _start_two_workers(script: str, tmp_path: Path):
    """Run ``script`` (two pool_tasks.sleep_and_report workers, each leaving a file named by its pid
    in ``tmp_path``); the process and the workers' pids, once both have started."""
    import time

    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    workers = [int(p.name) for p in tmp_path.iterdir()]
    assert len(workers) == 2, proc.communicate()
    return proc, workers


def _ended_within(pids: list[int], seconds: float) -> bool:
    """Whether every process in ``pids`` has ended (gone, or a zombie) within ``seconds``."""
    import time

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended

    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(alive(pid) for pid in pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc (Linux)")
def test_a_killed_parallel_run_leaves_no_worker_training(tmp_path):
    """SIGKILL (kill -9, the OOM killer), which the command cannot pass on: its workers end too, not
    train their rows on unseen, write records and keep a rerun waiting on them."""
    import signal
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from cfin.runner.parallel import in_worker_processes
        from pool_tasks import sleep_and_report

        for _ in in_worker_processes(sleep_and_report, [({str(tmp_path)!r},)] * 2, 2):
            pass
    """)
    proc, workers = _start_two_workers(script, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _ended_within(workers, 15)  # not the workers' minute


def test_training_curve_is_thinned_keeping_validations(tmp_path):
    from cfin.runner.row import training_curve

    lines = [{"iteration": i, "loss": 1.0 / i, "lr": 1e-4, "time": i * 0.01,
              **({"val_psnr": 20.0} if i % 700 == 0 else {})} for i in range(1, 2501)]
    (tmp_path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    curve = training_curve(tmp_path, max_points=100)
    its = [p["iteration"] for p in curve]
    assert len(curve) <= 110 and its == sorted(its) and its[-1] == 2500
    assert [p["iteration"] for p in curve if "val_psnr" in p] == [700, 1400, 2100]
    assert all("val_psnr" not in p for p in curve if p["iteration"] % 700)


def test_row_slugs_must_be_unique():
    import dataclasses

    from cfin.errors import CFINError
    from cfin.records import row_slugs, slug

    assert slug("x4 CFIN+") == "x4_CFIN+" and slug("KV+Cross") == "KV+Cross"
    t = fixture_tables.TABLE
    clash = dataclasses.replace(t, rows=(*t.rows, dataclasses.replace(t.rows[1], id="KV/off")))
    with pytest.raises(CFINError, match="same file name"):
        row_slugs(clash)


def test_rows_with_one_training_share_it(tmp_path, monkeypatch):
    """A row that trains the network and recipe of an earlier row (CFIN+ is CFIN evaluated with the
    self-ensemble; the full CFIN is a row of several tables) trains once, in that row's folder,
    whichever tables the command names; ``--force`` starts that training over once."""
    import dataclasses

    import torch

    from cfin.runner import plan_jobs, run_jobs
    from cfin.runner.parallel import training_groups

    _patch(monkeypatch)
    # counting and measuring are not what this test is about (the end-to-end tests cover them)
    monkeypatch.setattr("cfin.runner.row.complexity", lambda config, conventions: {})
    monkeypatch.setattr("cfin.runner.measure.memory_latency", lambda *args: {"memory": {}, "latency": {}})
    evaluated = []   # (self-ensemble, the evaluated weights)

    def evaluate(model, scale, datasets, self_ensemble, **kwargs):
        evaluated.append((self_ensemble, {k: v.clone() for k, v in model.state_dict().items()}))
        return {"embedded": {"psnr": 20.0, "ssim": 0.5, "images": 1}}
    monkeypatch.setattr("cfin.evaluate.evaluate_model", evaluate)
    t = fixture_tables.TABLE
    kv_off, kv_cross = t.row("KV off"), t.row("KV+Cross")
    other = dataclasses.replace(t, id="TINY2", rows=(
        dataclasses.replace(kv_cross, id="KV+Cross+", self_ensemble=True), kv_cross, kv_off))
    dirs = (tmp_path / "results", tmp_path / "runs")
    both = {(j.table.id, j.row.id): j for j in plan_jobs([t, other], "micro", [0], None, *dirs, "cpu")}
    assert not any(j.trains_as or j.shares_training for (tid, _), j in both.items() if tid == "TINY")
    for row, owner in (("KV+Cross+", "KV+Cross"), ("KV+Cross", "KV+Cross"), ("KV off", "KV off")):
        job, owning = both[("TINY2", row)], both[("TINY", owner)]
        assert job.trains_as == ("TINY", owning.slug) and job.shares_training
        assert job.run_dir == owning.run_dir == tmp_path / "runs" / "TINY" / owning.slug / "x4_seed0_micro_embedded"
        assert job.record_path.parent == tmp_path / "results" / "TINY2" / job.slug
    # naming only the second table: the same folders; the first job of each trains
    jobs = plan_jobs([other], "micro", [0], None, *dirs, "cpu")
    assert [j.run_dir for j in jobs] == [both[("TINY2", j.row.id)].run_dir for j in jobs]
    assert [j.shares_training for j in jobs] == [False, True, False]
    assert [[j.row.id for _, j in g] for g in training_groups(list(enumerate(jobs)))] == \
        [["KV+Cross+", "KV+Cross"], ["KV off"]]

    def records():
        return {r["row"]: r for r in load_records(tmp_path / "results")}

    assert [o.status for o in run_jobs(jobs, progress=False)] == ["done"] * 3
    rec = records()
    first, second = rec["KV+Cross+"]["training"], rec["KV+Cross"]["training"]
    assert first["resumed_from"] is None and first["iterations"] == fixture_tables.MICRO.iterations
    assert second["resumed_from"] == fixture_tables.MICRO.iterations       # resumed the finished run
    assert second["final_loss"] == first["final_loss"] is not None
    assert second["best_val_psnr"] == first["best_val_psnr"] and second["run_dir"] == first["run_dir"]
    assert rec["KV+Cross"]["curve"] == rec["KV+Cross+"]["curve"]
    assert rec["KV+Cross+"]["self_ensemble"] and not rec["KV+Cross"]["self_ensemble"]
    (ensemble, trained), (single, resumed) = evaluated[:2]     # the same network, with and without
    assert ensemble and not single and all(torch.equal(trained[k], v) for k, v in resumed.items())
    assert sorted(p.parent.name for p in (tmp_path / "runs").rglob("final.pt")) == ["x4_seed0_micro_embedded"] * 2

    # --force: the first job starts the shared training over, the second resumes its result
    weights = Path(first["run_dir"]) / "final.pt"
    before = weights.stat().st_mtime_ns
    forced = plan_jobs([other], "micro", [0], None, *dirs, "cpu", force=True)
    assert [o.status for o in run_jobs(forced, progress=False)] == ["done"] * 3
    rec = records()
    assert rec["KV+Cross+"]["training"]["resumed_from"] is None and weights.stat().st_mtime_ns != before
    assert rec["KV+Cross"]["training"]["resumed_from"] == fixture_tables.MICRO.iterations


def test_a_run_folder_of_another_config_or_recipe_starts_over(tmp_path, monkeypatch):
    """The row's definition changed since its run folder was made (its network or its recipe):
    the old run is not resumed but deleted; the same training resumes."""
    from cfin.records import config_hash
    from cfin.runner import plan_jobs
    from cfin.runner.row import RUN_MARKER, _prepare_run_dir

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[0]
    _prepare_run_dir(job)
    last = job.run_dir / "last.pt"
    last.write_bytes(b"a checkpoint")
    _prepare_run_dir(job)
    assert last.exists()  # the same training: resumed
    net = dataclasses.replace(job, row=dataclasses.replace(job.row, config=job.row.config.replace(kv_share=True)))
    longer = dataclasses.replace(job, recipe=job.recipe.replace(iterations=job.recipe.iterations + 2))
    for changed in (net, longer):
        _prepare_run_dir(changed)
        assert not last.exists()
        marker = json.loads((job.run_dir / RUN_MARKER).read_text())
        assert marker["config_hash"] == config_hash(changed.row.config)
        assert marker["recipe"]["iterations"] == changed.recipe.iterations
        last.write_bytes(b"a checkpoint")


def test_a_run_folder_from_before_a_recipe_field_resumes_when_it_ran_that_fields_default(tmp_path, monkeypatch):
    """A run folder made before ``lr_step_every`` existed ran the cosine every iteration: it
    resumes under a recipe that still does, and starts over under one that steps per epoch."""
    from cfin.runner import plan_jobs
    from cfin.runner.row import RUN_MARKER, _prepare_run_dir

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[0]
    _prepare_run_dir(job)
    marker = job.run_dir / RUN_MARKER
    old = json.loads(marker.read_text())
    del old["recipe"]["lr_step_every"]
    marker.write_text(json.dumps(old))
    last = job.run_dir / "last.pt"
    last.write_bytes(b"a checkpoint")
    _prepare_run_dir(job)
    assert last.exists()
    _prepare_run_dir(dataclasses.replace(job, recipe=job.recipe.replace(lr_step_every=2)))
    assert not last.exists()


def test_status_says_a_run_folder_of_another_recipe_starts_over(tmp_path, monkeypatch):
    """A run folder of another recipe (``short`` and ``paper`` before they took the official code's
    schedule) is wiped by the next run that trains the row: --status says so beside its progress,
    not only "3 / 4 iterations"."""
    from cfin.runner import plan_jobs
    from cfin.runner.row import RUN_MARKER, _prepare_run_dir
    from cfin.runner.status import training_state
    from cfin.train.log import TrainLog

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs", "cpu")[0]
    _prepare_run_dir(job)
    TrainLog(job.run_dir / "train_log.jsonl").append({"iteration": 3, "loss": 9.0, "time": 30.0})
    assert training_state(job)[0] == "3 / 4 iterations (75%)"
    marker = job.run_dir / RUN_MARKER
    old = json.loads(marker.read_text())
    del old["recipe"]["lr_step_every"]  # written before the field: every iteration, as micro runs it
    marker.write_text(json.dumps(old))
    assert training_state(job)[0] == "3 / 4 iterations (75%)"
    old["recipe"]["eta_min"] = 1e-7
    marker.write_text(json.dumps(old))
    assert training_state(job)[0] == ("3 / 4 iterations (75%) of another config or recipe than the row's now: "
                                      "a run that trains the row starts it over")
    marker.write_text("{")
    assert training_state(job)[0].startswith(f"unreadable: {marker} (which config and recipe")


def test_a_table_with_its_own_recipe_trains_and_records_apart(tmp_path, monkeypatch):
    """At the paper budget a table trains with its own recipe: the same network under another
    recipe is another training (its own run folder), and its record is still the paper budget's."""
    from cfin.runner import plan_jobs

    _patch(monkeypatch)
    t = fixture_tables.TABLE
    other = dataclasses.replace(t, id="TINY2", recipe="smoke")
    assert t.recipe == "paper"
    jobs = {(j.table.id, j.row.id): j for j in plan_jobs([t, other], "paper", [3], None, tmp_path / "results",
                                                         tmp_path / "runs", "cpu")}
    for row in ("KV off", "KV+Cross"):
        own, apart = jobs[("TINY", row)], jobs[("TINY2", row)]
        assert (apart.recipe.name, apart.recipe.seed, apart.recipe.iterations) == ("smoke", 3, 40)
        assert not apart.trains_as and not apart.shares_training and apart.run_dir != own.run_dir
        assert apart.run_dir == tmp_path / "runs" / "TINY2" / apart.slug / "x4_seed3_paper_embedded"
        assert apart.record_path == tmp_path / "results" / "TINY2" / apart.slug / "x4_seed3_paper_embedded.json"
        assert apart.key.budget == "paper" and apart.key.seed == 3


def test_paper_tables_share_their_repeated_trainings(tmp_path, capsys, monkeypatch):
    """The real tables: CFIN+ trains as CFIN, the full x4 CFIN of Tables II and X and Table VIII's
    CFGT-8 (the same network) as Table I's (docs/run_all.md's count: 35 reproducible rows, 26 trainings)."""
    from cfin.runner import plan_jobs
    from cfin.tables import all_tables

    monkeypatch.setattr(cfin.tables, "TABLE_MODULES", PAPER_TABLES)  # the module fixture may hold the fixture's

    jobs = {(j.table.id, j.row.id): j for j in plan_jobs(all_tables(), "paper", [0], None, tmp_path, tmp_path)}
    assert (len(jobs), len({j.run_dir for j in jobs.values()})) == (35, 26)
    for shared, owner in ((("I", "x4 CFIN+"), ("I", "x4 CFIN")), (("II", "CFIN"), ("I", "x4 CFIN")),
                          (("VIII", "CFGT-8"), ("I", "x4 CFIN")),
                          (("X", "CFIN"), ("I", "x4 CFIN")), (("I", "x2 CFIN+"), ("I", "x2 CFIN"))):
        assert jobs[shared].run_dir == jobs[owner].run_dir and jobs[shared].shares_training
        assert not jobs[owner].trains_as and not jobs[owner].shares_training
    assert _load_run_all().main(["--list", "--table", "II"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("CFIN ")]
    assert len(listed) == 1 and listed[0].endswith("(trains as Table I / x4 CFIN)")


def test_plot_labels_of_points_at_one_place_are_stacked():
    import matplotlib.pyplot as plt

    from cfin.report.plots import _annotate

    fig, ax = plt.subplots()
    pts = [(178.8, 24.47, "Cross"), (177.0, 24.0, "KV"), (178.8, 24.471, "KV+Cross"), (178.79, 24.47, "third")]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts])
    fig.canvas.draw()
    _annotate(ax, pts)
    boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in ax.texts]
    assert [t.get_text() for t in ax.texts] == ["Cross", "KV", "KV+Cross", "third"]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[:i])
    plt.close(fig)


def test_a_row_whose_run_folder_another_command_trains_waits_for_it(tmp_path, monkeypatch, capsys):
    """Two commands whose tables share a training: the second waits, then trains (resumes) under the lock."""
    from test_lock import held_by_another_process

    import cfin.runner.row as row
    from cfin.runner import plan_jobs
    from cfin.train.lock import OWNER_NAME

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs")[0]
    trained_by = []
    monkeypatch.setattr(row, "_train_and_score", lambda job, device, progress: trained_by.append(
        json.loads((job.run_dir / OWNER_NAME).read_text())["pid"]) or {})
    with held_by_another_process(job.run_dir, seconds=1.5) as proc:
        row.compute_record(job, progress=False)
    assert trained_by == [os.getpid()]
    assert f"waiting: {job.run_dir} is being trained by another process (pid {proc.pid} " in capsys.readouterr().err


def test_status_before_during_and_after_a_run(tmp_path, monkeypatch, capsys):
    """--status reads where each row stands; it runs and writes nothing."""
    from test_lock import held_by_another_process

    from cfin.runner import plan_jobs
    from cfin.train.log import TrainLog

    _patch(monkeypatch)
    run = Runner(tmp_path)
    assert run("--status", "--table", "TINY", "--budget", "micro") == 0
    out = capsys.readouterr().out
    assert out.count("record        none") == len(ROWS) and out.count("training      not started") == len(ROWS)
    assert out.rstrip().endswith(f"0 of {len(ROWS)} rows recorded; 0 training(s) running now")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()

    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs")[0]
    job.run_dir.mkdir(parents=True)
    log = TrainLog(job.run_dir / "train_log.jsonl")
    log.append({"iteration": 1, "loss": 9.0, "time": 30.0})  # 30 s an iteration so far, 3 of 4 to go
    assert run("--status", "--table", "TINY", "--budget", "micro") == 0
    assert f"{job.name}\n    record        none\n    training      1 / 4 iterations (25%)\n" \
           f"    training now  -\n" in capsys.readouterr().out
    with held_by_another_process(job.run_dir) as proc:
        assert run("--status", "--table", "TINY", "--budget", "micro") == 0
        out = capsys.readouterr().out
    assert f"    training now  pid {proc.pid} on " in out
    assert "its training has about 0:01:30 left at its pace so far" in out
    assert out.rstrip().endswith(f"0 of {len(ROWS)} rows recorded; 1 training(s) running now")


def test_status_after_the_run(tiny_run, capsys):
    run, rc = tiny_run
    assert run("--status", "--table", "TINY", "--budget", "micro") == 0
    out = capsys.readouterr().out
    assert out.count("record        done (embedded ") == len(ROWS)
    assert out.count("training      trained (4 iterations)") == len(ROWS)
    assert out.rstrip().endswith(f"{len(ROWS)} of {len(ROWS)} rows recorded; 0 training(s) running now")
    # a record for another config than the row's is stale
    path = run.root / "results" / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.json"
    original = path.read_text()
    try:
        record = json.loads(original)
        record["config_hash"] = "0" * len(record["config_hash"])
        path.write_text(json.dumps(record))
        assert run("--status", "--table", "TINY", "--budget", "micro") == 0
        assert "record        stale (the row's config changed; the run recomputes it)" in capsys.readouterr().out
        path.write_text(original[:50])  # a status names what a run would stop on, and exits as it would
        assert run("--status", "--table", "TINY", "--budget", "micro") == 2
        out, err = capsys.readouterr()
        assert f"record        unreadable: record {path} is not valid JSON" in out
        assert f"a run would stop before any training: record {path} is not valid JSON" in err
    finally:
        path.write_text(original)


def test_status_names_a_run_folder_that_is_a_file(tmp_path, monkeypatch):
    """A file at a row's run folder is what a run stops on: --status says so, not "not started"."""
    from cfin.runner import plan_jobs
    from cfin.runner.status import training_state

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs")[0]
    assert training_state(job) == ("not started", "-")
    job.run_dir.parent.mkdir(parents=True)
    job.run_dir.write_text("not a folder")
    progress, process = training_state(job)
    assert progress.startswith(f"unreadable: {job.run_dir} should be this row's run folder but is a file")
    assert process == "-"


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_a_row_recorded_by_the_command_it_waited_for_is_skipped(tiny_run, tmp_path, monkeypatch, force):
    """Two commands on the same row: the one that waited finds the other's record and does not redo it,
    forced or not (a record written while this command ran is not one that --force is for)."""
    import threading
    import time

    from test_lock import held_by_another_process

    import cfin.runner.row as row
    from cfin.runner import plan_jobs

    run, _ = tiny_run
    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs",
                    force=force)[0]
    finished = run.root / "results" / job.record_path.relative_to(tmp_path / "results")
    monkeypatch.setattr(row, "_train_and_score", lambda *a: pytest.fail("the row was computed again"))
    outcome = []
    with held_by_another_process(job.run_dir, seconds=2.0):
        waiter = threading.Thread(target=lambda: outcome.append(row.run_row(job, progress=False)))
        waiter.start()
        time.sleep(0.5)
        job.record_path.parent.mkdir(parents=True)
        shutil.copy(finished, job.record_path)  # the other command writes its record, then lets go
        waiter.join(timeout=60)
    assert [o.status for o in outcome] == ["skipped"]


def test_a_forced_row_keeps_the_training_it_waited_for(tmp_path, monkeypatch):
    """--force starts a training over, but not one another command advanced since this one started
    (two forced commands whose tables share a training train it once); a training last advanced
    before the command started is started over."""
    import time

    from test_lock import held_by_another_process

    import cfin.runner.row as row
    from cfin.runner import plan_jobs

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs",
                    force=True)[0]
    kept = []
    monkeypatch.setattr(row, "_train_and_score", lambda job, device, progress: row._prepare_run_dir(job) or kept.append(
        (job.run_dir / "last.pt").exists()) or {})
    job.run_dir.mkdir(parents=True)
    with held_by_another_process(job.run_dir, seconds=1.5):
        row._prepare_run_dir(dataclasses.replace(job, force=False))  # the other command's run folder
        (job.run_dir / "last.pt").write_text("the other command's training")
        row.compute_record(job, progress=False)
    row.compute_record(dataclasses.replace(job, force_since=time.time() + 1))  # a command started after it
    (job.run_dir / "last.pt").write_text("a training finished before this command started")
    os.utime(job.run_dir / "last.pt", (job.force_since - 60, job.force_since - 60))
    (job.run_dir / "train_log.jsonl").write_text("{}\n")  # since then only scored (its log appended), not trained
    row.compute_record(job, progress=False)
    assert kept == [True, False, False]


def test_recount_rewrites_only_the_counts_that_changed(tiny_run, tmp_path, monkeypatch, capsys):
    """--recount: a record counted by older code (its ptflops figure off) gets the current counts,
    with nothing else in it changed; a record already current is not rewritten; reports follow."""
    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    here = Runner(tmp_path)
    old = tmp_path / "results" / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.json"
    current = json.loads(old.read_text())
    stale = json.loads(old.read_text())
    stale["complexity"]["ptflops"]["multi_adds"] += 250_700_000   # ptflops on meta tensors before stop 18
    old.write_text(json.dumps(stale))
    others = {p: p.read_bytes() for p in (tmp_path / "results").glob("*/*/*.json") if p != old}
    assert here("--recount", "--table", "TINY") == 0
    out = capsys.readouterr().out
    assert "recounted  Table TINY / KV+Cross, x4 seed 0, micro budget, embedded\n    ptflops: " in out
    assert f"1 of {len(others) + 1} record(s) rewritten with new counts; {len(others)} already had" in out
    rewritten = json.loads(old.read_text())
    assert rewritten["complexity"] == current["complexity"]
    recounted = rewritten.pop("recounted")
    assert recounted["conventions"] == ["ptflops"]
    assert recounted["previous"] == {"ptflops": {k: stale["complexity"]["ptflops"][k] for k in ("params", "multi_adds",
                                                                                                  "input")}}
    assert rewritten == current                                   # scores, training, memory, time untouched
    assert all(p.read_bytes() == b for p, b in others.items())   # nothing to recount: not rewritten
    again = dict(json.loads(old.read_text()))                     # a later fix of the count: recounted again,
    again["complexity"]["ptflops"]["multi_adds"] += 1             # the counts it was written with are kept
    old.write_text(json.dumps(again))
    assert here("--recount", "--table", "TINY") == 0
    assert json.loads(old.read_text())["recounted"]["previous"] == recounted["previous"]
    report = (tmp_path / "reports" / "table_TINY.md").read_text()
    assert re.search(r"Params / Multi-Adds recounted after training by run_all.py --recount \(\w+.*, 20\d\d-.*\): "
                     r"1 of \d record\(s\)", report)


def test_recount_keeps_a_record_another_command_wrote_meanwhile(tiny_run, tmp_path, monkeypatch, capsys):
    import cfin.runner.recount as recount

    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    path = tmp_path / "results" / "TINY" / "KV+Cross" / "x4_seed0_micro_embedded.json"
    stale = json.loads(path.read_text())
    stale["complexity"]["full"]["params"] += 1
    path.write_text(json.dumps(stale))
    newer = dict(stale, wall_time_s=1.0)
    counted = recount.complexity

    def counting_while_another_writes(config, conventions):
        path.write_text(json.dumps(newer))   # a run of the same row records it now
        return counted(config, conventions)

    monkeypatch.setattr(recount, "complexity", counting_while_another_writes)
    done = recount.recount_records(tmp_path / "results", ["TINY"], progress=False)
    assert [r.skipped for r in done if r.changes] == ["it changed on disk while counted: run --recount again"]
    assert json.loads(path.read_text()) == newer


def test_a_row_on_one_gpu_of_several_makes_it_the_current_device(tmp_path, monkeypatch):
    """--jobs deals rows to cuda:0 .. cuda:N-1: a worker's row makes its GPU the current device, else
    CUDA's lazy state (a context, pinned memory) would open on GPU 0 as well."""
    import cfin.device
    import cfin.runner.row as row
    from cfin.runner import plan_jobs

    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs",
                    device="cuda:1")[0]
    current = []
    monkeypatch.setattr(cfin.device, "resolve_device", lambda d: torch.device(d))
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: current.append(torch.device(d)))
    monkeypatch.setattr(row, "_train_and_score", lambda job, device, progress: current.append(device) or {})
    row.compute_record(job, progress=False)
    assert current == [torch.device("cuda:1")] * 2


def test_a_forced_command_keeps_a_record_written_after_it_started(tiny_run, tmp_path, monkeypatch):
    """Two forced commands on one table: the second reaches a row the first recorded after the second
    started (no waiting) and keeps it; a record older than the command is recomputed."""
    import time

    import cfin.runner.row as row
    from cfin.runner import plan_jobs

    run, _ = tiny_run
    _patch(monkeypatch)
    job = plan_jobs([fixture_tables.TABLE], "micro", [0], None, tmp_path / "results", tmp_path / "runs",
                    force=True)[0]
    job.record_path.parent.mkdir(parents=True)
    shutil.copy(run.root / "results" / job.record_path.relative_to(tmp_path / "results"), job.record_path)
    computed = []
    monkeypatch.setattr(row, "compute_record", lambda job, progress: computed.append(job.name) or
                        read_record(job.record_path))
    kept = row.run_row(job, progress=False)
    assert (kept.status, kept.detail) == ("skipped", "recorded by another command after this one started; kept")
    assert not computed
    older = time.time() - 3600
    os.utime(job.record_path, (older, older))
    assert row.run_row(job, progress=False).status == "done" and computed == [job.name]


def test_status_names_what_a_run_would_stop_on(tiny_run, tmp_path, monkeypatch, capsys):
    """--status checks what a run checks first: a stray file in a row folder that is not a record,
    and a --data-root that is not there, are errors (exit 2), not "done" or "nothing trained yet"."""
    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    here = Runner(tmp_path)
    stray = next((tmp_path / "results" / "TINY").glob("*/x4_seed0_micro_embedded.json")).parent / "extra.json"
    stray.write_text("{broken")
    assert here("--status", "--table", "TINY", "--budget", "micro") == 2
    out, err = capsys.readouterr()
    assert out.count("record        done (embedded ") == len(ROWS)
    assert err.startswith(f"run_all.py: a run would stop before any training: record {stray} is not valid JSON")
    stray.unlink()
    assert here("--status", "--table", "TINY", "--budget", "micro", "--data-root", str(tmp_path / "DATA")) == 2
    assert f"data root {tmp_path / 'DATA'} does not exist" in capsys.readouterr().err


def test_recount_names_a_record_whose_config_no_longer_builds(tiny_run, tmp_path, monkeypatch, capsys):
    """A record whose config this code no longer builds stops --recount with one line naming its
    file, before any record is rewritten (not the config's error alone, after the records counted
    before it were rewritten and none of that said)."""
    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    here = Runner(tmp_path)
    first, last = sorted((tmp_path / "results").glob("*/*/*.json"))
    stale = json.loads(first.read_text())
    stale["complexity"]["full"]["params"] += 1  # counted by older code: --recount would rewrite it
    first.write_text(json.dumps(stale))
    broken = json.loads(last.read_text())
    broken["config"]["cga_kernels"] = [2, 2]    # a value this code no longer builds
    last.write_text(json.dumps(broken))
    before = {p: p.read_bytes() for p in (first, last)}
    assert here("--recount", "--table", "TINY") == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"run_all.py: error: record {last}: its config does not build with this code "
                          f"(cga_kernels must be two odd kernel sizes") and len(err.strip().splitlines()) == 1
    assert "recounted" not in out
    assert all(p.read_bytes() == b for p, b in before.items())


def test_status_names_an_output_folder_a_run_would_stop_on(tiny_run, tmp_path, monkeypatch, capsys):
    """--status checks the folders a run checks before any training: --runs or --reports given a
    file stops a run (exit 2), so --status names it and exits 2 as well."""
    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    here = Runner(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    assert here("--table", "TINY", "--budget", "micro") == 2  # what a run does
    assert "--runs" in capsys.readouterr().err
    assert here("--status", "--table", "TINY", "--budget", "micro") == 2
    assert (f"run_all.py: a run would stop before any training: --runs {tmp_path / 'runs'} is a file"
            in capsys.readouterr().err)
    (tmp_path / "runs").unlink()
    (tmp_path / "reports").write_text("not a folder")
    assert here("--status", "--table", "TINY", "--budget", "micro") == 2
    assert (f"run_all.py: a run would stop before any training: --reports {tmp_path / 'reports'} is a file"
            in capsys.readouterr().err)
    (tmp_path / "reports").unlink()
    assert here("--status", "--table", "TINY", "--budget", "micro") == 0


def test_recount_keeps_going_past_a_record_removed_meanwhile(tiny_run, tmp_path, monkeypatch):
    """A record another command moves away (or replaces with a file this code does not read) while
    --recount counts it is left as it is and said so, like one rewritten meanwhile: the records
    after it are still recounted."""
    import cfin.runner.recount as recount

    run, _ = tiny_run
    _patch(monkeypatch)
    shutil.copytree(run.root / "results", tmp_path / "results")
    paths = sorted((tmp_path / "results").glob("*/*/*.json"))
    for p in paths:
        stale = json.loads(p.read_text())
        stale["complexity"]["full"]["params"] += 1
        p.write_text(json.dumps(stale))
    counted = recount.complexity
    removed = paths[0]

    def counting_while_another_removes(config, conventions):
        if removed.exists():
            removed.rename(tmp_path / "moved.json")
        return counted(config, conventions)

    monkeypatch.setattr(recount, "complexity", counting_while_another_removes)
    done = recount.recount_records(tmp_path / "results", ["TINY"], progress=False)
    assert [r.skipped.startswith("it changed on disk") for r in done] == [True, False]
    assert not removed.exists() and "recounted" in json.loads(paths[1].read_text())


def test_the_docs_table_lists_every_option_of_run_all():
    """docs/run_all.md's table of run_all.py's options and its parser name the same options."""
    import re

    page = (REPO_ROOT / "docs" / "run_all.md").read_text()
    start = page.index("\n## Options\n")
    section = page[start:page.index("\n## ", start + 1)]
    documented = {flag for line in section.splitlines() if line.startswith("| `--")
                  for flag in re.findall(r"`(--[a-z0-9-]+)", line.split(" | ")[0])}
    parser = _load_run_all().build_parser()
    options = {s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
    assert documented == options


def test_every_plot_says_its_budget_and_whether_it_compares(tmp_path, monkeypatch):
    """A PNG is read apart from its page (a slide, a review): the figure itself names the budget and data,
    and says that accuracy does not compare with the paper's, as the section's heading does."""
    import cfin.report.plots as plots
    from cfin.report.build import write_plots
    from cfin.report.compare import build_sections

    _patch(monkeypatch)
    titles = {}

    def keep_title(fig, path):
        titles[Path(path).name] = fig._suptitle.get_text()
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep_title)
    sections = build_sections(fixture_tables.TABLE, load_records(DATA / "results"))
    write_plots(fixture_tables.TABLE, sections, tmp_path)
    assert set(titles) == {"table_TINY_micro_embedded_psnr_params.png", "table_TINY_micro_embedded_curves.png"}
    for name, title in titles.items():
        assert "micro budget on embedded images: accuracy not comparable to the paper" in title, (name, title)


def test_the_rebuild_command_a_report_prints_rebuilds_it(tmp_path, monkeypatch):
    """Run as printed, a report's Rebuild command writes the same report: its Reproduce command too,
    which names the --runs folder the records were trained in."""
    import shlex

    _patch(monkeypatch)
    results = _copy_fixture_records(tmp_path)
    runs, reports = tmp_path / "elsewhere_runs", tmp_path / "reports"
    run_all = _load_run_all()
    assert run_all.main(["--report-only", "--results", str(results), "--runs", str(runs), "--reports",
                         str(reports), "--no-progress"]) == 0
    md = (reports / "table_TINY.md").read_text()
    assert f"--runs {runs}" in md
    for page in ("table_TINY.md", "index.html"):
        text = (reports / page).read_text()
        rebuild = re.search(r"Rebuild: (?:`|<code>)(python run_all\.py --report-only[^`<]*)", text)[1]
        (reports / page).unlink()
        assert run_all.main([*shlex.split(rebuild)[2:], "--no-progress"]) == 0
        assert (reports / page).read_text() == text, page


def test_training_curves_tick_whole_iterations(tmp_path, monkeypatch):
    """One validation point (the smoke budget validates once) must not put iteration 38.5 on the axis."""
    import cfin.report.plots as plots
    from cfin.report.compare import build_sections

    figs = []

    def keep(fig, path):
        fig.canvas.draw()
        figs.append([list(ax.get_xticks()) for ax in fig.axes])
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    records = load_records(DATA / "results")
    for r in records:
        r["curve"] = [{**p, "val_psnr": None} for p in r["curve"]]
        r["curve"][-1]["val_psnr"] = 20.0
    sections = build_sections(fixture_tables.TABLE, records)
    assert plots.curves_plot(fixture_tables.TABLE, sections[0].results, tmp_path / "c.png")
    assert figs and all(float(t).is_integer() for ticks in figs[0] for t in ticks), figs


def test_plot_labels_do_not_overlap_in_a_crowded_table(tmp_path, monkeypatch):
    """Table I's x4 figure names 19 methods, a dozen of them within 0.25 dB and 300K of each other: no
    label may cover another label or a point, nor leave the axes."""
    import cfin.report.plots as plots
    from ablations.table_01_sota import TABLE as table
    from cfin.report.grids import RowResult

    boxes = []

    def keep(fig, path):
        fig.tight_layout()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            frame = ax.get_window_extent(renderer)
            points = [b for c in ax.collections for b in c.get_offsets()]
            marks = [ax.transData.transform(p) for p in points]
            labels = [t.get_window_extent(renderer) for t in ax.texts]
            boxes.append((frame, marks, labels, [t.get_text() for t in ax.texts]))
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    assert plots.psnr_params_plot(table, [RowResult(r, []) for r in table.rows], "embedded", tmp_path / "p.png", 4)
    ((frame, marks, labels, texts),) = boxes
    assert len(labels) == 19 and "CFIN+" in texts  # the figure is x4's: its labels drop the "x4 "
    for i, a in enumerate(labels):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1, texts[i]
        for j, b in enumerate(labels[:i]):
            assert not a.overlaps(b), (texts[i], texts[j])
        for x, y in marks:
            assert not (a.x0 - 3 < x < a.x1 + 3 and a.y0 - 3 < y < a.y1 + 3), (texts[i], x, y)
