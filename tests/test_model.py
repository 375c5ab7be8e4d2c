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
    # ... reproducible under torch.manual_seed: exact, the same draws through the same kernels
    assert torch.equal(c, d)
    det = cfin.CFIN(dataclasses.replace(model.config, mask_eval="argmax")).eval()
    det.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(det(x), det(x))


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


@pytest.mark.parametrize("field,value,expected", [
    ("rgb_range", "x", "must be a number, got 'x' (str)"),
    ("rgb_range", None, "must be a number, got None (NoneType)"),
    ("rgb_range", float("nan"), "must be a number, got nan"),
    ("rgb_mean", ["a", "b", "c"], "must be a list of three numbers (R, G, B), got ['a', 'b', 'c']"),
    ("rgb_mean", None, "must be a list of three numbers (R, G, B), got None"),
    ("rgb_mean", [0.4, 0.4], "must be a list of three numbers"),
    ("heads", 5, "must be a non-empty list of ints (the heads of each CFGT), got 5 (int)"),
    ("heads", [8, True], "must be a non-empty list of ints"),
    ("cga_kernels", 3, "must be a list of two ints (kernel sizes), got 3 (int)"),
    ("cga_kernels", [True, 1], "must be a list of two ints"),
    ("igp_kernels", [1], "must be a list of two ints (kernel sizes), got [1]"),
    ("n_feats", True, "must be an int, got True (bool)"),
    ("loop", True, "must be an int, got True (bool)"),
    ("scale", 4.0, "must be an int, got 4.0 (float)"),
    ("num_cfgt", "2", "must be None or an int, got '2' (str)"),
    ("mask", 5, "must be one of gumbel, softmax, maxpool, none, got 5 (int)"),
    ("kv_share", 1, "must be True or False, got 1 (int)"),
])
def test_config_field_types(field, value, expected):
    """A field of the wrong type is one CFINError naming the field, the value and the type expected
    (a bool is not an int, though Python's bool is one)."""
    with pytest.raises(CFINError) as e:
        cfin.preset("x4", **{field: value})
    assert str(e.value).startswith(f"config field {field} {expected}"), str(e.value)


def test_config_numbers_of_either_kind_load(tmp_path):
    """JSON ints where floats are expected are fine; lists become tuples."""
    p = tmp_path / "c.json"
    p.write_text('{"rgb_range": 255, "rgb_mean": [0.4488, 0.4371, 0.404], "heads": [2, 4], "n_feats": 16, '
                 '"dim": 32, "deconv_feats": 16}')
    assert CFINConfig.from_json(p) == cfin.preset("tiny")


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(CFINError, match=f"^config file {tmp_path} is a folder, expected a JSON file"):
        CFINConfig.from_json(tmp_path)
    binary = tmp_path / "weights.json"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(CFINError, match=f"^config file {binary} is not a UTF-8 JSON file"):
        CFINConfig.from_json(binary)
    typed = tmp_path / "typed.json"
    typed.write_text('{"loop": true}')
    with pytest.raises(CFINError, match=f"^config file {typed}: config field loop must be an int, got True"):
        CFINConfig.from_json(typed)


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
        assert torch.equal(back(x), model.eval()(x))  # exact: the same weights through the same kernels
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
    for name, bad in (("d", {**model.state_dict(), "head.bias": torch.zeros(5)}),  # mis-shaped
                      ("e", {**model.state_dict(), "head.extra": torch.zeros(1)})):  # not ours
        torch.save({"format": "cfin-bench/1", "config": model.config.to_dict(), "state_dict": bad, "metadata": {}},
                   tmp_path / f"{name}.pt")
    width = model.state_dict()["head.bias"].shape[0]
    with pytest.raises(CFINError, match=rf"key 'head.bias' in .*d.pt has shape \(5,\), expected \({width},\)"):
        cfin.load(tmp_path / "d.pt")
    with pytest.raises(CFINError, match="unexpected key 'head.extra'"):
        cfin.load(tmp_path / "e.pt")


@pytest.mark.parametrize("entry", ["config", "state_dict"])
def test_checkpoint_without_config_or_state_dict(tmp_path, entry):
    model = cfin.CFIN(cfin.preset("tiny"))
    obj = {"format": "cfin-bench/1", "config": model.config.to_dict(), "state_dict": model.state_dict()}
    path = tmp_path / "m.pt"
    torch.save({k: v for k, v in obj.items() if k != entry}, path)
    with pytest.raises(CFINError, match=f"^cfin-bench/1 checkpoint {path} has no '{entry}' entry"):
        cfin.load(path)
    torch.save({**obj, entry: [1]}, path)
    with pytest.raises(CFINError, match=f"its '{entry}' entry is a list, expected a dict"):
        cfin.load(path)
    with pytest.raises(CFINError, match=f"^checkpoint {tmp_path} is a folder, expected a .pt file"):
        cfin.load(tmp_path)


def test_cli_summary_and_errors(capsys):
    from cfin.cli import main

    assert main(["summary", "--scale", "4", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "3,382,410" in out and "body" in out
    assert main(["summary", "--preset", "x9"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cfin summary: error: unknown preset 'x9'; valid: x2, x3, x4, tiny"


def _summary_error(capsys, *argv) -> str:
    from cfin.cli import main

    assert main(["summary", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("cfin summary: error: ")
    return err.strip().removeprefix("cfin summary: error: ")


@pytest.mark.parametrize("config,message", [
    ('{"rgb_range": "x"}', "config field rgb_range must be a number, got 'x' (str)"),
    ('{"rgb_range": null}', "config field rgb_range must be a number, got None"),
    ('{"rgb_mean": ["a", "b", "c"]}', "config field rgb_mean must be a list of three numbers"),
    ('{"rgb_mean": null}', "config field rgb_mean must be a list of three numbers"),
    ('{"heads": 5}', "config field heads must be a non-empty list of ints"),
    ('{"cga_kernels": 3}', "config field cga_kernels must be a list of two ints"),
    ('{"n_feats": true}', "config field n_feats must be an int, got True (bool)"),
    ('{"loop": true}', "config field loop must be an int, got True (bool)"),
])
def test_cli_summary_rejects_config_fields_of_the_wrong_type(tmp_path, capsys, config, message):
    path = tmp_path / "c.json"
    path.write_text(config)
    assert _summary_error(capsys, "--depth", "1", "--config", str(path)).startswith(f"config file {path}: {message}")


def test_cli_summary_rejects_unreadable_config_files(tmp_path, capsys):
    assert _summary_error(capsys, "--config", str(tmp_path)) == \
        f"config file {tmp_path} is a folder, expected a JSON file of CFINConfig fields"
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\x80\xbe\x00\xff")
    assert _summary_error(capsys, "--config", str(binary)).startswith(f"config file {binary} is not a UTF-8 JSON file")


def test_cli_summary_checks_depth_and_scale(tmp_path, capsys):
    from cfin.cli import main

    for depth in ("-1", "0"):
        assert _summary_error(capsys, "--depth", depth) == f"--depth must be at least 1, got {depth}"
    assert _summary_error(capsys, "--scale", "4", "--preset", "x2") == \
        "--scale 4 picks preset x4, but --preset x2 was given; give one of them"
    assert _summary_error(capsys, "--scale", "5") == "--scale 5: valid scales 2, 3, 4"
    assert _summary_error(capsys, "--scale", "5", "--preset", "tiny") == "--scale 5: valid scales 2, 3, 4"
    # an empty name is not "no name": it would build the default x4 in silence
    assert _summary_error(capsys, "--preset", "") == "--preset was given an empty value; give PRESET, or leave " \
                                                      "the option out"
    assert _summary_error(capsys, "--config", " ") == "--config was given an empty value; give FILE.json, or " \
                                                       "leave the option out"
    # --scale sets the scale of the tiny preset and of a config file (documented), and may repeat a preset's
    for argv in (["--scale", "2", "--preset", "tiny"], ["--scale", "3", "--preset", "x3"]):
        assert main(["summary", "--depth", "1", *argv]) == 0
        assert capsys.readouterr().out.startswith(f"CFIN x{argv[1]}: ")
    path = tmp_path / "c.json"
    path.write_text('{"scale": 4, "n_feats": 16, "dim": 32, "heads": [2, 4], "deconv_feats": 16}')
    assert main(["summary", "--depth", "1", "--scale", "2", "--config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("CFIN x2: ")


def test_the_library_names_bad_arguments_and_loads_its_submodules():
    """``cfin.CFIN(4)`` and a preset asked for another scale are CFINErrors; ``cfin.complexity``
    and ``cfin.records`` work after a plain ``import cfin`` (as the README writes them)."""
    import subprocess
    import sys

    import cfin

    with pytest.raises(cfin.CFINError, match="CFIN expects a CFINConfig .*got int 4"):
        cfin.CFIN(4)
    with pytest.raises(cfin.CFINError, match="preset x4 is the official x4 network; for scale 3 take preset x3"):
        cfin.preset("x4", scale=3)
    assert cfin.preset("tiny", scale=2).scale == 2 and cfin.preset(4, scale=4) == cfin.preset(4)
    code = ("import cfin; print(cfin.complexity.count(cfin.preset(4), convention='full').params, "
            "len(cfin.records.records_frame('nowhere')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["3382410", "0"], out.stderr


def test_save_names_what_it_cannot_write(tmp_path):
    import cfin

    with pytest.raises(cfin.CFINError, match="cfin.save writes a CFIN .*got str"):
        cfin.save("x", tmp_path / "a.pt")
    with pytest.raises(cfin.CFINError, match="checkpoint path .* is a folder; expected a file name"):
        cfin.save(cfin.CFIN(cfin.preset("tiny")), tmp_path)


def test_load_names_an_unknown_map_location_not_the_file(tmp_path):
    import cfin

    path = cfin.save(cfin.CFIN(cfin.preset("tiny")), tmp_path / "a.pt")
    with pytest.raises(cfin.CFINError, match="unknown device 'tpu'; valid forms: cpu, cuda, cuda:N"):
        cfin.load(path, map_location="tpu")
    assert cfin.load(path, map_location=torch.device("cpu")).config == cfin.preset("tiny")


@pytest.mark.parametrize("x", [torch.randint(0, 255, (1, 3, 8, 8)), torch.rand(1, 3, 0, 8), torch.rand(3, 8, 8),
                               torch.rand(1, 1, 8, 8), [1.0]], ids=["int", "empty", "3-D", "gray", "list"])
def test_forward_names_an_input_it_cannot_take(x):
    import cfin

    with pytest.raises(cfin.CFINError, match="CFIN expects a non-empty B x 3 x H x W float tensor"):
        cfin.CFIN(cfin.preset("tiny"))(x)
