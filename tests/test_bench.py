"""``cfin bench`` and :mod:`cfin.bench` at a tiny size: the report's keys, ratios and errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from cfin.bench import (BenchSpec, paired_floor, paths_for, peak_throughput, render, round_rates, run_bench,
                        summarize)
from cfin.config import CFINConfig, preset
from cfin.errors import CFINError
from cfin.paths import REPO_ROOT
from numerics import GRAD_RTOL, OUT_ATOL, check, noise_bound


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_spec(**changes) -> BenchSpec:
    # allocator "default": "tuned" would change this pytest process's malloc for good
    base = dict(config=preset("tiny"), lr_size=(6, 7), runs=2, warmup=1, allocator="default", memory=False)
    return BenchSpec(**{**base, **changes})


def test_inference_report_has_both_paths_the_floor_and_the_ratios():
    report = run_bench(tiny_spec(), progress=False)
    for name in ("fast", "faithful"):
        entry = report[name]
        assert entry["runs"] == 2 and 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"]
        assert entry["q1_s"] <= entry["median_s"] <= entry["q3_s"]
    noise = report["faithful"]["float32_noise"]
    assert "oneDNN off" in noise["method"]
    # the yardstick is rounding alone (a rerun with other draws or another function: whole levels)
    assert 0 <= noise["max_abs_diff"] <= OUT_ATOL
    assert report["fast"]["equal"] == (report["fast"]["max_abs_diff"] <= OUT_ATOL)  # the report's verdict
    check("fast vs faithful: outputs, sampled masks", report["fast"]["max_abs_diff"],
          noise_bound(OUT_ATOL, noise["max_abs_diff"]), noise["max_abs_diff"])
    assert report["speedup"] == pytest.approx(report["faithful"]["median_s"] / report["fast"]["median_s"])
    assert report["memory_ratio"] is None  # memory=False
    peak = report["floor"]["peak"]
    assert peak["peak_macs_per_s"] == max(peak["matmul"]["macs_per_s"], peak["conv3x3"]["macs_per_s"]) > 0
    assert report["floor_s"] == pytest.approx(report["floor"]["multi_adds"] / peak["peak_macs_per_s"])
    paired = report["floor"]["paired"]  # the faster kernel, timed around each of the 2 rounds
    assert paired["kernel"] in ("matmul", "conv3x3") and len(paired["macs_per_s_rounds"]) == 2
    for name in ("fast", "faithful"):
        rounds = report[name]["over_floor_rounds"]
        assert len(rounds) == 2 and report[name]["over_floor_paired"] == pytest.approx(sum(rounds) / 2)
    assert report["fast"]["config_changes"] == {"cgm_impl": "conv", "ciam_branch_impl": "1x1",
                                                 "fused_attention": True, "fused_conv_stage": True,
                                                 "fused_tail": True, "channels_last": True}
    json.dumps(report)  # JSON-ready
    text = render(report)
    assert "speedup (faithful / fast)" in text and "compute floor" in text and "paired floor" in text
    assert "host_issue_median_s" not in report["fast"] and "host time to issue" not in text  # CUDA only


def test_training_report_compares_gradients_and_checkpointing():
    report = run_bench(tiny_spec(train=True, batch=2, grad_checkpoint=True), progress=False)
    assert set(report["paths"]) == {"faithful", "fast", "fast+checkpoint"}
    noise = report["faithful"]["float32_noise"]["grad_rel_diff"]
    assert 0 <= noise <= GRAD_RTOL  # rounding alone: another function's gradients differ by order 1
    for name in ("fast", "fast+checkpoint"):
        check("fast vs faithful: gradients, relative", report["paths"][name]["grad_rel_diff"],
              noise_bound(GRAD_RTOL, noise), noise)
    assert report["floor"]["multi_adds"] % 3 == 0  # forward + backward = 3 x forward
    assert report["checkpoint_speedup"] > 0


def test_spec_errors_name_the_problem():
    with pytest.raises(CFINError, match="grad_checkpoint only changes training"):
        paths_for(tiny_spec(grad_checkpoint=True))
    with pytest.raises(CFINError, match="unknown amp dtype 'fp8'"):
        paths_for(tiny_spec(amp="fp8"))
    with pytest.raises(CFINError, match="unknown allocator 'jemalloc'"):
        run_bench(tiny_spec(allocator="jemalloc"), progress=False)
    with pytest.raises(CFINError, match="runs must be an int >= 1"):
        run_bench(tiny_spec(runs=0), progress=False)
    with pytest.raises(CFINError, match="memory_runs must be an int >= 1"):
        run_bench(tiny_spec(memory_runs=0), progress=False)
    with pytest.raises(CFINError, match="tf32 is a CUDA option"):
        paths_for(tiny_spec(tf32=True))
    with pytest.raises(CFINError, match="amp fp16 is a CUDA option .*got device cpu; use amp bf16"):
        paths_for(tiny_spec(amp="fp16"))
    assert [p.name for p in paths_for(tiny_spec(amp="bf16"))] == ["faithful", "fast", "fast+bf16"]


def test_bf16_autocast_path_is_reported_not_required_equal():
    report = run_bench(tiny_spec(amp="bf16"), progress=False)
    entry = report["paths"]["fast+bf16"]
    assert entry["config_changes"]["autocast"] == "bf16"
    assert entry["max_abs_diff"] > 0  # bfloat16 changes the numbers; it is an option, off by default
    assert entry["precision"] == "bf16" and report["paths"]["fast"]["precision"] == "float32"
    assert report["paths"]["fast"]["over_own_floor"] == report["paths"]["fast"]["over_floor"]


def test_paired_floor_follows_a_drifting_host():
    """A host at full speed, then at half speed for two rounds: calls and kernel slow together,
    so every round is 1.5x its own floor, where the median call over the best rate reads 3x."""
    probe = [1.0, 2.0, 2.0, 2.0]            # seconds of a 10-MAC kernel around rounds 0, 1, 2
    times = [15.0, 30.0, 30.0]              # a 100-MAC call
    paired = paired_floor(times, round_rates(probe, probe_macs=10), macs=100)
    assert paired["over_floor_rounds"] == pytest.approx([1.5, 1.5, 1.5])
    assert paired["over_floor_paired"] == pytest.approx(1.5)
    assert sorted(times)[1] / (100 / 10.0) == pytest.approx(3.0)   # the unpaired reading
    # a round takes the faster of its two neighbouring kernel timings
    assert round_rates([1.0, 4.0], 10) == pytest.approx([10.0])
    assert paired_floor([10.0], [10.0], 100)["over_floor_rounds"] == pytest.approx([1.0])


def _fixed_peak(matmul: float, conv: float) -> dict:
    return {"matmul": {"macs_per_s": matmul, "shape": "m", "best_s": 1.0},
            "conv3x3": {"macs_per_s": conv, "shape": "c", "best_s": 1.0},
            "peak_macs_per_s": max(matmul, conv), "precision": "float32"}


def test_best_of_keeps_each_kernels_best():
    from cfin.bench.floor import best_of

    best = best_of(_fixed_peak(1e9, 5e9), _fixed_peak(3e9, 2e9))
    assert (best["matmul"]["macs_per_s"], best["conv3x3"]["macs_per_s"], best["peak_macs_per_s"]) == (3e9, 5e9, 5e9)


@pytest.mark.parametrize("train", [False, True])
def test_floor_is_every_multiply_add_at_the_best_rate(monkeypatch, train):
    """A machine whose convolution outruns its matmul: the floor is at the conv's rate; a training
    step's multiply-adds are 3x the forward's full count (forward + backward)."""
    import cfin.bench.run as bench_run
    from cfin.complexity import count

    monkeypatch.setattr(bench_run, "peak_throughput", lambda device, small=False, repeats=3, precision="float32":
                        _fixed_peak(2e9, 8e9))
    spec = tiny_spec(train=train, batch=2) if train else tiny_spec()
    report = run_bench(spec, progress=False)
    forward = count(preset("tiny"), (6, 7), "full", 2 if train else 1).multi_adds
    assert report["floor"]["multi_adds"] == (3 if train else 1) * forward
    assert report["floor_s"] == pytest.approx(report["floor"]["multi_adds"] / 8e9)
    for name in ("fast", "faithful"):
        assert report[name]["over_floor"] == pytest.approx(report[name]["median_s"] / report["floor_s"])


def test_summarize_and_peak_throughput():
    s = summarize([3.0, 1.0, 2.0, 4.0])
    assert (s["min_s"], s["median_s"], s["max_s"], s["runs"]) == (1.0, 2.5, 4.0, 4)
    peak = peak_throughput(torch.device("cpu"), small=True, repeats=1)
    assert peak["matmul"]["macs_per_s"] > 0 and "3x3" not in peak["matmul"]["shape"]


def test_cli_json_keys_with_memory():
    """The command end to end in a fresh process (the tuned allocator, peak memory children)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-m", "cfin", "bench", "--scale", "4", "--lr-size", "6x7", "--runs", "1",
                           "--warmup", "0", "--threads", "1", "--device", "cpu", "--memory-runs", "2", "--breakdown",
                           "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert {"fast", "faithful", "speedup", "memory_ratio", "floor_s"} <= set(report)
    assert {"median_s", "peak_mb"} <= set(report["fast"]) and {"median_s", "peak_mb"} <= set(report["faithful"])
    assert report["fast"]["peak_mb"] > 0 and report["memory_ratio"] == pytest.approx(
        report["fast"]["peak_mb"] / report["faithful"]["peak_mb"])  # fast / faithful, as the text says
    for name in ("fast", "faithful"):  # the live-tensor peak from the first child, and its ratio
        assert report[name]["tensor_peak_mb"] > 0 and "torch.profiler" in report[name]["tensor_method"]
    assert report["tensor_memory_ratio"] == pytest.approx(
        report["fast"]["tensor_peak_mb"] / report["faithful"]["tensor_peak_mb"])
    runs = report["fast"]["peak_mb_runs"]
    assert len(runs) == 2 and report["fast"]["peak_mb"] == pytest.approx(sum(runs) / 2)  # the median of two
    assert report["allocator"]["name"] == "tuned"
    assert report["fast"]["breakdown"]["ops"] > 0 and report["faithful"]["breakdown"]["kinds"]  # --breakdown


def test_compile_mode_reaches_torch_compile(monkeypatch):
    """--compile-mode: the mode torch.compile gets, reported with the path (torch.compile stubbed:
    no C++ build in a test; the mode's CUDA graphs need a GPU: tests/test_cuda.py)."""
    from cfin.cli import main

    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: calls.append(kwargs) or model)
    spec = BenchSpec(config=preset("tiny"), lr_size=(6, 7), runs=1, warmup=0, train=True, batch=2,
                     compile=True, compile_mode="reduce-overhead", allocator="default", memory=False)
    report = run_bench(spec, progress=False)
    assert calls and all(c["mode"] == "reduce-overhead" for c in calls)
    assert report["warmup"] == 3  # compile, record the CUDA graphs, replay
    assert "reduce-overhead mode" in report["paths"]["fast+compile"]["config_changes"]["torch.compile"]
    with pytest.raises(CFINError, match="torch.compile mode 'fastest'.*valid: default, reduce-overhead"):
        paths_for(BenchSpec(compile=True, compile_mode="fastest"))
    calls.clear()
    assert main(["bench", "--preset", "tiny", "--lr-size", "6x7", "--runs", "1", "--warmup", "0", "--device", "cpu",
                 "--allocator", "default", "--no-memory", "--json", "--compile-mode", "max-autotune"]) == 0
    assert calls and calls[0]["mode"] == "max-autotune"  # the mode alone asks for the compiled path


def test_cli_rejects_a_bad_scale(capsys):
    from cfin.cli import main

    assert main(["bench", "--scale", "5", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip() == "cfin bench: error: --scale 5: valid scales 2, 3, 4"


def test_cli_refuses_fp16_on_a_cpu_before_measuring(capsys):
    """fp16 on a CPU would spend minutes in the float16 speed floor: refused at once, bf16 stays."""
    from cfin.cli import main

    argv = ["bench", "--preset", "tiny", "--lr-size", "8x8", "--runs", "1", "--warmup", "0", "--no-memory",
            "--device", "cpu", "--amp", "fp16"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("cfin bench: error: amp fp16 is a CUDA option") and "use amp bf16" in err


def test_cli_benches_any_network(tmp_path, capsys):
    """--preset and --config: the network a report is about, named in it (here a table's kind of
    variant: no K/V hand-over, the direct attention form)."""
    from cfin.cli import main

    common = ["--lr-size", "6x7", "--runs", "1", "--warmup", "0", "--device", "cpu", "--threads", "1",
              "--allocator", "default", "--no-memory", "--json"]
    assert main(["bench", "--preset", "tiny", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["network"] == "preset tiny" and CFINConfig.from_dict(report["config"]) == preset("tiny")
    path = tmp_path / "variant.json"
    path.write_text(json.dumps({**preset("tiny").to_dict(), "kv_share": False, "cga_gram": "never"}))
    assert main(["bench", "--config", str(path), *common[:-1]]) == 0
    out = capsys.readouterr().out
    assert "network: preset x4 with " in out and "kv_share=False" in out and "cga_gram='never'" in out
    assert "fast " in out and "max|diff|" in out


def test_an_allocation_too_large_is_one_message(capsys):
    from cfin.cli import main
    from cfin.errors import out_of_memory

    assert main(["bench", "--preset", "tiny", "--lr-size", "1000000x1000000", "--runs", "1", "--warmup", "0",
                 "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cfin bench: error: out of memory (" in err and "ask for less" in err
    assert out_of_memory(MemoryError("Unable to allocate 3.64 TiB")) is not None
    assert out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")) is not None
    assert out_of_memory(RuntimeError("size mismatch")) is None


def test_cuda_events_time_the_benched_device_not_the_current_one(fake_cuda):
    """On ``cuda:1`` the events go on cuda:1's stream: ``Event.record()`` alone takes the current
    device's (cuda:0 unless set), an idle stream whose events time nothing."""
    from cfin.bench.timing import timed

    gpu1 = torch.device("cuda", 1)
    assert timed(lambda: None, gpu1) == 2e-3
    assert fake_cuda.recorded == [("stream", gpu1)] * 2 and fake_cuda.synchronized == [gpu1]


def test_bench_leaves_cudnn_benchmark_as_it_found_it(monkeypatch):
    """The bench turns cuDNN's autotuner on for its paths; a caller's setting is back afterwards,
    when the bench fails too."""
    import cfin.bench.run as bench_run

    def bench_that_fails(spec, progress):
        torch.backends.cudnn.benchmark = True
        raise RuntimeError("out of memory")

    monkeypatch.setattr(bench_run, "_run_bench", bench_that_fails)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with pytest.raises(RuntimeError):
        bench_run.run_bench(None)
    assert torch.backends.cudnn.benchmark is False


def test_cuda_timing_keeps_the_hosts_time_to_issue_each_timed_call(fake_cuda):
    """On CUDA each timed run (not the warm-up) also keeps the host's seconds until the call
    returned, before the synchronisation: the measure of a call bound by its launches."""
    import time

    from cfin.bench.timing import time_paths

    calls = {"slow": lambda: time.sleep(0.02), "quick": lambda: None}
    issued = {}
    times, _ = time_paths(calls, runs=3, warmup=2, device=torch.device("cuda"), progress=False, issued=issued)
    assert times == {"slow": [2e-3] * 3, "quick": [2e-3] * 3}  # the fake events' 2 ms
    assert len(issued["slow"]) == len(issued["quick"]) == 3
    assert min(issued["slow"]) >= 0.02 > max(issued["quick"])
    time_paths(calls, runs=1, warmup=0, device=torch.device("cpu"), progress=False, issued=issued)
    assert issued == {"slow": [], "quick": []}  # on the CPU a call's time is its host time: nothing kept


def test_host_issue_share_is_the_median_of_each_runs_share_and_is_rendered():
    from cfin.bench.run import host_issue

    entry = host_issue([0.010, 0.030, 0.004], [0.020, 0.030, 0.040])
    assert entry == {"host_issue_median_s": 0.010, "host_issue_share": pytest.approx(0.5)}
    report = run_bench(tiny_spec(runs=1, warmup=0), progress=False)
    report["paths"]["fast"].update(entry)
    line = next(x for x in render(report).splitlines() if x.startswith("host time to issue"))
    assert "fast 10.0 ms (0.50)" in line and "faithful" not in line


def test_gpu_check_script_gives_cfin_only_options_it_has():
    """``tools/gpu_checks.sh`` (docs/performance.md's GPU measurements in one go) runs on a GPU only; here its
    ``cfin`` commands are parsed, so that a renamed option shows before a GPU machine does."""
    import shlex

    from cfin.cli import build_parser

    script = (REPO_ROOT / "tools" / "gpu_checks.sh").read_text().replace("\\\n", " ")
    commands = [shlex.split(line.split("python -m cfin", 1)[1].replace('"$out', '"OUT'))
                for line in script.splitlines() if "python -m cfin " in line]
    assert [c[0] for c in commands] == ["bench"] * 4 + ["audit"]
    for argv in commands:
        args = build_parser().parse_args(argv)
        assert args.device == "cuda"


def _stub_python(bin_dir, fail: str):
    """A ``python`` that has CUDA, makes the files its command names (``--output``, ``--out``, the
    redirect) and fails the commands whose arguments hold ``fail``."""
    bin_dir.mkdir()
    stub = bin_dir / "python"
    stub.write_text("#!/usr/bin/env bash\n"
                    "[ \"$1\" = -c ] && exit 0\n"
                    "prev=; for a in \"$@\"; do\n"
                    "  [ \"$prev\" = --output ] && : > \"$a\"; [ \"$prev\" = --out ] && mkdir -p \"$a\"; prev=$a\n"
                    "done\n"
                    f"case \"$*\" in *{fail}*) echo '1 failed'; exit 1;; esac\n"
                    "echo '1 passed'\n")
    stub.chmod(0o755)


@pytest.mark.parametrize("fail", ["NOTHING", "test_cuda", "audit"])
def test_gpu_check_script_writes_under_the_out_dir_given_and_says_when_a_step_failed(tmp_path, fail):
    """``bash tools/gpu_checks.sh OUT_DIR`` from any folder: a relative OUT_DIR is the caller's (not
    the repository's), every step still runs when one fails (the CUDA tests included, whose output
    goes to a file), and the exit status is 1 when any step failed."""
    _stub_python(tmp_path / "bin", fail)
    work = tmp_path / "work"
    work.mkdir()
    name = f"gpu-out-{os.getpid()}"
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    try:
        res = subprocess.run(["bash", str(REPO_ROOT / "tools" / "gpu_checks.sh"), name], cwd=work, env=env,
                             capture_output=True, text=True, timeout=60)
        assert not (REPO_ROOT / name).exists()
    finally:
        import shutil

        shutil.rmtree(REPO_ROOT / name, ignore_errors=True)
    out = work / name
    assert sorted(p.name for p in out.iterdir()) == ["audit", "inference.json", "options.json", "test_cuda.txt",
                                                     "train.json", "train_graphs.json"], res.stdout + res.stderr
    assert res.stdout.count("== ") == 6
    failed = [line for line in res.stdout.splitlines() if "failed (exit" in line]
    if fail == "NOTHING":
        assert res.returncode == 0 and not failed, res.stdout
    else:
        assert res.returncode == 1 and len(failed) == 1, res.stdout


def test_ctrl_c_ends_the_progress_bar_then_says_interrupted(monkeypatch, capsys):
    """Ctrl-C in the middle of the timing: exit 130 and the message on a line of its own, not
    appended to the half-drawn progress bar."""
    import cfin.bench.timing as timing
    from cfin.cli import main

    calls = []

    def timed(fn, device, issued=None):
        calls.append(fn)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return 1e-3
    monkeypatch.setattr(timing, "timed", timed)
    assert main(["bench", "--preset", "tiny", "--lr-size", "8x8", "--runs", "2", "--no-memory"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "\ncfin bench: interrupted\n" in err.replace("\r", "\n"), err
