"""Each audit finding re-measured: if the released code's behaviour changes, these fail.

The tests run the same functions as ``cfin audit`` on the official-format random-weight
fixture (../shared/reference) with small image crops.
"""
import json
import re

import numpy as np
import pytest
import torch

from cfin.audit import AuditReport, render_audit, render_markdown, run_audit
from cfin.audit.context import AuditContext
from cfin.audit.findings import FINDINGS
from cfin.audit.findings.conv_stage import ciam_branch, ciam_equations, residual_scalars, rifu_equation
from cfin.audit.findings.counts import official_extras, printed_complexity, unused_parameters
from cfin.audit.findings.inference import seed_spread
from cfin.audit.findings.structure import loop_mechanism, per_scale_shapes, reconstruction_tail
from cfin.audit.findings.training import mean_shift, schedule, weight_norm
from cfin.audit.findings.transformer import attention_eq13, cga_kernel, kv_eq17
from cfin.data.pairs import Sample
from numerics import GOLDEN_ATOL, OUT_ATOL, check


@pytest.fixture(scope="module")
def ctx(shared):
    c = AuditContext(None, scale=4, device="cpu", seeds=2, progress=False)
    assert c.kind == "fixture" and c.golden is not None
    return c


def _check(f, fn_name):
    assert f.confirmed, f"{f.id}: {f.measurement}"
    assert f.test.endswith("::" + fn_name)
    json.dumps(f.to_dict())  # the record is plain JSON


def test_printed_complexity_undercounts(ctx):
    f = printed_complexity(ctx)
    _check(f, "test_printed_complexity_undercounts")
    m = f.measurement
    # 31.2G as printed, rounded to 0.1G: 0.16% either way
    assert m["paper_rule_params"] == 698_826 and abs(m["paper_rule_multi_adds"] / 31.2e9 - 1) < 0.005
    assert m["full_params"] == m["used_params_in_model"] == 3_382_410
    assert m["full_multi_adds"] > 7 * 31.2e9  # 231G, not 31.2G


@pytest.mark.parametrize("convention,factor", [("paper", 1.01), ("full", 0.2)])
def test_printed_complexity_is_not_confirmed_by_a_wrong_count(ctx, monkeypatch, convention, factor):
    """A paper-rule count 1% off the printed numbers, or a full count under 4x them, is no confirmation."""
    import dataclasses

    import cfin.complexity

    count = cfin.complexity.count

    def off(config, lr_size=None, which="paper", batch=1):
        c = count(config, lr_size, which, batch)
        if which == convention:
            c = dataclasses.replace(c, params=round(c.params * factor), multi_adds=round(c.multi_adds * factor))
        return c
    monkeypatch.setattr(cfin.complexity, "count", off)
    f = printed_complexity(ctx)
    assert f.measurement[f"{convention}_rule_params" if convention == "paper" else "full_params"] != \
        count(ctx.config, None, convention).params
    assert not f.confirmed


def test_unused_official_parameters(ctx):
    f = unused_parameters(ctx)
    _check(f, "test_unused_official_parameters")
    m = f.measurement
    assert (m["registered_params"], m["used_params"]) == (6_055_052, 3_382_410)
    assert m["unused_params"] == 2_672_642 and m["unused_tensors"] == 98
    assert m["our_params_without_gradient"] == 0
    check("golden outputs", m["golden_max_abs_diff_without_unused"], GOLDEN_ATOL)
    # the structural derivation (used without an official state_dict) agrees with the state_dict
    assert sum(official_extras(ctx.model()).values()) == m["unused_params"]


def test_gumbel_mask_is_sampled_at_inference(ctx):
    # Set5 crops: a 20 x 20 LR window of each image and its HR window
    s, crops = ctx.scale, []
    for smp in ctx.samples:
        crops.append(Sample(smp.name, smp.lr[:20, :20], smp.hr[:20 * s, :20 * s]))
    sample_model = ctx.model("sample")
    m = seed_spread(sample_model, crops, s, seeds=3, device=ctx.device)
    assert m["max_abs_diff_between_two_seeds"] > 0.01       # two seeds, two images
    assert 0 < m["mask_pixels_flipped_between_two_seeds"] < 1
    assert np.isfinite(m["psnr_between_two_seeds_db"])
    # the same seed reproduces the output exactly; argmax masks need no seed
    x = ctx.probe(16)
    outs = []
    for seed in (5, 5):
        torch.manual_seed(seed)
        with torch.no_grad():
            outs.append(sample_model(x))
    assert torch.equal(outs[0], outs[1])
    argmax = ctx.model("argmax")
    with torch.no_grad():
        torch.manual_seed(1)
        a = argmax(x)
        torch.manual_seed(2)
        assert torch.equal(a, argmax(x))


def test_ciam_branch_is_two_1x1_convs(ctx):
    f = ciam_branch(ctx)
    _check(f, "test_ciam_branch_is_two_1x1_convs")
    m = f.measurement
    # two float32 computations of the same 1x1 convs: their norm-relative difference is a few
    # roundings (eps 1.2e-7) in any summation order; 1e-5 is ~80 eps, a wrong tap 0.1 and up
    assert m["branch_vs_1x1_max_relative_diff"] < 1e-5
    assert m["deconv_zero_gradient_fraction"] == 0.75
    assert m["deconv_tap00_entries_nonzero_gradient"] == 4 * 48 * 64 and m["dead_params"] == 4 * 3 * 48 * 64
    assert m["branch_receptive_field_pixels"] == 1
    if "library_1x1_switch_whole_model_max_abs_diff" in m:
        check("fast vs faithful: outputs", m["library_1x1_switch_whole_model_max_abs_diff"], OUT_ATOL)


def test_cga_kernel_size_is_ignored(ctx):
    f = cga_kernel(ctx)
    _check(f, "test_cga_kernel_size_is_ignored")
    m = f.measurement
    assert m["cga_kernel_sizes"] == [1] and m["cgas_with_k1"] == m["cgas"] == 16
    assert m["igp_second_cgm_kernel_sizes"] == [3]
    # the paper's reading costs millions of parameters, which the torchsummaryX rule does not see
    assert m["full_params_delta_if_cga2_k3"] > 1_000_000 and m["paper_rule_params_delta_if_cga2_k3"] < 2_000


def test_ciam_differs_from_eq_10_12(ctx):
    f = ciam_equations(ctx)
    _check(f, "test_ciam_differs_from_eq_10_12")
    m = f.measurement
    assert m["ciam_output_relative_diff_min"] > 0.05
    check("golden outputs", m["golden_max_abs_diff_code_reading"], GOLDEN_ATOL)
    assert m["golden_max_abs_diff_paper_reading"] > 1.0  # another function: whole levels off


def test_attention_is_not_eq_13(ctx):
    f = attention_eq13(ctx)
    _check(f, "test_attention_is_not_eq_13")
    m = f.measurement
    heads = ctx.config.heads
    assert m["omega_params"] == sum(2 * h * (144 // h) ** 2 for h in heads)  # heads x d x d, two CGAs
    assert m["replica_max_abs_diff"] == 0
    # L2-normalised q, k: cosine logits, at most 1 but for a few roundings (d <= 18 terms: ~2e-6)
    assert m["max_abs_normalised_logit"] <= 1 + 1e-5
    assert m["raw_dot_product_growth"] > 3                # raw q.k grow with the pixel count (4x here)


def test_kv_handover_is_not_eq_17(ctx):
    f = kv_eq17(ctx)
    _check(f, "test_kv_handover_is_not_eq_17")
    m = f.measurement
    assert abs(m["k1_row_norm_mean"] - 1) < 1e-4          # k1 arrives L2-normalised (1 within a few eps)
    assert m["replica_max_abs_diff"] == 0
    assert m["k1_share_shrink_for_4x_pixels"] > 1.5      # ~1/sqrt(pixels)
    assert m["cga2_output_relative_change_without_v1"] > 0.05  # V is handed over and used


def test_rifu_differs_from_eq_9(ctx):
    f = rifu_equation(ctx)
    _check(f, "test_rifu_differs_from_eq_9")
    m = f.measurement
    assert m["relative_diff_from_extra_lrelu_alone_mean"] > 1e-3
    assert 0 < m["mask_fraction_of_pixels_kept_mean"] < 1
    assert m["golden_max_abs_diff_paper_reading"] > 1.0


def test_weight_norm_placement(ctx):
    f = weight_norm(ctx)
    _check(f, "test_weight_norm_placement")
    m = f.measurement
    assert (m["in_rifus"], m["rifu_conv_layers"]) == (24, 48)
    assert m["outside_rifus"] == ["body.squeezes"] and m["official_weight_g_tensors"] == 28
    # weight norm: rescaling v leaves the function; only the rounding of w = g v / |v| moves the
    # outputs, float32 noise as between the two paths of one network (OUT_ATOL)
    check("weight norm: outputs after rescaling v", m["output_change_when_v_scaled_7x"], OUT_ATOL)


def test_training_schedule(ctx):
    f = schedule(ctx)
    _check(f, "test_training_schedule")
    m = f.measurement
    assert m["official_iterations"] == 1_000_000 and m["official_patches_seen"] == 16_000_000
    assert m["official_final_epoch_lr"] < 6.25e-6 <= m["paper_final_epoch_lr"] * 1.001
    assert m["official_iterations_below_paper_eta_min"] > 0
    # cfin's "paper" recipe, run through the trainer's scheduler, takes the official learning rate every epoch
    assert m["cfin_paper_recipe"] == {"iterations": 1_000_000, "batch": 16, "eta_min": 1e-7, "lr_step_every": 1000}
    assert m["cfin_paper_recipe_max_lr_gap_to_official"] == 0
    assert m["cfin_paper_text_recipe"] == {"eta_min": 6.25e-6, "lr_step_every": 1}


def test_mean_shift_is_trainable(ctx):
    f = mean_shift(ctx)
    _check(f, "test_mean_shift_is_trainable")
    m = f.measurement
    assert m["module_attribute_requires_grad_false_leaves_params_trainable"] is True
    assert min(m["mean_shift_gradient_abs_sum"].values()) > 0
    # the fixture holds identity weights and the constants rounded to float16
    assert m["sub_mean_weight_max_abs_dev_from_identity"] == 0
    assert m["sub_mean_bias_max_abs_dev_from_constant"] < 0.1


def test_loop_mechanism(ctx):
    f = loop_mechanism(ctx)
    _check(f, "test_loop_mechanism")
    m = f.measurement
    assert m["ciam"] == {"instances": 4, "calls_each": [2]} and m["cfgt"] == {"instances": 8, "calls_each": [1]}


def test_loop_mechanism_is_not_confirmed_when_the_transformer_stages_loop_too(ctx, monkeypatch):
    import cfin.audit.findings.structure as structure

    real = structure.call_counts
    monkeypatch.setattr(structure, "call_counts", lambda *a: {k: 2 for k in real(*a)})  # every block twice
    assert not loop_mechanism(ctx).confirmed


def test_unused_parameters_not_confirmed_when_the_golden_output_differs(ctx):
    """Dropping the unused tensors must leave the official output as it was; if not, no confirmation."""
    import copy

    off = copy.copy(ctx)
    off.golden = {**ctx.golden, "sr_mask_argmax": ctx.golden["sr_mask_argmax"] + 1}
    f = unused_parameters(off)
    # 1 off the shifted outputs, give or take our deviation from the golden outputs
    assert f.measurement["golden_max_abs_diff_without_unused"] == pytest.approx(1, abs=GOLDEN_ATOL)
    assert not f.confirmed


def test_residual_scalars(ctx):
    f = residual_scalars(ctx)
    _check(f, "test_residual_scalars")
    m = f.measurement
    assert (m["learnable_scalars"], m["in_rifus"], m["in_ciams"], m["in_body"]) == (34, 24, 8, 2)
    assert m["golden_max_abs_diff_names_read_uniformly"] > 1.0
    check("golden outputs", m["golden_max_abs_diff_as_mapped"], GOLDEN_ATOL)


def test_per_scale_shapes_differ(ctx):
    f = per_scale_shapes(ctx)
    _check(f, "test_per_scale_shapes_differ")
    m = f.measurement
    assert (m["x2"]["deconv_width"], m["x3"]["deconv_width"], m["x4"]["deconv_width"]) == (72, 64, 64)
    assert m["x2"]["expand_weight_norm"] and not m["x4"]["expand_weight_norm"]
    assert m["x3"]["heads"] != m["x4"]["heads"]


def test_reconstruction_tail(ctx):
    f = reconstruction_tail(ctx)
    _check(f, "test_reconstruction_tail")
    assert f.measurement["lr_path_receptive_field_lr_pixels"] == 25


def test_every_finding_has_its_test():
    names = set(re.findall(r"^def (test_\w+)", open(__file__).read(), re.M))
    for fid, fn in FINDINGS.items():
        # the test a finding names is defined in this file
        src = open(fn.__code__.co_filename).read()
        body = src[src.index(f"def {fn.__name__}("):]
        test = re.search(r'test_name\("(test_\w+)"\)', body)[1]
        assert test in names, f"finding {fid} names {test}, which tests/test_audit.py lacks"


def test_a_list_of_large_integers_reads_as_its_items():
    """[720, 1,280] reads as three numbers: inside a list an integer is not grouped by commas."""
    from cfin.audit.render import fmt_value

    assert fmt_value([720, 1280]) == "[720, 1280]"
    assert fmt_value({"hr_size": [720, 1280], "params": 3382410}) == "hr_size: [720, 1280]; params: 3,382,410"
    assert fmt_value([2.5e6, 1.5]) == "[2500000, 1.5]"
    assert fmt_value(3382410) == "3,382,410" and fmt_value(1e6) == "1,000,000"


def test_audit_page_shows_code_spans_as_code():
    from cfin.audit.render import load_report, render_html
    from cfin.paths import REPO_ROOT

    page = render_html(load_report(REPO_ROOT / "reports" / "audit.json"))
    assert "<code>weight_conv</code>" in page and "`" not in page


def test_render_and_cli(shared, tmp_path, capsys):
    from cfin.cli import main

    report = run_audit(scale=4, device="cpu", only=["training-schedule", "loop-mechanism"], progress=False)
    paths = render_audit(tmp_path, report)
    md, html = paths["markdown"].read_text(), paths["html"].read_text()
    for f in report.findings:
        assert f"id=\"{f.id}\"" in md and f"id=\"{f.id}\"" in html and f.title in md
    assert "random weights" in md
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"?https?:", html)  # offline page
    again = AuditReport.from_dict(json.loads(paths["json"].read_text()))
    assert [f.measurement for f in again.findings] == [json.loads(json.dumps(f.to_dict()))["measurement"]
                                                       for f in report.findings]
    assert render_markdown(again) == md  # the JSON keeps the measurements' order: it renders the same page
    # the command line: summary, --json, and one-line errors
    out = tmp_path / "cli"
    assert main(["audit", "--only", "loop-mechanism", "--out", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"][0]["id"] == "loop-mechanism"
    assert (out / "audit.html").is_file() and (out / "audit.md").is_file()
    assert main(["audit", "--only", "no-such-finding", "--out", str(out)]) == 2
    assert "unknown finding 'no-such-finding'" in capsys.readouterr().err
    assert main(["audit", "--official", str(tmp_path / "absent.pt"), "--out", str(out)]) == 2
    assert "official state_dict not found" in capsys.readouterr().err
    assert main(["audit", "--official", str(tmp_path), "--out", str(out)]) == 2
    assert f"official state_dict {tmp_path} is a folder, expected a .pt file" in capsys.readouterr().err
    assert main(["audit", "--scale", "5", "--out", str(out)]) == 2
    assert "--scale 5: valid scales 2, 3, 4" in capsys.readouterr().err


def test_fresh_weights_are_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv("CFIN_SHARED", str(tmp_path))  # a folder without REFERENCE.md: no fixture...
    import cfin.audit.context as context

    monkeypatch.setattr(context, "shared_dir", lambda: None)  # ...and no sibling ../shared
    c = AuditContext(None, scale=4, device="cpu", progress=False)
    assert c.kind == "init" and "freshly initialised" in c.label and c.golden is None
    f = unused_parameters(c)  # registered count derived from the layer structure
    assert f.measurement["registered_params"] == 6_055_052 and f.confirmed


def test_a_set5_image_too_small_to_score_is_named(tmp_path, capsys):
    from cfin.cli import main
    from cfin.data.io import write_png

    hr = tmp_path / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    write_png(hr / "a.png", np.zeros((10, 10, 3), np.uint8))
    assert main(["audit", "--seeds", "2", "--only", "gumbel-at-inference", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "1 image(s) too small to score at x4" in capsys.readouterr().err


def test_audit_on_cuda_measures_in_float32(monkeypatch):
    """PyTorch runs cuDNN float32 convolutions in TF32 by default, which moves the official golden
    outputs by about 0.1 (0-255 scale) against the 1e-3 the findings check them to: the audit turns
    TF32 off while it measures, and restores it after (a stand-in context on ``cuda`` here)."""
    import cfin.audit.runner as runner

    class Context:
        device, scale, label, kind, data_label = torch.device("cuda"), 4, "stand-in", "init", "none"

    seen = []
    monkeypatch.setattr(runner, "AuditContext", lambda *args: Context())
    monkeypatch.setattr(runner, "FINDINGS", {"probe": lambda ctx: seen.append(torch.backends.cudnn.allow_tf32)})
    monkeypatch.setattr(runner, "environment", lambda device: {"device": str(device)})
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True   # PyTorch's default
        runner.run_audit(device="cuda", only=["probe"], progress=False)
        assert seen == [False] and torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
