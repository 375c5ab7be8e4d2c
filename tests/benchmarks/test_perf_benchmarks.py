"""pytest-benchmark timings of the fast and faithful paths (skipped by default: ``--benchmark-skip``).

    python -m pytest tests/benchmarks -o addopts=""                     # small: x4 at 45x80 LR
    CFIN_BENCH_FULL=1 python -m pytest tests/benchmarks -o addopts=""   # issue 7 sizes

Full size is x4 inference at 180 x 320 (720p output), batch 1, and one training step at batch
16 of 48 x 48. For the side-by-side report with memory and the compute floor use ``cfin bench``.
"""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from cfin.bench import build_models, paths_for, BenchSpec
from cfin.config import preset

FULL = os.environ.get("CFIN_BENCH_FULL") == "1"
INFER_LR = (180, 320) if FULL else (45, 80)
TRAIN_LR, TRAIN_BATCH = ((48, 48), 16) if FULL else ((24, 24), 4)
ROUNDS = 5 if FULL else 3


@pytest.fixture(scope="module")
def models():
    paths = paths_for(BenchSpec(config=preset("x4")))
    return build_models(paths, torch.device("cpu"))


@pytest.mark.parametrize("path", ["faithful", "fast"])
def test_inference(benchmark, models, path):
    model = models[path].eval()
    x = torch.rand(1, 3, *INFER_LR, generator=torch.Generator().manual_seed(0)) * 255

    def forward():
        with torch.inference_mode():
            return model(x)
    out = benchmark.pedantic(forward, rounds=ROUNDS, warmup_rounds=1)
    assert out.shape == (1, 3, INFER_LR[0] * 4, INFER_LR[1] * 4)


@pytest.mark.parametrize("path", ["faithful", "fast"])
def test_training_step(benchmark, models, path):
    model = models[path].train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(TRAIN_BATCH, 3, *TRAIN_LR, generator=gen) * 255
    y = torch.rand(TRAIN_BATCH, 3, TRAIN_LR[0] * 4, TRAIN_LR[1] * 4, generator=gen) * 255

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()
    loss = benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=1)
    assert loss == loss  # not NaN
