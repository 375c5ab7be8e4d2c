"""FDIWN's wiring as the public code has it, per scale: which FSWG runs at each step of the WRDC, and
what the second path reads (FDIWNx2.py / FDIWNx3.py: the raw image; FDIWNx4.py: the mean-shifted one)."""
from __future__ import annotations

import pytest
import torch

import cfin.peers


@pytest.mark.parametrize("name, scale, calls", [
    ("fdiwn", 4, ["Li1", "Li1", "Li2", "Li3", "Li2", "Li3"]),  # FDIWNx4.py's forward
    ("fdiwn-m", 4, ["Li1", "Li1", "Li2", "Li2"]),  # two FSWGs, four calls: the printed counts (fdiwn_m)
])
def test_fswg_call_order(name, scale, calls):
    with torch.device("meta"):
        model = cfin.peers.build(name, scale)
    seen = []
    groups = [n for n, _ in model.named_children() if n.startswith("Li")]
    for n in groups:
        getattr(model, n).register_forward_hook(lambda m, i, o, n=n: seen.append(n))
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, 8, 8, device="meta"))
    assert seen == calls


@pytest.mark.parametrize("scale, raw", [(2, True), (3, True), (4, False)])
def test_second_path_input(scale, raw, one_thread):
    torch.manual_seed(0)
    model = cfin.peers.build("fdiwn", scale).eval()
    seen = {}
    model.conv2.register_forward_pre_hook(lambda m, i: seen.update(conv2_input=i[0]))
    model.Sub_mean.register_forward_hook(lambda m, i, o: seen.update(shifted=o))
    x = torch.rand(1, 3, 6, 6) * 255
    with torch.no_grad():
        model(x)
    assert seen["conv2_input"] is (x if raw else seen["shifted"])
