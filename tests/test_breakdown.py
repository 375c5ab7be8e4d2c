"""``cfin.complexity.breakdown``: each op's kind and multiply-adds, and the bench's per-path breakdown."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cfin.bench import BenchSpec, render, run_bench
from cfin.complexity.breakdown import op_breakdown, render_breakdown
from cfin.config import preset


def toy_call():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 8, 10, generator=gen)
    a, b = torch.randn(2, 6, 5, generator=gen), torch.randn(2, 5, 7, generator=gen)

    def call():
        with torch.inference_mode():
            y = F.conv2d(x, torch.ones(8, 16, 3, 3), padding=1)                      # 8*80 outputs x 16*9
            F.conv2d(x, torch.ones(16, 4, 1, 1), groups=4)                            # 16*80 x 4
            torch.ops.aten.convolution.default(x, torch.ones(16, 4, 1, 1), None, [1, 1], [0, 0], [1, 1],
                                               False, [0, 0], groups=4)               # the same, groups by keyword
            F.conv_transpose2d(x, torch.ones(16, 8, 2, 2), stride=2)                 # 16*80 inputs x 8*4
            torch.ops.aten.convolution_backward(y, x, torch.ones(8, 16, 3, 3), None, [1, 1], [1, 1], [1, 1],
                                                False, [0, 0], 1, [False, True, False])  # 8*80 x 16*9
            torch.bmm(a, b)                                                          # 2*6*7 x 5
            torch.addmm(torch.zeros(6, 7), a[0], b[0])                               # 6*7 x 5
            F.linear(a, torch.ones(3, 5))                                            # 2*6*3 x 5
            F.layer_norm(y.permute(0, 2, 3, 1), (8,))
    return call


def test_kinds_and_multiply_adds_of_a_known_call():
    bd = op_breakdown(toy_call(), torch.device("cpu"), repeats=2)
    kinds = {k["kind"]: k for k in bd["kinds"]}
    assert kinds["conv 3x3 16->8"]["macs"] == 8 * 80 * 16 * 9
    assert kinds["conv 1x1 16->16 (4 groups)"]["macs"] == 2 * 16 * 80 * 4
    assert kinds["conv 1x1 16->16 (4 groups)"]["calls"] == 2
    assert kinds["conv-transpose 2x2 16->8"]["macs"] == 16 * 80 * 8 * 4
    assert kinds["conv weight gradient 3x3 16->8"]["macs"] == 8 * 80 * 16 * 9
    assert kinds["matmul"]["macs"] == 2 * 6 * 7 * 5 + 6 * 7 * 5 + 2 * 6 * 3 * 5 and kinds["matmul"]["calls"] == 3
    assert kinds["views"]["macs"] is None and kinds["views"]["calls"] >= 1
    assert any("layer_norm" in k for k in kinds)
    assert bd["ops"] == sum(k["calls"] for k in bd["kinds"])
    assert bd["total_s"] >= bd["ops_s"] > 0 and bd["between_ops_s"] == pytest.approx(bd["total_s"] - bd["ops_s"])
    assert [k["s"] for k in bd["kinds"]] == sorted((k["s"] for k in bd["kinds"]), reverse=True)
    text = "\n".join(render_breakdown("toy", bd, peak_macs_per_s=1e12, top=3))
    assert "where toy's time goes" in text and "other kinds" in text and "between ops" in text


def test_bench_breaks_each_path_down(monkeypatch, one_thread):
    """The fast path's Gram matrices are conv weight gradients; the faithful CGM is im2col + matmul;
    a compiled path says why it has no breakdown (torch.compile stubbed out: no C++ build in a test).
    The Gram form forced: at 6 x 7 it costs more multiply-adds, and "auto" would not take it."""
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)
    report = run_bench(BenchSpec(config=preset("tiny", cga_gram="always"), lr_size=(6, 7), runs=1, warmup=0,
                                 compile=True, allocator="default", memory=False, breakdown=True),
                       progress=False)
    assert "breakdown" not in report["paths"]["fast+compile"]
    assert "compiled" in report["paths"]["fast+compile"]["breakdown_skipped"]
    fast = {k["kind"] for k in report["fast"]["breakdown"]["kinds"]}
    faithful = {k["kind"] for k in report["faithful"]["breakdown"]["kinds"]}

    def gram(kinds):
        return any(k.startswith("conv weight gradient 1x1") for k in kinds)
    assert gram(fast) and "im2col" not in fast
    assert "im2col" in faithful and "matmul" in faithful and not gram(faithful)
    assert report["fast"]["breakdown"]["repeats"] == 1
    assert "where fast's time goes" in render(report) and "fast+compile: no breakdown" in render(report)


def test_training_backward_is_labelled_by_shape_with_both_gradients_counted():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)

    def step():
        conv(x).sum().backward()
    kinds = {k["kind"]: k for k in op_breakdown(step, torch.device("cpu"), repeats=1)["kinds"]}
    assert kinds["conv 3x3 4->6"]["macs"] == 2 * 6 * 25 * 4 * 9
    assert kinds["conv backward 3x3 4->6"]["macs"] == 2 * kinds["conv 3x3 4->6"]["macs"]  # input and weight


def test_cuda_breakdown_waits_for_the_device_it_times(fake_cuda):
    """Each op is timed between synchronisations of its own device (cuda:1 here), not of the
    current one."""
    bd = op_breakdown(toy_call(), torch.device("cuda", 1), repeats=1)
    assert "synchronisations" in bd["method"] and bd["ops"] > 0
    assert fake_cuda.synchronized and set(fake_cuda.synchronized) == {torch.device("cuda", 1)}
