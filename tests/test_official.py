"""Golden faithfulness: our CFIN with the official weights gives the official outputs
(within ``GOLDEN_ATOL``, ``tests/numerics.py``)."""
import pytest
import torch

import cfin
from cfin.errors import CFINError
from cfin.official import convert_official, official_key, read_state_dict
from numerics import GOLDEN_ATOL, assert_within

SCALES = (2, 3, 4)
REGISTERED = {2: 6_032_164, 3: 6_042_050, 4: 6_055_052}  # REFERENCE.md
USED = {2: 3_359_522, 3: 3_369_408, 4: 3_382_410}


def _fixture(shared, s):
    ref = shared / "reference"
    return ref / f"official_x{s}_random_state_dict.pt", torch.load(ref / f"official_x{s}_io.pt", weights_only=True)


@pytest.mark.numerics
@pytest.mark.parametrize("s", SCALES)
def test_golden_argmax(shared, s):
    sd_path, io = _fixture(shared, s)
    model = cfin.load_official(sd_path, s, mask_eval="argmax")
    with torch.no_grad():
        out = model(io["lr"])
    assert_within("golden outputs", out, io["sr_mask_argmax"], GOLDEN_ATOL)


@pytest.mark.numerics
@pytest.mark.parametrize("s", SCALES)
def test_golden_gumbel_sample(shared, s, mt19937_exponential):
    sd_path, io = _fixture(shared, s)
    model = cfin.load_official(sd_path, s)  # default mask_eval="sample", the official behaviour
    assert model.config.mask_eval == "sample" and not model.training
    torch.manual_seed(1234)
    with torch.no_grad():
        out = model(io["lr"])
    assert_within("golden outputs", out, io["sr_mask_gumbel_seed1234"], GOLDEN_ATOL)
    # stochastic unless the seed is fixed: another draw flips mask pixels, which moves outputs
    # by whole levels, so it lies outside the golden bound
    with torch.no_grad():
        again = model(io["lr"])
    assert (again - io["sr_mask_gumbel_seed1234"]).abs().max() > GOLDEN_ATOL


@pytest.mark.parametrize("s", SCALES)
def test_unused_official_parameters_are_dropped(shared, s):
    sd_path, _ = _fixture(shared, s)
    sd = read_state_dict(sd_path)
    assert sum(v.numel() for v in sd.values()) == REGISTERED[s]
    conv = convert_official(sd, cfin.preset(s), source=str(sd_path))
    assert sum(v.numel() for v in conv.state_dict.values()) == USED[s]
    assert conv.dropped_params == REGISTERED[s] - USED[s]
    # every CGM loses weight/bias/bias_conv (3 x 4 CGMs x 8 CFGTs), plus the outer scalars
    assert len(conv.dropped) == 3 * 4 * 8 + 2


def test_key_map_examples():
    assert official_key("conv_trans_2.cnn_block.rb_search1.k3.k.0.weight_v") == \
        "body.convs.0.rifu1.conv1.parametrizations.weight.original1"
    assert official_key("conv_trans_2.cnn_block.trans_block7.attn1.to_qkv.weight_conv") == \
        "body.cfgts.7.cga2.qkv.weight"
    assert official_key("conv_trans_2.cnn_block.trans_block.attn.to_qkv.weight") is None
    assert official_key("conv_trans_2.cnn_block.rb_search4.k1.2.bias") == "body.convs.3.down.bias"


def test_wrong_scale(shared):
    sd_path, _ = _fixture(shared, 4)
    with pytest.raises(CFINError, match="x4 checkpoint, but scale 2"):
        cfin.load_official(sd_path, 2)


def _save(tmp_path, obj, name="bad.pt"):
    p = tmp_path / name
    torch.save(obj, p)
    return p


def test_missing_unexpected_misshaped_keys(shared, tmp_path):
    sd = read_state_dict(_fixture(shared, 4)[0])
    missing = dict(sd)
    del missing["conv_after_body.weight"]
    with pytest.raises(CFINError, match="missing 1 key.*body_conv.weight"):
        cfin.load_official(_save(tmp_path, missing), 4)
    extra = dict(sd, **{"conv_trans_2.cnn_block.bogus.weight": torch.zeros(1)})
    with pytest.raises(CFINError, match="unexpected key 'conv_trans_2.cnn_block.bogus.weight'"):
        cfin.load_official(_save(tmp_path, extra), 4)
    shaped = dict(sd, **{"conv_first_cnn.weight": torch.zeros(48, 3, 5, 5)})
    with pytest.raises(CFINError, match=r"'conv_first_cnn.weight'.*\(48, 3, 5, 5\).*\(48, 3, 3, 3\)"):
        cfin.load_official(_save(tmp_path, shaped), 4)


def test_truncated_and_non_checkpoint_files(shared, tmp_path):
    src = (_fixture(shared, 4)[0]).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(src[: len(src) // 2])
    with pytest.raises(CFINError, match="not a readable PyTorch state_dict"):
        cfin.load_official(truncated, 4)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CFINError, match="not a readable"):
        cfin.load_official(text, 4)
    with pytest.raises(CFINError, match="not found"):
        cfin.load_official(tmp_path / "absent.pt", 4)
    with pytest.raises(CFINError, match="does not hold a state_dict"):
        cfin.load_official(_save(tmp_path, [1, 2, 3]), 4)


@pytest.mark.numerics
def test_convert_roundtrip_cli(shared, tmp_path, capsys, exponential_is_mt19937):
    from cfin.cli import main

    sd_path, io = _fixture(shared, 3)
    out = tmp_path / "x3.pt"
    assert main(["convert", str(sd_path), "--scale", "3", "--out", str(out)]) == 0
    assert "dropped 98 official tensors" in capsys.readouterr().out
    model = cfin.load(out)
    assert model.config == cfin.preset(3) and model.metadata["converted_from"] == "official"
    if exponential_is_mt19937:  # the golden Gumbel sample needs that stream (conftest; torch >= 2.7)
        torch.manual_seed(1234)
        with torch.no_grad():
            assert_within("golden outputs", model(io["lr"]), io["sr_mask_gumbel_seed1234"], GOLDEN_ATOL)
    assert main(["convert", str(sd_path), "--scale", "4", "--out", str(out)]) == 2
    assert "x3 checkpoint, but scale 4" in capsys.readouterr().err


def _convert_error(capsys, *argv) -> str:
    from cfin.cli import main

    assert main(["convert", *map(str, argv)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("cfin convert: error: ")
    return err.strip().removeprefix("cfin convert: error: ")


def test_convert_refuses_to_overwrite_its_input(shared, tmp_path, capsys, monkeypatch):
    src = tmp_path / "model_best_x4.pt"
    src.write_bytes((_fixture(shared, 4)[0]).read_bytes())
    before = src.read_bytes()
    (tmp_path / "link.pt").symlink_to(src)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for out in (src, "model_best_x4.pt", "sub/../model_best_x4.pt", "link.pt"):
        assert _convert_error(capsys, "model_best_x4.pt", "--scale", "4", "--out", out) == \
            f"--out {out} is the input file model_best_x4.pt: writing there would overwrite the official " \
            f"checkpoint; give another --out path"
    assert src.read_bytes() == before


def test_convert_names_a_bad_scale_and_a_folder(shared, tmp_path, capsys):
    sd_path = _fixture(shared, 4)[0]
    for scale in (5, 1):
        assert _convert_error(capsys, sd_path, "--scale", scale, "--out", tmp_path / "o.pt") == \
            f"--scale {scale}: valid scales 2, 3, 4"
    assert _convert_error(capsys, tmp_path, "--scale", 4, "--out", tmp_path / "o.pt") == \
        f"official state_dict {tmp_path} is a folder, expected a .pt file"
    assert not (tmp_path / "o.pt").exists()
    with pytest.raises(CFINError, match="unknown scale 5; valid: 2, 3, 4"):
        cfin.load_official(sd_path, 5)
