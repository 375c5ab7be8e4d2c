"""The fast path on a CUDA device computes the faithful function (issue 7).

The CPU suite (``test_fast_path.py``) checks every switch; here the whole fast path runs on
the GPU against the faithful path on the same GPU, and against the faithful path on the
CPU, with TF32 off (PyTorch runs cuDNN convolutions in TF32 by default, which is not the
float32 function). Skipped where torch sees no CUDA device, as in CI.
"""
from __future__ import annotations

import pytest
import torch

from cfin.config import IMPLS, preset
from numerics import GOLDEN_ATOL
from test_fast_path import OUT_ATOL, assert_grads_close, grads, lr_batch
from test_fast_path import pair as switched_pair

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device: torch.cuda.is_available() is False")

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def float32_arithmetic():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def pair(name: str, **changes):
    """(faithful, fast) CFINs with identical weights, on the CPU."""
    return switched_pair(name, IMPLS["fast"], **changes)


@pytest.mark.parametrize("gram", ["auto", "always"])  # at these sizes "auto" is the direct form
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fast_on_cuda_matches_faithful_on_cuda_and_cpu(scale, batch, gram):
    ref, fast = pair(f"x{scale}", mask_eval="argmax", cga_gram=gram)
    x = lr_batch(batch, 13, 17)
    with torch.no_grad():
        on_cpu = ref.eval()(x)
        faithful = ref.to(CUDA)(x.to(CUDA))
        got = fast.to(CUDA).eval()(x.to(CUDA))
    assert got.shape == (batch, 3, 13 * scale, 17 * scale) and got.device.type == CUDA.type
    torch.testing.assert_close(got, faithful, atol=OUT_ATOL, rtol=0)
    torch.testing.assert_close(got.cpu(), on_cpu, atol=OUT_ATOL, rtol=0)


def test_sampled_masks_match_under_the_same_cuda_seed():
    ref, fast = pair("x4")
    x = lr_batch(1, 16, 24).to(CUDA)
    outs = []
    for m in (ref.to(CUDA).eval(), fast.to(CUDA).eval()):
        torch.manual_seed(5)
        with torch.no_grad():
            outs.append(m(x))
    torch.testing.assert_close(outs[1], outs[0], atol=OUT_ATOL, rtol=0)


@pytest.mark.parametrize("gram", ["auto", "always"])
@pytest.mark.parametrize("grad_checkpoint", [False, True])
@pytest.mark.parametrize("name, mask", [("x4", "softmax"), ("tiny", "gumbel")])
def test_gradients_on_cuda_match_faithful(name, mask, grad_checkpoint, gram):
    """x4 with the softmax mask: a hard Gumbel mask can flip a pixel whose sampled logits tie
    within float rounding (see ``test_fast_path.test_gradients_match_faithful``)."""
    ref, fast = switched_pair(name, dict(IMPLS["fast"], grad_checkpoint=grad_checkpoint, cga_gram=gram),
                              mask=mask)
    x = lr_batch(2, 12, 16).to(CUDA)
    assert_grads_close(grads(ref.to(CUDA), x), grads(fast.to(CUDA), x))


def test_fast_path_on_cuda_reproduces_official_golden_outputs(shared):
    """The argmax golden outputs (the sampled ones come from the CPU's random stream)."""
    import cfin

    for scale in (2, 3, 4):
        io = torch.load(shared / "reference" / f"official_x{scale}_io.pt", weights_only=True)
        path = shared / "reference" / f"official_x{scale}_random_state_dict.pt"
        model = cfin.load_official(path, scale, mask_eval="argmax", **IMPLS["fast"]).to(CUDA)
        with torch.no_grad():
            got = model(io["lr"].to(CUDA)).cpu()
        torch.testing.assert_close(got, io["sr_mask_argmax"], atol=GOLDEN_ATOL, rtol=0)


def test_bench_runs_on_cuda():
    from cfin.bench import BenchSpec, run_bench

    report = run_bench(BenchSpec(config=preset("tiny"), lr_size=(16, 16), runs=2, warmup=1, device=CUDA,
                                 amp="bf16", tf32=True, breakdown=True), progress=False)
    assert report["timing"] == "CUDA events around each call"
    breakdown = report["fast"]["breakdown"]
    assert "synchronisations" in breakdown["method"] and breakdown["ops"] > 0
    assert any(k["kind"].startswith("conv") and k["macs_per_s"] for k in breakdown["kinds"])
    assert len(report["floor"]["paired"]["macs_per_s_rounds"]) == 2 and report["fast"]["over_floor_paired"] > 0
    assert report["fast"]["equal"] and report["fast"]["peak_mb"] > 0
    assert set(report["floor"]["by_precision"]) == {"float32", "bf16", "tf32"}
    assert all(0 < e["host_issue_median_s"] and 0 < e["host_issue_share"] for e in report["paths"].values())
    assert torch.backends.cudnn.allow_tf32 is False  # the tf32 path restored the setting


def test_evaluation_and_training_compute_in_float32_unless_asked(tmp_path):
    """PyTorch runs cuDNN float32 convolutions in TF32 by default; cfin's evaluation and training
    turn that off inside (and restore it after), and ``tf32=True`` (--tf32) turns it on."""
    from cfin.data import EmbeddedSet
    from cfin.evaluate import evaluate_model
    from cfin.train import train
    from test_train import TinySR, ToyPatches, _toy_recipe

    class Probe(TinySR):
        def forward(self, x):
            self.seen.add(torch.backends.cudnn.allow_tf32)
            return super().forward(x)

    before = torch.backends.cudnn.allow_tf32
    for tf32 in (False, True):
        model = Probe()
        model.seen = set()
        train(model, _toy_recipe(iterations=2, val_images=0), ToyPatches(), tmp_path / str(tf32), device="cuda",
              progress=False, tf32=tf32)
        evaluate_model(model, 2, [EmbeddedSet(2)], device="cuda", progress=False, tf32=tf32)
        assert model.seen == {tf32}
        assert torch.backends.cudnn.allow_tf32 == before
