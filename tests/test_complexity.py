"""Complexity: the paper's printed counts, the full counts, scaling with input size, errors."""
from __future__ import annotations

import json

import pytest
import torch

import cfin
from cfin.cli import main
from cfin.complexity import count, default_lr_size
from cfin.complexity.conventions import OFFICIAL_FULL, PAPER_PRINTED
from cfin.errors import CFINError


# --- the paper's printed numbers (torchsummaryX on the official code) and the full counts ---

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_paper_rule_reproduces_printed_numbers(scale):
    c = count(cfin.preset(scale), convention="paper")
    printed = PAPER_PRINTED[scale]
    assert c.input == (1, 3, *default_lr_size(scale))
    assert c.params == printed["params"]
    # a count (exact integers) against a printed one, rounded to 0.01G of 31-117G: under 1e-3 apart
    assert abs(c.multi_adds / 1e9 - printed["multi_adds_G"]) / printed["multi_adds_G"] < 1e-3
    assert round(c.multi_adds / 1e9, 2) == printed["multi_adds_G"]  # as printed, to the last digit


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_full_count_matches_reference(scale):
    c = count(cfin.preset(scale), convention="full")
    ref = OFFICIAL_FULL[scale]
    assert c.params == ref["params"] == sum(p.numel() for p in cfin.CFIN(cfin.preset(scale)).parameters())
    # REFERENCE.md's full count as printed, to 0.1G: within half of that (an integer count)
    assert abs(c.multi_adds / 1e9 - ref["multi_adds_G"]) <= 0.05
    assert sum(c.by_operator.values()) == c.multi_adds


def test_default_sizes_give_720p_output():
    assert default_lr_size(2) == (360, 640)
    assert default_lr_size(3) == (240, 426)
    assert default_lr_size(4) == (180, 320)


def test_paper_rule_on_a_variant_matches_table_viii():
    # Table VIII, CFGT-0 (no Transformer stage): 630K / 28.0G
    c = count(cfin.preset(4, transformer=False), convention="paper")
    assert round(c.params / 1e3) == 630 and round(c.multi_adds / 1e9, 1) == 28.0


# --- counts scale with the input size as closed forms say ---

def _x4_paper_closed_form(h, w):
    """torchsummaryX on official x4: per-pixel conv terms + weights-once terms (paper.py docstring)."""
    per_pixel = 2 * 1296 + 3 * 20736 + 8 * (12288 * 4 + 3072 + 3 * 144) + 8 * 6912
    once = (8 * 3 * 2 * (48 + 20736)   # RIFU weight-normed convs, g + v, per call
            + 8 * (48 + 6912)          # weight-normed squeezes
            + 2 * 9                    # the two MeanShifts (class name without "Conv")
            + 24 * 144 * 48            # ECA as a Conv1d over the 48 channels
            + 8 * 3 * 144              # LayerNorm weights
            + 8 * (2 * 195 + 67 + 199))  # the CGMs' Linears (ce, ci, gd, gd2)
    return per_pixel * h * w + once


def _x4_full_per_pixel():
    convs = 2 * 1296 + 3 * 20736 + 9 + 9 * 16                  # head, second path, tail, mean shifts
    ciam = 8 * (3 * (2 * 20736 + 144) + 12288 + 3072)         # 8 calls: RIFUs, deconv (input res), down
    proj = 8 * 2 * 6912                                        # expands and squeezes
    heads = cfin.preset(4).heads
    cfgt = sum(2 * 432 * 144 + 144 * 144 + 144 * 144 * 9 + 2 * 2 * 144 * (144 // h) for h in heads)
    return convs + ciam + proj + cfgt


@pytest.mark.parametrize("size", [(180, 320), (20, 28), (47, 33)])
def test_paper_count_closed_form(size):
    assert count(cfin.preset(4), size, "paper").multi_adds == _x4_paper_closed_form(*size)


def test_full_count_is_affine_in_pixels_with_closed_form_slope():
    a, b = (count(cfin.preset(4), (12, s), "full").multi_adds for s in (10, 20))
    assert b - a == _x4_full_per_pixel() * 12 * 10
    assert count(cfin.preset(4), (12, 30), "full").multi_adds - b == b - a


def test_full_count_of_a_batch_is_the_batch_times_one_image():
    """Every multiply-add is per image (the ECA's hand-added ones too); parameters are shared."""
    one, two = (count(cfin.preset(4), (12, 10), "full", batch=b) for b in (1, 2))
    assert two.input == (2, 3, 12, 10)
    assert (two.params, two.multi_adds) == (one.params, 2 * one.multi_adds)
    assert two.by_operator == {op: 2 * v for op, v in one.by_operator.items()}


def test_breakdown_adds_up_and_places_the_cost():
    c = count(cfin.preset(4), (16, 16), "full")
    rows = {r.name: r for r in c.breakdown()}
    assert sum(r.multi_adds for r in rows.values()) == c.multi_adds
    assert sum(r.params for r in rows.values()) == c.params
    assert rows["body.cfgts.*.igp.fc2"].multi_adds == 8 * 144 * 144 * 9 * 256   # the 3x3 CGM
    assert rows["body.cfgts.*.igp.fc2"].params == 8 * 144 * 144 * 9
    assert rows["body.convs.*.up"].calls == 8                                   # 4 CIAMs, twice each
    cut = {r.name: r for r in c.breakdown(depth=2)}                            # calls: summed over what a row holds
    assert cut["body.convs"].calls == sum(r.calls for n, r in rows.items() if n.startswith("body.convs."))
    p = count(cfin.preset(4), (16, 16), "paper")
    assert sum(r.params for r in p.breakdown(depth=1)) == p.params
    assert "body.cfgts.*.igp.fc2" not in {r.name for r in p.breakdown()}      # the CGM is not a leaf


def test_count_accepts_a_model_and_leaves_it_alone():
    model = cfin.CFIN(cfin.preset("tiny"))
    c = count(model, (16, 16), "full")
    assert c.params == sum(p.numel() for p in model.parameters())
    assert next(model.parameters()).device.type == "cpu"


# --- the libraries users compare against ---

def _distinct_row_configs():
    from cfin.records import config_hash
    from cfin.tables import all_tables

    configs = {}
    for t in all_tables():
        for r in t.reproducible_rows:
            configs.setdefault(config_hash(r.config), (f"{t.id}/{r.id}", r.config))
    return list(configs.values())


@pytest.mark.parametrize("backend", ["pytorch", "aten"])
def test_ptflops_on_meta_tensors_counts_what_it_counts_on_real_ones(backend):
    """Every network of the tables, both backends: the meta count (what reports and records hold)
    is ptflops' own count of a real forward. On meta tensors torch runs its Python reference code
    for some ops (F.leaky_relu, bilinear F.interpolate), whose torch.mul calls ptflops would add."""
    import contextlib
    import io
    import warnings

    from ptflops import get_model_complexity_info

    from cfin.complexity.counts import input_shape

    lr = (12, 20)
    for name, config in _distinct_row_configs():
        c = count(config, lr, "ptflops" if backend == "pytorch" else "ptflops_aten")
        shape = input_shape(config, lr, 1)
        torch.manual_seed(0)
        model, x = cfin.CFIN(config).eval(), torch.rand(shape) * 255
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            macs, params = get_model_complexity_info(model, tuple(shape[1:]), input_constructor=lambda _: x,
                                                     as_strings=False, print_per_layer_stat=False, backend=backend)
        assert (c.multi_adds, c.params) == (macs, params), name


def test_ptflops_reports_its_blind_spots():
    c = count(cfin.preset("tiny"), (16, 16), "ptflops")
    assert c.params == count(cfin.preset("tiny"), (16, 16), "full").params
    assert any(s.startswith("ParametrizedConv2d") for s in c.skipped)
    a = count(cfin.preset("tiny"), (16, 16), "ptflops_aten")
    assert a.multi_adds > 0 and any("mul" in s for s in a.skipped)


def test_fvcore_counts_and_lists_unsupported_ops():
    c = count(cfin.preset("tiny"), (16, 16), "fvcore")
    full = count(cfin.preset("tiny"), (16, 16), "full")
    assert c.params == full.params
    assert any(s.startswith("aten::mul") for s in c.skipped)
    # fvcore = conv + linear + matmul (+ layer_norm, which the full count does not treat as a product);
    # the full count adds the ECA's 1-D conv, which fvcore sees as elementwise ops
    eca = full.by_operator.get("elementwise 1-D conv (ECA)", 0)
    assert c.multi_adds - c.by_operator.get("layer_norm", 0) == full.multi_adds - eca


# --- memory and latency, tiny ---

def test_memory_and_latency_on_cpu():
    from cfin.complexity.latency import measure_latency
    from cfin.complexity.memory import measure_memory

    cpu = torch.device("cpu")
    m = measure_memory(cfin.preset("tiny"), cpu, "training", (16, 16), batch=2)
    assert m["peak_bytes"] >= m["baseline_bytes"] > 0 and m["call_bytes"] > 0
    assert m["input"] == [2, 3, 16, 16] and m["device"] == "cpu" and m["dtype"] == "float32"
    lat = measure_latency(cfin.preset("tiny"), cpu, (12, 12), runs=3, warmup=1, progress=False)
    assert lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"] and lat["runs"] == 3
    assert lat["input"] == [1, 3, 12, 12]


def test_latency_events_time_the_measured_device(fake_cuda, monkeypatch):
    """``measure_latency`` on ``cuda:1`` records its events on cuda:1's stream (the model on the
    CPU here: only the timing's device is under test)."""
    import cfin.complexity.latency as latency

    gpu1 = torch.device("cuda", 1)
    monkeypatch.setattr(latency, "build", lambda model, device, dtype: model)
    monkeypatch.setattr(latency, "random_input", lambda size, batch, device, dtype, rgb: torch.rand(batch, 3, *size))
    lat = latency.measure_latency(torch.nn.Identity(), gpu1, (4, 4), runs=2, warmup=1, progress=False)
    assert lat["median_ms"] == 2.0 and lat["timer"] == "torch.cuda.Event pairs"
    assert set(fake_cuda.recorded) == {("stream", gpu1)} and set(fake_cuda.synchronized) == {gpu1}


def test_tensor_peak_counts_what_is_live_at_once():
    """4 MiB held while 8 MiB more is allocated, then both freed: the peak is their sum, and
    tensors live before the call do not count."""
    from cfin.complexity.memory import tensor_peak

    before = torch.ones(1 << 22)  # 16 MiB, live throughout

    def call():
        a = torch.ones(1 << 20)
        b = torch.ones(1 << 21)
        return float(a.sum() + b.sum() + before[0])

    m = tensor_peak(call)
    assert 12 << 20 <= m["tensor_bytes"] < (12 << 20) + 1024, m   # and the sums' scalars
    assert "profile_memory" in m["tensor_method"]


def test_memory_child_reports_the_tensor_peak_on_request():
    from cfin.complexity.memory import measure_memory

    m = measure_memory(cfin.preset("tiny"), torch.device("cpu"), "inference", (12, 12), tensors=True)
    assert 0 < m["tensor_bytes"] < 50 << 20 and "second call" in m["tensor_method"]
    assert "tensor_bytes" not in measure_memory(cfin.preset("tiny"), torch.device("cpu"), "inference", (12, 12))


# --- the command and its errors ---

def test_cli_json(capsys):
    rc = main(["complexity", "--preset", "tiny", "--lr-size", "12x16", "--conventions", "paper,full,ptflops",
               "--no-measure", "--json", "--breakdown"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["scale"] == 4 and out["input"] == [1, 3, 12, 16]
    assert set(out["conventions"]) == {"paper", "full", "ptflops"}
    for conv in out["conventions"].values():
        assert isinstance(conv["params"], int) and isinstance(conv["multi_adds"], int)
    assert "skipped" in out["memory"] and out["breakdown"]


def test_cli_table_x3_hr_size(capsys):
    assert main(["complexity", "--scale", "3", "--hr-size", "36x48", "--no-libs", "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "1x3x12x16 LR -> 36x48 output (x3)" in out and "torchsummaryX" in out


@pytest.mark.parametrize("argv, message", [
    (["--lr-size", "180by320"], "HxW"),
    (["--lr-size", "2x320"], "too small"),
    (["--hr-size", "721x1280"], "not divisible"),
    (["--hr-size", "720x1280", "--scale", "3"], "240x426"),
    (["--conventions", "paper,flops"], "unknown convention 'flops'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--depth", "-1", "--breakdown"], "--depth must be at least 1, got -1"),
    (["--depth", "0"], "--depth must be at least 1, got 0"),
    (["--scale", "4", "--preset", "x3"], "--scale 4 picks preset x4, but --preset x3 was given"),
])
def test_cli_errors(capsys, argv, message):
    assert main(["complexity", "--no-libs", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cli_cuda_without_cuda(capsys):
    assert main(["complexity", "--preset", "tiny", "--device", "cuda", "--measure", "--no-libs"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_api_errors():
    with pytest.raises(CFINError, match="unknown convention"):
        count(cfin.preset(4), convention="macs")
    with pytest.raises(CFINError, match="too small"):
        count(cfin.preset(4), (1, 64))
    with pytest.raises(CFINError, match="explicit lr_size"):
        count(torch.nn.Conv2d(3, 3, 1), convention="full")


@pytest.mark.parametrize("convention", ["paper", "full"])
def test_the_fast_path_counts_as_the_network_it_computes(convention):
    """Same state dict, same function: the fast path's switches, alone or together, and a model
    built with them count as the official computation."""
    import cfin
    from cfin.complexity import count
    from cfin.config import IMPLS

    base = cfin.preset(4)
    expected = count(base, convention=convention)
    variants = [base.replace(**{k: v}) for k, v in IMPLS["fast"].items()]
    variants += [base.with_impl("fast"), base.with_impl("fast").replace(grad_checkpoint=True, cga_gram="always")]
    for cfg in variants:
        c = count(cfg, convention=convention)
        assert (c.params, c.multi_adds) == (expected.params, expected.multi_adds), cfg
    model = cfin.CFIN(cfin.preset("tiny").with_impl("fast"))
    assert count(model, convention="full").params == sum(p.numel() for p in model.parameters())
