"""AWSRN-M (cfin.peers.awsrn): the public checkpoint layout loads, and the pixel range round-trips."""
from __future__ import annotations

import re

import torch

import cfin.peers
from cfin.peers.common import RGB_MEAN_DIV2K


def public_layout(sd: dict) -> dict:
    """Our state_dict under ``torch.nn.utils.weight_norm``'s key names (``weight_g`` / ``weight_v``)."""
    return {re.sub(r"\.parametrizations\.weight\.original([01])$",
                   lambda m: ".weight_g" if m[1] == "0" else ".weight_v", k): v for k, v in sd.items()}


def test_public_keys_load_strictly(tmp_path):
    """Facts of ChaofWang/AWSRN's code/src/model/awsrn.py (--n_resblocks 3) at x4, saved in its key
    layout, load through the spec's key_map into the same tensors."""
    torch.manual_seed(0)
    sd = public_layout(cfin.peers.build("awsrn-m", 4).state_dict())
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["head.0.weight_v"] == (32, 3, 3, 3) and shapes["head.0.weight_g"] == (32, 1, 1, 1)
    assert shapes["body.2.b3.body.0.weight_v"] == (128, 32, 3, 3)
    assert shapes["body.2.reduction.weight_v"] == (32, 128, 3, 3)
    assert shapes["body.0.b1.res_scale.scale"] == shapes["tail.scale_k9.scale"] == (1,)
    assert shapes["tail.tail_k9.weight_v"] == (48, 32, 9, 9) and shapes["skip.0.weight_v"] == (48, 3, 3, 3)
    assert not any("body.3." in k for k in sd)  # AWSRN-M: 3 LFBs
    torch.save(sd, tmp_path / "awsrn_m_x4.pt")
    model = cfin.peers.load("awsrn-m", tmp_path / "awsrn_m_x4.pt", 4)
    torch.testing.assert_close(model.tail.tail_k5.parametrizations.weight.original1, sd["tail.tail_k5.weight_v"])


def test_without_tail_and_skip_the_output_is_the_mean():
    """The input is normalised ((x - 255 mean) / 127.5) and the output denormalised: with the tail's
    and the skip's weight-norm gains and biases at zero, every pixel is the DIV2K mean x 255."""
    model = cfin.peers.build("awsrn-m", 2).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("tail.tail_k", "skip.0.")) and ("original0" in name or name.endswith("bias")):
                p.zero_()
        out = model(torch.rand(1, 3, 9, 11) * 255)
    want = torch.tensor(RGB_MEAN_DIV2K).view(1, 3, 1, 1) * 255
    torch.testing.assert_close(out, want.expand(1, 3, 18, 22))
