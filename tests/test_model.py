"""Every preset: shapes for odd sizes, gradients everywhere, no NaN, the official parameter count."""
import dataclasses

import pytest
import torch

import cfin
from cfin.checkpoint import save_checkpoint
from cfin.config import CFINConfig
from cfin.errors import CFINError

USED = {"x2": 3_359_522, "x3": 3_369_408, "x4": 3_382_410}  # REFERENCE.md, "params used in forward"


@pytest.mark.parametrize("name", ["x2", "x3", "x4", "tiny"])
def test_preset_forward_backward(name):
    torch.manual_seed(0)
    cfg = cfin.preset(name)
    model = cfin.CFIN(cfg).train()
    x = torch.rand(2, 3, 9, 11) * 255 if name != "tiny" else torch.rand(2, 3, 17, 23) * 255
    y = model(x)
    s = cfg.scale
    assert y.shape == (2, 3, s * x.shape[2], s * x.shape[3])
    assert torch.isfinite(y).all()
    y.mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad[:5]}"


@pytest.mark.parametrize("name", ["x2", "x3", "x4"])
def test_parameter_count_matches_official_used(name):
    # the mean shifts are trainable convs, as in the official code, and are included
    assert sum(p.numel() for p in cfin.CFIN(cfin.preset(name)).parameters()) == USED[name]


def test_odd_size_eval_17x23():
    model = cfin.CFIN(cfin.preset("x3", mask_eval="argmax")).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 17, 23) * 255).shape == (1, 3, 51, 69)


def test_per_scale_differences():
    x2, x3, x4 = (cfin.preset(s) for s in (2, 3, 4))
    assert x2.deconv_feats == 72 and x3.deconv_feats == x4.deconv_feats == 64
    assert x2.expand_weight_norm and not x3.expand_weight_norm and not x4.expand_weight_norm
    assert x3.heads == (8, 12, 8, 12, 8, 12, 8, 12) and x2.heads == x4.heads == (8, 12, 16, 12, 8, 12, 16, 12)


def test_mask_eval_argmax_is_deterministic_and_sample_is_not():
    torch.manual_seed(0)
    model = cfin.CFIN(cfin.preset("tiny")).eval()
    x = torch.rand(1, 3, 12, 12) * 255
    with torch.no_grad():
        a, b = model(x), model(x)
    assert (a - b).abs().max() > 0  # the official behaviour: a fresh Gumbel sample each call
    torch.manual_seed(5)
    with torch.no_grad():
        c = model(x)
    torch.manual_seed(5)
    with torch.no_grad():
        d = model(x)
    torch.testing.assert_close(c, d)  # ... reproducible under torch.manual_seed
    det = cfin.CFIN(dataclasses.replace(model.config, mask_eval="argmax")).eval()
    det.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(det(x), det(x))


@pytest.mark.parametrize("field,value,match", [
    ("scale", 5, "unknown scale 5; valid: 2, 3, 4"),
    ("mask", "topk", "unknown mask 'topk'; valid: gumbel, softmax, maxpool, none"),
    ("mask_eval", "mean", "valid: sample, argmax"),
    ("conv_block", "resblock", "valid: ciam, rcab"),
    ("token_mixer", "mlp", "valid: cgm, linear, gconv"),
    ("heads", (7, 12), "dim = 144 must be divisible"),
    ("heads", (8, 12, 16), "multiple of loop"),
    ("n_feats", 0, "n_feats must be a positive int"),
])
def test_config_validation(field, value, match):
    with pytest.raises(CFINError, match=match):
        cfin.preset("x4", **{field: value})


def test_config_unknown_fields_and_presets(tmp_path):
    with pytest.raises(CFINError, match=r"unknown config field\(s\) \['n_feat'\]; valid fields:"):
        cfin.preset("x4", n_feat=64)
    with pytest.raises(CFINError, match="unknown preset 'x8'; valid: x2, x3, x4, tiny"):
        cfin.preset("x8")
    p = tmp_path / "c.json"
    p.write_text('{"scale": 4, "mask": "none"}')
    assert CFINConfig.from_json(p) == CFINConfig(scale=4, mask="none")
    p.write_text("{not json")
    with pytest.raises(CFINError, match="not valid JSON"):
        CFINConfig.from_json(p)


def test_checkpoint_roundtrip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = cfin.CFIN(cfin.preset("tiny", mask_eval="argmax"))
    path = save_checkpoint(model, tmp_path / "m.pt", note="test")
    back = cfin.load(path)
    assert back.config == model.config and back.metadata["note"] == "test" and not back.training
    x = torch.rand(1, 3, 8, 8) * 255
    with torch.no_grad():
        torch.testing.assert_close(back(x), model.eval()(x))
    torch.save({"format": "cfin-bench/1", "config": {"scale": 9}, "state_dict": {}, "metadata": {}}, tmp_path / "b.pt")
    with pytest.raises(CFINError, match="unknown scale 9"):
        cfin.load(tmp_path / "b.pt")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CFINError, match="not a cfin-bench/1 checkpoint"):
        cfin.load(tmp_path / "plain.pt")
    sd = {k: v for k, v in model.state_dict().items() if k != "head.bias"}
    torch.save({"format": "cfin-bench/1", "config": model.config.to_dict(), "state_dict": sd, "metadata": {}},
               tmp_path / "c.pt")
    with pytest.raises(CFINError, match="missing 1 key.*'head.bias'"):
        cfin.load(tmp_path / "c.pt")


def test_cli_summary_and_errors(capsys):
    from cfin.cli import main

    assert main(["summary", "--scale", "4", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "3,382,410" in out and "body" in out
    assert main(["summary", "--preset", "x9"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cfin summary: error: unknown preset 'x9'; valid: x2, x3, x4, tiny"
