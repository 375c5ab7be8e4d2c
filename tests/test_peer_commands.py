"""The commands on the rebuilt peers: ``cfin complexity --model``, ``cfin bench --models`` and
``cfin evaluate --model NAME --weights``, their output and their errors."""
from __future__ import annotations

import json

import pytest
from cfin.cli import main


def test_complexity_of_a_peer_is_its_counts_with_its_provenance(capsys):
    assert main(["complexity", "--model", "imdn", "--scale", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "imdn" and out["scale"] == 4 and "config" not in out
    assert out["peer"]["source"].startswith("Zheng222/IMDN@")
    assert "paper_printed" not in out  # CFIN's printed numbers are not this network's
    assert set(out["conventions"]) == {"paper", "full", "ptflops", "ptflops_aten"}  # no own rule: none listed
    assert out["conventions"]["paper"]["params"] == out["conventions"]["full"]["params"] == 715_176
    assert "skipped" in out["memory"]  # counts only unless --measure


def test_own_convention_is_a_peers_and_named_where_asked(capsys):
    assert main(["complexity", "--model", "swinir-light", "--conventions", "paper,own", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "flops()" in out["conventions"]["own"]["label"]
    assert main(["complexity", "--scale", "4", "--conventions", "paper,own", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["conventions"]) == {"paper"} and "own" in out["not_applicable"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "imdnn"], "unknown model 'imdnn' (did you mean imdn, idn?); valid: cfin, imdn"),
    (["--model", "swinir-light", "--scale", "2"], "--scale 2: valid scales 4"),
    (["--model", "imdn", "--preset", "tiny"], "--preset and --config describe a CFIN; --model imdn takes --scale only"),
])
def test_complexity_model_errors(capsys, argv, message):
    assert main(["complexity", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bench_models_measures_each_network_as_a_ratio_to_cfin(capsys, one_thread):
    assert main(["bench", "--models", "imdn", "pan", "--scale", "4", "--lr-size", "12x12", "--runs", "1",
                 "--warmup", "0", "--train-batch", "2", "--train-patch", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["models"]) == ["cfin", "imdn", "pan"]  # CFIN first: every ratio is to it
    for name, entry in out["models"].items():
        assert entry["latency"]["median_s"] > 0 and entry["latency"]["runs"] == 1
        assert entry["inference_memory"]["input"] == [1, 3, 12, 12]
        assert entry["training_memory"]["input"] == [2, 3, 8, 8]
        assert entry["ratio_to_cfin"]["latency"] == pytest.approx(
            entry["latency"]["median_s"] / out["models"]["cfin"]["latency"]["median_s"])
    assert out["models"]["cfin"]["ratio_to_cfin"]["latency"] == 1.0
    assert out["models"]["imdn"]["params"] == 715_176


@pytest.mark.parametrize("argv, message", [
    (["--models", "imdn", "--train"], "--train belongs to the fast-vs-faithful comparison"),
    (["--models", "imdn", "imdn"], "--models names imdn twice"),
    (["--models", "swinir-light", "--scale", "3"], "swinir-light is built at x4"),
    (["--train-batch", "2"], "--train-batch and --train-patch size the training step of --models"),
])
def test_bench_models_errors(capsys, argv, message):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_released_weights_under_every_protocol(shared, capsys, one_thread):
    """IMDN x4's released weights on Set5: the suite's default reproduces the printed 32.21 / 0.8948
    (tests/test_peer_weights_imdn.py bounds it); IMDN's own code rounds Y (y-rounded), 0.01-0.03 dB lower
    at this MSE (tests/test_protocols.py derives the size), which misses the printed number."""
    weights = shared / "reference" / "peers" / "IMDN_x4.pth"
    rc = main(["evaluate", "--model", "imdn", "--weights", str(weights), "--scale", "4", "--data-root",
               str(shared / "datasets"), "--datasets", "Set5", "--protocols", "all", "--json"])
    out = json.loads(capsys.readouterr().out)["Set5"]
    assert rc == 0 and out["protocol"] == "matlab" and out["images"] == 5
    rounded = out["protocols"]["y-rounded"]
    assert 0.01 < out["psnr"] - rounded["psnr"] < 0.04
    assert abs(out["protocols"]["edsr"]["psnr"] - out["psnr"]) < 1e-3


def test_evaluate_peer_errors(shared, tmp_path, capsys):
    weights = shared / "reference" / "peers" / "IMDN_x2.pth"
    cases = [
        (["--model", "imdn", "--scale", "4"], "--model imdn needs --weights PATH"),
        (["--model", "imdn", "--weights", str(weights)], "--model imdn needs --scale (2, 3, 4)"),
        (["--model", "imdn", "--weights", str(weights), "--scale", "4"], "looks like an x2 IMDN checkpoint"),
        (["--model", "pan", "--weights", str(weights), "--scale", "2"],
         "looks like the x2 checkpoint of IMDN (--model imdn)"),
        (["--model", "imdn", "--weights", str(tmp_path / "none.pth"), "--scale", "4"], "none.pth"),
        (["--model", "bicubic", "--weights", str(weights), "--scale", "4"], "--weights goes with --model PEER"),
    ]
    for argv, message in cases:
        assert main(["evaluate", "--datasets", "embedded", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
