"""The helpers behind the numerics tests' bounds (tests/numerics.py) and the margins tool."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import numerics
from cfin.paths import REPO_ROOT


def test_float64_noise_is_the_float32_rounding_of_the_computation():
    x = torch.randn(64, generator=torch.Generator().manual_seed(0))
    assert numerics.float64_noise(lambda t: t * 2, x) == 0  # exact in float32
    assert 0 < numerics.float64_noise(lambda t: t.exp().cumsum(0), x) < 1e-4
    a, b = numerics.float64_noise(lambda t: (t * 2, t / 3), x)  # one figure per returned tensor
    assert a == 0 < b
    conv = torch.nn.Conv2d(3, 4, 3)
    assert 0 < numerics.float64_noise(conv, torch.randn(1, 3, 8, 8)) < 1e-5  # a module: run as a float64 copy
    assert conv.weight.dtype == torch.float32


def test_a_bound_is_the_floor_or_noise_factor_times_the_noise():
    assert numerics.noise_bound(1e-3, 1e-5) == 1e-3
    assert numerics.noise_bound(1e-3, 1e-3) == numerics.NOISE_FACTOR * 1e-3
    assert numerics.ulps(torch.tensor([-2.0, 1.0])) == 4 * 2 * torch.finfo(torch.float32).eps


def test_check_logs_each_check_and_names_the_bound_it_fails(tmp_path, monkeypatch):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("CFIN_NUMERICS_LOG", str(log))
    numerics.check("golden outputs", 1e-4, 1e-3)
    with pytest.raises(AssertionError, match=r"fast vs faithful: outputs: 0.002 above its bound 0.001 "
                                             r"\(float32 noise 1e-05\)"):
        numerics.check("fast vs faithful: outputs", 2e-3, 1e-3, 1e-5)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["bound"], r["deviation"], r["limit"], r["noise"]) for r in rows] == \
        [("golden outputs", 1e-4, 1e-3, None), ("fast vs faithful: outputs", 2e-3, 1e-3, 1e-5)]
    assert rows[0]["test"].endswith("::test_check_logs_each_check_and_names_the_bound_it_fails")


def test_margins_tool_summarises_a_run_per_bound():
    spec = importlib.util.spec_from_file_location("numerics_margins", REPO_ROOT / "tools" / "numerics_margins.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    checks = [{"bound": "golden outputs", "deviation": 1e-4, "limit": 1e-3, "noise": None},
              {"bound": "golden outputs", "deviation": 2e-4, "limit": 1e-3, "noise": None},
              {"bound": "fast vs faithful: outputs", "deviation": 3e-4, "limit": 1.5e-3, "noise": 1.5e-4},
              {"bound": "fast vs faithful: outputs", "deviation": 0.0, "limit": 1e-3, "noise": 0.0}]
    rows = {r["bound"]: r for r in tool.summarise("onednn-avx2", checks)}
    assert rows["golden outputs"] == {"bound": "golden outputs", "setting": "onednn-avx2", "checks": 2,
                                      "max_deviation": 2e-4, "min_limit": 1e-3, "min_margin": 5.0,
                                      "max_deviation_over_noise": None}
    fast = rows["fast vs faithful: outputs"]
    assert (fast["min_margin"], fast["max_deviation_over_noise"]) == (pytest.approx(5.0), pytest.approx(2.0))
    table = tool.render(list(rows.values()))
    assert "| golden outputs | onednn-avx2 | 2 | 2.00e-04 | 1.00e-03 | 5.0x | - |" in table
