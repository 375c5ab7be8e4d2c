"""`cfin evaluate` and the evaluation library: bicubic rows, JSON shape, self-ensemble, tiling, errors."""
import json

import numpy as np
import pytest

import cfin
import torch
from torch import nn

from cfin.cli import main
from cfin.data import BenchmarkSet, write_png
from cfin.device import resolve_device
from cfin.errors import CFINError
from cfin.evaluate import bicubic_upsampler, evaluate_model, forward_tiled, self_ensemble
from cfin.imresize import imresize, modcrop
from cfin.metrics import psnr, ssim
from numerics import SCORE_ATOL, assert_within, check, float64_noise, noise_bound, ulps


def _smooth(h, w, seed):
    """A smooth random picture, so that SR metrics are in a realistic range."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 8 + 1, w // 8 + 1, 3))
    return np.clip(imresize(small, output_shape=(h, w)), 0, 255).round().astype(np.uint8)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CFIN_CACHE_DIR", str(tmp_path / "cache"))
    for name, sizes in {"Tiny": [(50, 45), (40, 64)], "Other": [(36, 36)]}.items():
        hr = tmp_path / "data" / "benchmark" / name / "HR"
        hr.mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            write_png(hr / f"img{i}.png", _smooth(h, w, i))
    return tmp_path / "data"


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bicubic_cli_json(data_root, capsys):
    code, out, _ = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", "--data-root", str(data_root),
                        "--datasets", "Tiny", "Other", "--json", "--per-image", "--device", "cpu")
    assert code == 0
    res = json.loads(out)
    assert list(res) == ["Tiny", "Other"]
    assert res["Tiny"]["images"] == 2 and res["Other"]["images"] == 1
    assert [r["name"] for r in res["Tiny"]["per_image"]] == ["img0", "img1"]
    hr = modcrop(_smooth(50, 45, 0), 2)
    sr = imresize(imresize(hr, 0.5), 2)
    assert res["Tiny"]["per_image"][0]["psnr"] == pytest.approx(psnr(sr, hr, 2), abs=1e-9)
    assert res["Tiny"]["per_image"][0]["ssim"] == pytest.approx(ssim(sr, hr, 2), abs=1e-9)
    assert res["Tiny"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in res["Tiny"]["per_image"]]))
    assert 20 < res["Other"]["psnr"] < 60 and 0.5 < res["Other"]["ssim"] <= 1


def test_default_datasets_name_the_paper_benchmarks_missing(data_root, capsys):
    """Without --datasets, the paper's benchmarks found are evaluated and those not found are named."""
    for name in ("Set5", "B100"):
        hr = data_root / "benchmark" / name / "HR"
        hr.mkdir(parents=True)
        write_png(hr / "img0.png", _smooth(36, 36, 0))
    code, out, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", "--data-root", str(data_root),
                          "--json")
    assert code == 0 and list(json.loads(out)) == ["Set5", "B100"]
    assert err.splitlines()[0] == (f"cfin evaluate: note: Set14, Urban100, Manga109 not found under {data_root} "
                                   f"(expected {data_root / 'benchmark'}/<name>/HR); evaluating Set5, B100 of the "
                                   f"paper's 5 benchmarks")
    code, _, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", "--data-root", str(data_root),
                        "--datasets", "Set5")
    assert code == 0 and "note" not in err  # chosen: nothing to say


def test_bicubic_cli_table_and_saved_images(data_root, tmp_path, capsys):
    code, out, _ = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "3", "--data-root", str(data_root),
                        "--save-images", str(tmp_path / "sr"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("bicubic, x3")
    assert [line.split()[0] for line in lines[2:]] == ["Other", "Tiny"]  # every dataset found
    assert (tmp_path / "sr" / "Tiny" / "img1_x3.png").is_file()


class Equivariant(nn.Module):
    """Nearest x2 upsampling after a D4-symmetric 3x3 blur: commutes with flips and transposes."""

    def __init__(self):
        super().__init__()
        k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        self.register_buffer("k", k.expand(3, 1, 3, 3).clone())

    def forward(self, x):
        return nn.functional.interpolate(nn.functional.conv2d(x, self.k, padding=1, groups=3), scale_factor=2)


class LocalSR(nn.Module):
    """Two random 3x3 convs (receptive field 5) and a pixel shuffle: exact under tiling with overlap >= 2."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1))
        self.up = nn.PixelShuffle(2)

    def forward(self, x):
        return self.up(self.body(x / 255)) * 40 + nn.functional.interpolate(x, scale_factor=2)


def test_self_ensemble_of_equivariant_model_changes_nothing(data_root):
    data = [BenchmarkSet(data_root, "Tiny", 2)]
    plain = evaluate_model(Equivariant(), 2, data, progress=False, device="cpu")
    plus = evaluate_model(Equivariant(), 2, data, self_ensemble=True, progress=False, device="cpu")
    # integer images and dyadic weights: every sum is exact in float32, in any order
    assert plus["Tiny"]["psnr"] == pytest.approx(plain["Tiny"]["psnr"], abs=1e-6)
    x = torch.rand(1, 3, 9, 13) * 255
    want, noise = Equivariant()(x), float64_noise(Equivariant(), x)
    # the same sums in another order for each transform (float32 noise here)
    assert_within("self-ensemble of an equivariant model", self_ensemble(Equivariant(), x), want,
                  noise_bound(ulps(want), noise), noise)
    # a non-equivariant function is averaged over the 8 transforms
    shift = self_ensemble(lambda z: torch.roll(z, 1, dims=-1), x)
    assert shift.shape == x.shape and not torch.allclose(shift, x)


def test_self_ensemble_averages_all_eight_transforms():
    """A one-pixel cyclic shift along W, seen through the 8 flips/transposes and mapped back, is a
    shift by +1 or -1 along W (the 4 transforms without transpose, half of them flipping W) or
    along H (the 4 with it): each of the 4 neighbour shifts twice, so the ensemble is their mean."""
    x = torch.rand(1, 3, 9, 13, dtype=torch.float64) * 255
    want = sum(torch.roll(x, s, dims=d) for s in (1, -1) for d in (-1, -2)) / 4
    torch.testing.assert_close(self_ensemble(lambda z: torch.roll(z, 1, dims=-1), x), want, rtol=0, atol=1e-12)
    # the model is called on the 8 distinct transforms of a generic image, once each
    seen = []
    self_ensemble(lambda z: seen.append(z.clone()) or z, x)
    distinct = {tuple(s.flatten().tolist()) for s in seen}
    assert len(seen) == 8 and len(distinct) == 8


def test_scores_are_the_mean_over_images_of_hand_derived_values():
    """Flat grey images: HR 100, SR v, so Y differs by (v - 100) x 219 / 255 everywhere; PSNR is
    20 log10(255 / that) and SSIM its luminance term (2 y_sr y_hr + C1) / (y_sr^2 + y_hr^2 + C1),
    Y = 16 + 219 v / 255, C1 = (0.01 x 255)^2. The dataset's score is their mean (not the median)."""
    from cfin.data import ArrayPair, ImageSet

    values = (101, 102, 108)
    pairs = [ArrayPair(f"v{v}", np.full((32, 32, 3), 100, np.uint8), 2, np.full((16, 16, 3), v, np.uint8))
             for v in values]
    res = evaluate_model(lambda x: nn.functional.interpolate(x, scale_factor=2), 2, [ImageSet("Flat", pairs, 2)],
                         progress=False, device="cpu", per_image=True)["Flat"]

    def y(v):
        return 16 + 219 * v / 255
    c1 = (0.01 * 255) ** 2
    want_psnr = [20 * np.log10(255 / ((v - 100) * 219 / 255)) for v in values]
    want_ssim = [(2 * y(v) * y(100) + c1) / (y(v) ** 2 + y(100) ** 2 + c1) for v in values]
    assert [r["psnr"] for r in res["per_image"]] == pytest.approx(want_psnr, abs=1e-9)
    assert [r["ssim"] for r in res["per_image"]] == pytest.approx(want_ssim, abs=1e-12)
    assert (res["psnr"], res["ssim"], res["images"]) == (pytest.approx(np.mean(want_psnr), abs=1e-9),
                                                         pytest.approx(np.mean(want_ssim), abs=1e-12), 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_output_is_an_error_naming_the_image(bad):
    """A diverged or damaged network's NaN/inf output would be clipped to some uint8 image and
    scored as if it were one: it is an error naming the image instead."""
    from cfin.data import ArrayPair, ImageSet

    pairs = [ArrayPair(n, np.full((32, 32, 3), 100, np.uint8), 2, np.full((16, 16, 3), 101, np.uint8))
             for n in ("fine", "broken")]

    def model(x):
        y = nn.functional.interpolate(x, scale_factor=2)
        if (x == 101).all() and model.calls:
            y[0, 1, 3, 4] = bad
        model.calls += 1
        return y
    model.calls = 0
    with pytest.raises(cfin.CFINError, match=r"Flat/broken: the network's output has 1 non-finite value \(NaN or "
                                             r"inf\) of 3,072"):
        evaluate_model(model, 2, [ImageSet("Flat", pairs, 2)], progress=False, device="cpu")


def test_tiling_matches_whole_image(data_root):
    model = LocalSR()
    x = torch.rand(1, 3, 37, 29) * 255
    with torch.no_grad():
        whole = model(x)
        tiled = forward_tiled(model, x, 2, tile=8, overlap=3)
        tight = forward_tiled(model, x, 2, tile=8, overlap=2)  # the receptive field's radius: still exact
        short = forward_tiled(model, x, 2, tile=8, overlap=1)
    # exact but for float32 rounding: a tile's convolutions may take other kernels than the image's
    with torch.no_grad():
        noise = float64_noise(model, x)
    for got in (tiled, tight):
        assert_within("tiled vs whole image", got, whole, noise_bound(ulps(whole), noise), noise)
    assert (whole - short).abs().max() > 1.0  # too little overlap: whole levels off at the seams
    data = [BenchmarkSet(data_root, "Tiny", 2)]
    a = evaluate_model(model, 2, data, progress=False, device="cpu")
    b = evaluate_model(model, 2, data, tile=16, tile_overlap=4, progress=False, device="cpu")
    for metric in ("psnr", "ssim"):
        check(f"tiled vs whole image: {metric}", abs(a["Tiny"][metric] - b["Tiny"][metric]), SCORE_ATOL[metric])
    assert (b["Tiny"]["tile"], b["Tiny"]["tile_overlap"]) == (16, 4) and "tile" not in a["Tiny"]


def test_tiling_cfin_is_approximate():
    """CFIN's attention and pooling are global: a tile sees less than the image, whatever the overlap
    short of the whole image (why the output labels tiled scores)."""
    import cfin

    torch.manual_seed(0)
    model = cfin.CFIN(cfin.preset("tiny", scale=2, mask_eval="argmax")).eval()
    x = torch.rand(1, 3, 20, 28) * 255
    with torch.no_grad():
        whole = model(x)
        assert torch.equal(forward_tiled(model, x, 2, tile=12, overlap=28), whole)
        assert (forward_tiled(model, x, 2, tile=12, overlap=4) - whole).abs().max() > 1e-2


def test_tf32_mode_sets_the_cuda_flags_and_restores_them():
    from cfin.device import tf32_mode

    flags = lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)  # noqa: E731
    before = flags()
    for on in (False, True):
        with tf32_mode(torch.device("cuda"), on):
            assert flags() == (on, on)
        assert flags() == before
    with tf32_mode(torch.device("cpu"), not before[1]):  # no TF32 off CUDA: left alone
        assert flags() == before


def test_an_image_too_small_to_score_is_named(data_root, capsys):
    small = data_root / "benchmark" / "Small" / "HR"
    small.mkdir(parents=True)
    write_png(small / "big.png", _smooth(40, 40, 0))
    write_png(small / "tiny.png", _smooth(18, 30, 1))  # 16x28 at x4: under 19 = 11 + 2 x 4
    code, _, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "4", "--data-root", str(data_root),
                        "--datasets", "Small")
    assert code == 2 and "Small/HR: 1 image(s) too small to score at x4 (at least 19x19" in err  # from the headers
    with pytest.raises(CFINError, match=r"Small/tiny is 16x28 \(after modcrop\) and cannot be scored.*19x19"):
        evaluate_model(bicubic_upsampler(4), 4, [BenchmarkSet(data_root, "Small", 4)], progress=False, device="cpu")
    with pytest.raises(CFINError, match=r"1 image\(s\) too small to score at x4 .*19x19.*: tiny.png \(18x30\)"):
        BenchmarkSet(data_root, "Small", 4).check_sizes(19)
    BenchmarkSet(data_root, "Small", 2).check_sizes(15)  # 18x30 at x2 scores


def test_evaluate_model_leaves_caller_rng_alone(data_root):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    evaluate_model(bicubic_upsampler(2), 2, [BenchmarkSet(data_root, "Other", 2)], progress=False, device="cpu")
    assert torch.equal(torch.rand(3), before)


def test_checkpoint_cli(data_root, tmp_path, capsys):
    import cfin

    path = tmp_path / "tiny.pt"
    cfin.save(cfin.CFIN(cfin.preset("tiny", scale=2)), path)
    code, out, _ = _cli(capsys, "evaluate", "--model", str(path), "--data-root", str(data_root),
                        "--datasets", "Other", "--json", "--tile", "24")
    assert code == 0 and json.loads(out)["Other"]["images"] == 1 and json.loads(out)["Other"]["tile"] == 24
    code, out, _ = _cli(capsys, "evaluate", "--model", str(path), "--data-root", str(data_root),
                        "--datasets", "Other", "--tile", "24")
    assert code == 0 and "tiled: 24x24 LR tiles" in out and "not comparable with whole-image scores" in out
    code, _, err = _cli(capsys, "evaluate", "--model", str(path), "--scale", "4", "--data-root", str(data_root))
    assert code == 2 and "x2 model" in err


@pytest.mark.numerics
def test_checkpoint_cli_on_the_fast_path(data_root, tmp_path, capsys):
    """--impl fast: the same network (same weights, same Gumbel draws per image) by the fast
    path, so the same scores; the text output says which path ran."""
    import cfin

    path = tmp_path / "tiny.pt"
    cfin.save(cfin.CFIN(cfin.preset("tiny", scale=2)), path)
    argv = ["evaluate", "--model", str(path), "--data-root", str(data_root), "--datasets", "Other"]
    scores = []
    for impl in ("faithful", "fast"):
        code, out, _ = _cli(capsys, *argv, "--json", "--impl", impl)
        assert code == 0
        scores.append(json.loads(out)["Other"])
    for metric in ("psnr", "ssim"):
        check(f"fast vs faithful: {metric}", abs(scores[1][metric] - scores[0][metric]), SCORE_ATOL[metric])
    code, out, _ = _cli(capsys, *argv, "--impl", "fast")
    assert code == 0 and "(fast path)" in out.splitlines()[0]
    assert cfin.load(path, impl="fast").config.cgm_impl == "conv" and cfin.load(path).config.cgm_impl == "unfold"
    code, _, err = _cli(capsys, *argv, "--impl", "turbo")
    assert code == 2 and err.count("\n") == 1 and "implementation 'turbo'" in err and "valid: faithful, fast" in err


@pytest.mark.parametrize("argv, message", [
    (["--data-root", "{root}/missing"], "does not exist"),
    (["--data-root", "{root}", "--datasets", "Set5"], "'Set5' not found"),
    (["--datasets", "Set5"], "needs --data-root"),
    (["--data-root", "{root}", "--device", "tpu"], "valid forms: cpu, cuda, cuda:N"),
    (["--data-root", "{root}", "--tile", "0"], "--tile must be >= 1"),
    (["--data-root", "{root}", "--tile-overlap", "8"], "--tile-overlap 8 given without --tile"),
    (["--data-root", "{root}", "--impl", "turbo"], "unknown implementation 'turbo'; valid: faithful, fast"),
])
def test_cli_errors_are_one_line(data_root, capsys, argv, message):
    argv = [a.format(root=data_root) for a in argv]
    code, out, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("cfin evaluate: error:") and message in err


def test_cli_names_an_image_too_small_to_score_before_any_work(data_root, capsys, monkeypatch):
    """An image too small to score is named from the files' headers, as run_all.py does, not after
    every image before it has been upscaled (it was met after the forward of that image)."""
    write_png(data_root / "benchmark" / "Tiny" / "HR" / "zz.png", _smooth(12, 40, 9))
    monkeypatch.setattr("cfin.evaluate.evaluate_model", lambda *a, **k: pytest.fail("evaluated"))
    code, out, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", "--data-root", str(data_root),
                          "--datasets", "Tiny")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "too small to score at x2 (at least 15x15 after cropping to a multiple of 2): zz.png (12x40)" in err, err


def test_cli_model_errors(data_root, capsys):
    code, _, err = _cli(capsys, "evaluate", "--model", "bicubic", "--data-root", str(data_root))
    assert code == 2 and "needs --scale" in err
    code, _, err = _cli(capsys, "evaluate", "--model", str(data_root / "nope.pt"), "--data-root", str(data_root))
    assert code == 2 and "checkpoint not found" in err


@pytest.mark.parametrize("scale", ["0", "-2", "1"])
def test_cli_bicubic_scale_must_be_at_least_2(data_root, capsys, scale):
    code, out, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", scale, "--data-root", str(data_root))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.strip() == f"cfin evaluate: error: --scale {scale}: the upscaling factor must be an integer >= 2"


@pytest.mark.parametrize("seed", ["99999999999999999999", "-1", str(2**63)])
def test_cli_seed_out_of_range(data_root, capsys, seed):
    code, out, err = _cli(capsys, "evaluate", "--model", "bicubic", "--scale", "2", "--data-root", str(data_root),
                          "--seed", seed)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"--seed takes an integer from 0 to 2**63 - 1 = {2**63 - 1}, got {seed}" in err


def test_cli_folders_and_bad_checkpoints_are_named(data_root, tmp_path, capsys):
    folder = tmp_path / "weights"
    folder.mkdir()
    for option, what in (("--official", "--official state_dict"), ("--model", "--model checkpoint")):
        code, _, err = _cli(capsys, "evaluate", option, str(folder), "--scale", "4", "--data-root", str(data_root))
        assert code == 2 and err.strip() == f"cfin evaluate: error: {what} {folder} is a folder, expected a .pt file"
    bad = tmp_path / "bad.pt"
    torch.save({"format": "cfin-bench/1", "state_dict": {}}, bad)
    code, _, err = _cli(capsys, "evaluate", "--model", str(bad), "--data-root", str(data_root))
    assert code == 2 and err.count("\n") == 1 and f"checkpoint {bad} has no 'config' entry" in err


def test_cli_official_scale_is_2_3_or_4(shared, data_root, capsys):
    official = shared / "reference" / "official_x4_random_state_dict.pt"
    for scale in ("1", "5"):
        code, _, err = _cli(capsys, "evaluate", "--official", str(official), "--scale", scale,
                            "--data-root", str(data_root))
        assert code == 2 and err.strip() == f"cfin evaluate: error: --scale {scale}: valid scales 2, 3, 4"


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CFINError, match="valid forms"):
        resolve_device("cuda:x")
    if not torch.cuda.is_available():
        with pytest.raises(CFINError, match="CUDA is not available"):
            resolve_device("cuda:0")


@pytest.mark.numerics
def test_official_cli_is_reproducible(shared, data_root, capsys):
    """The official model's Gumbel masks are random; the per-image seed makes runs repeatable."""
    argv = ["evaluate", "--official", str(shared / "reference" / "official_x2_random_state_dict.pt"),
            "--scale", "2", "--data-root", str(data_root), "--datasets", "Other", "--json"]
    code, first, _ = _cli(capsys, *argv)
    assert code == 0
    code, second, _ = _cli(capsys, *argv)
    assert code == 0 and json.loads(first) == json.loads(second)
    code, fast, _ = _cli(capsys, *argv, "--impl", "fast")
    assert code == 0
    check("fast vs faithful: psnr", abs(json.loads(fast)["Other"]["psnr"] - json.loads(first)["Other"]["psnr"]),
          SCORE_ATOL["psnr"])
    code, _, err = _cli(capsys, *argv[:3], "--data-root", str(data_root))
    assert code == 2 and "--official needs --scale" in err


def test_evaluate_restores_training_mode(data_root):
    model = LocalSR().train()
    evaluate_model(model, 2, [BenchmarkSet(data_root, "Other", 2)], progress=False, device="cpu")
    assert model.training
