"""MAFFSRN and MAFFSRN-L (cfin.peers.maffsrn): public layout, global skip, channel shuffle, input size."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

import cfin.peers
from cfin.errors import CFINError
from cfin.peers.maffsrn import channel_shuffle


def public_layout(sd: dict) -> dict:
    """Our state_dict under ``torch.nn.utils.weight_norm``'s key names (``weight_g`` / ``weight_v``)."""
    return {re.sub(r"\.parametrizations\.weight\.original([01])$",
                   lambda m: ".weight_g" if m[1] == "0" else ".weight_v", k): v for k, v in sd.items()}


@pytest.mark.parametrize("name, ffgs", [("maffsrn", 4), ("maffsrn-l", 8)])
def test_public_keys_load_strictly(tmp_path, name, ffgs):
    """Facts of AbdulMoqeet/MAFFSRN's maffsrn.py / template.py at x4, in its key layout, load strictly."""
    torch.manual_seed(0)
    sd = public_layout(cfin.peers.build(name, 4).state_dict())
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes[f"body.{ffgs - 1}.reduction3.weight_v"] == (32, 64, 1, 1)
    assert f"body.{ffgs}.b0.conv00.0.weight" not in shapes
    assert shapes["body.0.b2.reduce_spatial_size.weight"] == (8, 8, 3, 3)
    assert shapes["body.0.b2.increase_channels.0.weight"] == (32, 8, 1, 1)
    assert shapes["body.0.b2.conv2.0.weight"] == (8, 8, 3, 3)
    assert shapes["body.0.b2.bottom11_dw.0.weight"] == (32, 1, 5, 5)
    assert shapes["tail.tail_k5.weight_v"] == (48, 32, 5, 5) and "tail.tail_k7.weight_v" not in shapes
    torch.save(sd, tmp_path / "x4.pt")
    model = cfin.peers.load(name, tmp_path / "x4.pt", 4)
    torch.testing.assert_close(model.head[0].parametrizations.weight.original0, sd["head.0.weight_g"])


def test_without_tail_the_output_is_bicubic():
    """The global skip is the bicubically upsampled input: the network converts [0, 255] to its
    trained [0, 1] and back consistently (a zero tail leaves exactly F.interpolate's bicubic)."""
    model = cfin.peers.build("maffsrn", 4).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("tail.tail_k") and ("original0" in name or name.endswith("bias")):
                p.zero_()
        x = torch.rand(1, 3, 13, 15) * 255
        torch.testing.assert_close(model(x), F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False),
                                   rtol=1e-5, atol=1e-3)  # 255 x float32 rounding of the [0, 1] round trip


def test_channel_shuffle_interleaves_the_two_halves():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_input_too_small_for_the_attention_pool():
    model = cfin.peers.build("maffsrn", 4)
    with pytest.raises(CFINError, match=r"at least 13 x 13 pixels.*got \(12, 20\)"):
        model(torch.rand(1, 3, 12, 20))
    assert model(torch.rand(1, 3, 13, 13)).shape == (1, 3, 52, 52)
