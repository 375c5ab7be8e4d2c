"""LAPAR-A (cfin.peers.lapar): the public code's keys (old-style weight_norm's weight_g / weight_v,
the dictionary buffer decom_conv.weight) load strictly through the spec's key_map; the output is
Eq. 4's per-pixel assembly of the dictionary's filters on the bicubic image; the filter
dictionary file is read as a numpy array and nothing else."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cfin.peers
from cfin.errors import CFINError
from cfin.peers.lapar import load_filter_dictionary


def _public_layout(model):
    rename = {".parametrizations.weight.original0": ".weight_g", ".parametrizations.weight.original1": ".weight_v"}
    sd = {}
    for key, value in model.state_dict().items():
        for ours, theirs in rename.items():
            key = key.replace(ours, theirs)
        sd[key] = value.clone()
    return sd


def test_public_keys_load_strictly_with_the_dictionary(tmp_path):
    torch.manual_seed(0)
    model = cfin.peers.build("lapar-a", 2)
    sd = _public_layout(model)
    assert "w_conv.head.0.weight_g" in sd and sd["decom_conv.weight"].shape == (72, 1, 5, 5)
    sd["decom_conv.weight"] = torch.rand(72, 1, 5, 5)
    torch.save(sd, tmp_path / "LAPAR_A_x2.pth")
    loaded = cfin.peers.load("lapar-a", tmp_path / "LAPAR_A_x2.pth", 2)
    assert torch.equal(loaded.decom_conv.weight, sd["decom_conv.weight"])
    assert torch.equal(loaded.w_conv.head[0].parametrizations.weight.original1, sd["w_conv.head.0.weight_v"])


def test_output_is_the_pixel_adaptive_assembly(one_thread):
    """Same float32 ops in another grouping (per image and channel): equal to 1e-4 on [0, 255]
    outputs (float32 sums of 72 products, each < 1e3, a few ulps of 255 apart)."""
    torch.manual_seed(1)
    model = cfin.peers.build("lapar-a", 3).eval()
    with torch.no_grad():
        model.decom_conv.weight.copy_(torch.rand(72, 1, 5, 5) / 25)
    x = torch.rand(2, 3, 6, 5) * 255
    with torch.no_grad():
        out = model(x)
        lr = x / 255
        bic = F.pad(F.interpolate(lr, scale_factor=3, mode="bicubic", align_corners=False), (2, 2, 2, 2),
                    mode="reflect")
        weights = model.w_conv(lr)  # B x 72 x 18 x 15
        for b in range(2):
            for c in range(3):
                components = F.conv2d(bic[b, c][None, None], model.decom_conv.weight)[0]  # 72 x 18 x 15
                expected = (weights[b] * components).sum(0) * 255
                torch.testing.assert_close(out[b, c], expected, atol=1e-4, rtol=0)


def test_filter_dictionary_file(tmp_path):
    array = np.random.default_rng(0).standard_normal((1, 72, 25))  # the layout of kernel_72_k5.pkl
    (tmp_path / "kernel.pkl").write_bytes(pickle.dumps(array))
    d = load_filter_dictionary(tmp_path / "kernel.pkl")
    assert d.shape == (72, 1, 5, 5) and d.dtype == torch.float32
    assert torch.equal(d.flatten(), torch.from_numpy(array.astype(np.float32)).flatten())
    (tmp_path / "small.pkl").write_bytes(pickle.dumps(array[:, :24]))
    with pytest.raises(CFINError, match=r"expected 72 filters of 5 x 5 \(1800 values\), got \(1, 24, 25\)"):
        load_filter_dictionary(tmp_path / "small.pkl")
    (tmp_path / "code.pkl").write_bytes(pickle.dumps(print))
    with pytest.raises(CFINError, match=r"not a pickled numpy array.*builtins.print"):
        load_filter_dictionary(tmp_path / "code.pkl")
