"""IDN (cfin.peers.idn): the reconstruction block is Caffe's 17 x 17 transposed conv (pad 8) on
every HR row and column from s - 1 on, where the authors' test script puts it; a state_dict
with the Caffe layer names loads strictly through the spec's key_map."""
import pytest
import torch
import torch.nn.functional as F

import cfin.peers
from cfin.peers.idn import RBlock


@pytest.mark.parametrize("scale", (2, 3, 4))
def test_rblock_is_caffes_deconv_from_row_s_minus_1(scale, one_thread):
    """Same float32 products summed in the same kernel on both sides, one extra zero row and column
    of input only: equal to float32 rounding (1e-5 on outputs of order 1 bounds a few ulps)."""
    torch.manual_seed(scale)
    block = RBlock(scale, width=8)
    x = torch.randn(1, 8, 5, 7)
    ours = block(x)
    caffe = F.conv_transpose2d(x, block.deconv.weight, block.deconv.bias, stride=scale, padding=8)
    assert ours.shape == (1, 1, 5 * scale, 7 * scale)
    assert caffe.shape == (1, 1, 4 * scale + 1, 6 * scale + 1)  # (H - 1) s + 1: Caffe's output
    torch.testing.assert_close(ours[..., scale - 1:, scale - 1:], caffe, atol=1e-5, rtol=0)


def test_caffe_layer_names_load_strictly(tmp_path):
    with torch.device("meta"):
        model = cfin.peers.build("idn", 4)
    caffe_names = {"fblock.conv1": "conv1", "fblock.conv2": "conv2", "rblock.deconv": "upsample"}
    for i in range(4):
        caffe_names[f"dblocks.{i}.compression"] = f"down{i + 1}"
        caffe_names.update({f"dblocks.{i}.enhancement.conv{j}": f"conv{i + 3}_{j}" for j in range(1, 7)})
    sd = {}
    for key, value in model.state_dict().items():
        layer, blob = key.rsplit(".", 1)
        sd[f"{caffe_names[layer]}.{blob}"] = torch.full(value.shape, 0.5)
    assert len(sd) == 62  # 31 Caffe layers, weight and bias each
    torch.save(sd, tmp_path / "idn_caffe.pth")
    loaded = cfin.peers.load("idn", tmp_path / "idn_caffe.pth", 4)
    assert all(torch.equal(p, torch.full(p.shape, 0.5)) for p in loaded.parameters())
