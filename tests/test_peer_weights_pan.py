"""PAN's released checkpoints (../shared/reference/peers/PANx{2,3,4}_DF2K.pth, zhaohengyuan1/PAN)
load strictly into cfin.peers' PAN; a file that does not fit is one error naming the first bad key
(and the scale or method it fits); with the x4 weights, Set5 x4 scores Table IX's printed PSNR and
what PAN's own test log records."""
import pytest
import torch

import cfin.peers
from peer_files import set5_scores, tampered
from cfin.errors import CFINError

SCALES = (2, 3, 4)


def _released(shared, scale, name="pan"):
    return shared / "reference" / "peers" / cfin.peers.spec(name).weights[scale]


@pytest.mark.parametrize("scale", SCALES)
def test_every_released_checkpoint_loads_strictly(shared, scale):
    path = _released(shared, scale)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    model = cfin.peers.load("pan", path, scale)
    assert not model.training and model.scale == scale
    ours = model.state_dict()
    assert sorted(ours) == sorted(raw)
    assert all(torch.equal(ours[k], v) for k, v in raw.items())
    assert ("upconv2.weight" in raw) == (scale == 4)  # x4 reconstructs in two U-PA stages


def test_x2_and_x3_checkpoints_have_the_same_shapes(shared):
    """Nothing in a file tells x2 from x3 (the U-PA upsampling factor is not a parameter): the x2
    file loads at x3. Which scale a PAN file is for is only in its name."""
    x2 = cfin.peers.read_state_dict(_released(shared, 2))
    assert cfin.peers.load("pan", _released(shared, 2), 3).scale == 3
    assert {k: v.shape for k, v in x2.items()} == {k: v.shape for k, v in
                                                   cfin.peers.read_state_dict(_released(shared, 3)).items()}


def _tampered(shared, tmp_path, change):
    return tampered(_released(shared, 4), tmp_path, change)


def test_a_renamed_key_is_named(shared, tmp_path):
    path = _tampered(shared, tmp_path, lambda sd: sd.__setitem__("att1.conv1.weight", sd.pop("att1.conv.weight")))
    with pytest.raises(CFINError, match=r"does not fit PAN x4 \(missing 1 key\(s\), first 'att1.conv.weight'\)"):
        cfin.peers.load("pan", path, 4)


def test_a_reshaped_tensor_is_named(shared, tmp_path):
    key = "SCPA_trunk.0.PAConv.k3.weight"
    path = _tampered(shared, tmp_path, lambda sd: sd.__setitem__(key, sd[key][:, :, :1, :1]))
    with pytest.raises(CFINError, match=rf"key '{key}' has shape \(20, 20, 1, 1\), expected \(20, 20, 3, 3\)"):
        cfin.peers.load("pan", path, 4)


def test_another_scales_checkpoint_names_its_scale(shared):
    with pytest.raises(CFINError, match=r"does not fit PAN x2 \(unexpected 6 key\(s\), first 'upconv2.weight'\).*"
                                        r"looks like an x4 PAN checkpoint: use --scale 4"):
        cfin.peers.load("pan", _released(shared, 4), 2)


def test_another_methods_checkpoint_names_the_method(shared):
    with pytest.raises(CFINError, match=r"does not fit PAN x4 .*looks like the x4 checkpoint of IMDN \(--model imdn\)"):
        cfin.peers.load("pan", _released(shared, 4, "imdn"), 4)


def test_set5_x4_scores_the_printed_psnr_and_pans_test_log(shared, one_thread):
    """Table IX prints 32.13 dB; PAN's results/PANx4_DF2K/test_PANx4_DF2Ktrain_200912-232209.log
    records the Set5 mean at 32.131149 dB / 0.894811 (Y channel, border 4). Measured here 32.131141 /
    0.8948106 (each image within 4e-5 dB of the log), in about 4 s on one thread. The bounds hold on
    any x86 CPU: the printed PSNR is rounded (0.005 dB); PAN's scoring (mmsr's bgr2ycbcr and SSIM)
    and the suite's agree to the measured 4e-5 dB; float32 convolutions summed in another order
    (AVX2, AVX-512, AMX) flip at most a few uint8 output values, ~1e-5 dB each on Set5. A wrong
    network is off by dBs."""
    from ablations.table_09_onlyt import TABLE

    printed_psnr, _ = TABLE.row("PAN").paper.metrics["Set5"]
    got = set5_scores(shared, "pan", _released(shared, 4), 4)
    assert abs(got["psnr"] - printed_psnr) <= 0.02
    assert abs(got["psnr"] - 32.131149) <= 0.005 and abs(got["ssim"] - 0.894811) <= 0.0005
