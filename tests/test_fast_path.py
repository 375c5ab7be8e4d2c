"""The fast path computes the faithful path's function (issue 7).

Every implementation switch of ``CFINConfig`` (and all of them at once, ``IMPLS["fast"]``)
must give the faithful outputs within 1e-3 on the 0-255 scale and the faithful gradients
within a relative 1e-4, at odd sizes and batch > 1, for x2, x3, x4 and the tiny preset,
or within ``NOISE_FACTOR`` x the faithful path's own float32 error on that input (against
float64) where that is larger (``tests/numerics.py``); and the official golden outputs must
still come out of the fast path.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from cfin.config import COMPUTE_FIELDS, IMPLS, preset
from cfin.errors import CFINError
from cfin.models import CFIN
from cfin.models.cgm import modulated_conv
from cfin.models.ciam import CIAM
from numerics import (GOLDEN_ATOL, GRAD_RTOL, OUT_ATOL, assert_within, check, faithful_noise, float64_noise,
                      noise_bound, ulps)

FAITHFUL = IMPLS["faithful"]
# each switch alone, then all of the fast path together
SWITCHES = {
    "cgm_conv": dict(cgm_impl="conv"),
    "ciam_1x1": dict(ciam_branch_impl="1x1"),
    "fused_attention": dict(fused_attention=True),
    # at these sizes "auto" takes the direct form of every CGA (the Gram form costs more)
    "fused_attention_gram": dict(fused_attention=True, cga_gram="always"),
    "fused_conv_stage": dict(fused_conv_stage=True),
    "fused_tail": dict(fused_tail=True),
    "channels_last": dict(channels_last=True),
    "fast": IMPLS["fast"],
    "fast_gram": dict(IMPLS["fast"], cga_gram="always"),
    "fast+checkpoint": dict(IMPLS["fast"], grad_checkpoint=True),
}
# OUT_ATOL (outputs, 0-255 scale) and GRAD_RTOL (gradients, relative to the norm of all faithful
# gradients together): the project's equality targets (cfin.bench.spec), floors of the bounds here.

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.numerics]


def faithful(name: str, seed: int = 0, **changes) -> CFIN:
    """The faithful CFIN of preset ``name`` with the weights drawn from ``seed``."""
    torch.manual_seed(seed)
    return CFIN(preset(name, **FAITHFUL, **changes))


def pair(name: str, switch: dict, seed: int = 0, **changes):
    """(faithful, switched) CFINs with identical weights."""
    ref = faithful(name, seed, **changes)
    other = CFIN(preset(name, **FAITHFUL, **changes).replace(**switch))
    other.load_state_dict(ref.state_dict())
    return ref, other


def lr_batch(batch: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255


def train_pass(model: CFIN, x: torch.Tensor, seed: int = 2) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Output and parameter gradients of an L1 loss in training mode (Gumbel masks drawn from ``seed``)."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = model(x)
    F.l1_loss(out, torch.full_like(out, 128.0)).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def grads(model: CFIN, x: torch.Tensor, seed: int = 2) -> dict[str, torch.Tensor]:
    """Parameter gradients of an L1 loss in training mode (Gumbel masks drawn from ``seed``)."""
    return train_pass(model, x, seed)[1]


def output_noise(name: str, x: torch.Tensor, mask_seed: int | None = None, **changes) -> float:
    """The faithful CFIN's float32 error (``tests/numerics.py``) on ``x`` in eval mode, once per
    session for each preset, input and mask seed; ``x`` comes from :func:`lr_batch`."""
    def one_pass(dtype):
        model = faithful(name, **changes).to(dtype).eval()
        if mask_seed is not None:
            torch.manual_seed(mask_seed)
        with torch.no_grad():
            return model(x.to(dtype)), None
    key = ("eval", name, tuple(x.shape), float(x.sum()), mask_seed, tuple(sorted(changes.items())))
    return faithful_noise(key, one_pass)["max_abs_diff"]


def grad_noise(name: str, x: torch.Tensor, seed: int = 2, **changes) -> float:
    """The faithful CFIN's float32 error on the gradients of :func:`train_pass` (relative, as
    :func:`assert_grads_close` measures them), once per session for each preset and input."""
    def one_pass(dtype):
        out, g = train_pass(faithful(name, **changes).to(dtype), x.to(dtype), seed)
        return out, list(g.values())
    key = ("train", name, tuple(x.shape), float(x.sum()), seed, tuple(sorted(changes.items())))
    return faithful_noise(key, one_pass)["grad_rel_diff"]


def assert_grads_close(ref: dict, got: dict, noise: float = 0.0):
    """All gradients within GRAD_RTOL of the faithful ones, relative to the whole gradient's
    norm, or within NOISE_FACTOR x the faithful path's own float32 error ``noise`` where that is
    larger.

    Per parameter, float32 rounding alone moves some small gradients by more than 1e-4 of
    their own norm (the faithful path against float64: up to 1.5e-3 on a CGM's W in the
    tiny preset), so the tolerance is on the concatenated gradient.
    """
    assert ref.keys() == got.keys()
    diff = torch.sqrt(sum((got[n] - g).double().square().sum() for n, g in ref.items()))
    scale = torch.sqrt(sum(g.double().square().sum() for g in ref.values()))
    check("fast vs faithful: gradients, relative", diff / scale, noise_bound(GRAD_RTOL, noise), noise)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
@pytest.mark.parametrize("batch", [1, 2])   # one image runs channels-last, a batch NCHW
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_matches_faithful(scale, batch, switch):
    x = lr_batch(batch, 9, 11)
    noise = output_noise(f"x{scale}", x, mask_eval="argmax")
    ref, fast = pair(f"x{scale}", switch, mask_eval="argmax")
    with torch.no_grad():
        expected, got = ref.eval()(x), fast.eval()(x)
    assert got.shape == (batch, 3, 9 * scale, 11 * scale)
    assert got.is_contiguous()
    assert_within("fast vs faithful: outputs", got, expected, noise_bound(OUT_ATOL, noise), noise)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
def test_sampled_masks_match_under_the_same_seed(switch):
    """Official eval mode draws a Gumbel sample: the same seed gives the same draws on both paths."""
    x = lr_batch(1, 13, 7)
    noise = output_noise("tiny", x, mask_seed=5)
    ref, fast = pair("tiny", switch)
    outs = []
    for m in (ref.eval(), fast.eval()):
        torch.manual_seed(5)
        with torch.no_grad():
            outs.append(m(x))
    assert_within("fast vs faithful: outputs, sampled masks", outs[1], outs[0], noise_bound(OUT_ATOL, noise), noise)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", ["tiny", "x4"])
def test_gradients_match_faithful(name, batch, switch):
    """Gradients with the softmax mask: the official hard Gumbel mask is a step function of
    its logits, so where a sampled logit lands within float rounding of a tie, any
    reordering of a sum can flip one pixel's mask and its straight-through gradient (x4,
    batch 1, seed 2 here: a relative 2.5e-4). The switches do not touch the mask."""
    x = lr_batch(batch, 9, 11)
    noise = grad_noise(name, x, mask="softmax")
    ref, fast = pair(name, switch, mask="softmax")
    assert_grads_close(grads(ref, x), grads(fast, x), noise)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
def test_gradients_with_gumbel_masks(switch):
    x = lr_batch(2, 9, 11)
    noise = grad_noise("tiny", x)
    ref, fast = pair("tiny", switch)
    assert_grads_close(grads(ref, x), grads(fast, x), noise)


def test_checkpoint_recomputes_the_same_masks():
    """grad_checkpoint reruns each CT block in backward; its Gumbel draws must repeat exactly."""
    ref, ckpt = pair("tiny", dict(grad_checkpoint=True))
    x = lr_batch(3, 8, 8)
    g_ref, g_ckpt = grads(ref, x), grads(ckpt, x)
    # exact: the non-reentrant checkpoint recomputes each block by the same kernels on the same
    # values, with the RNG state restored, and backward walks the same graph in the same order
    assert g_ref.keys() == g_ckpt.keys()
    assert all(torch.equal(g_ckpt[name], g) for name, g in g_ref.items())


def test_checkpoint_is_inactive_without_grad(monkeypatch):
    """Without gradients there is nothing to recompute: in training mode under no_grad the CT blocks
    run without torch.utils.checkpoint and give the faithful outputs; with gradients each block is
    checkpointed (which shows the spy sees the calls)."""
    import cfin.models.cfin as cfin_module

    calls = []
    real = cfin_module.checkpoint
    monkeypatch.setattr(cfin_module, "checkpoint", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    ref, ckpt = pair("tiny", dict(grad_checkpoint=True), mask_eval="argmax")
    x = lr_batch(1, 8, 8)
    with torch.no_grad():
        torch.manual_seed(3)
        out = ckpt.train()(x)
        torch.manual_seed(3)
        expected = ref.train()(x)
    assert calls == []
    assert torch.equal(out, expected)  # exact: without gradients both run the same ops on the same values
    ckpt(x)
    assert len(calls) == ckpt.config.num_blocks


@pytest.mark.parametrize("switch", [IMPLS["fast"], dict(IMPLS["fast"], grad_checkpoint=True)])
def test_state_dict_keys_and_shapes_unchanged(switch):
    ref, fast = pair("x4", switch)
    a, b = ref.state_dict(), fast.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)


def test_compute_fields_are_the_switches_that_keep_the_function():
    """What a resumed run compares (CFINConfig.network) leaves out exactly the computation's switches."""
    assert set().union(*IMPLS.values()) | {"cga_gram", "grad_checkpoint"} == set(COMPUTE_FIELDS)
    cfg = preset(4)
    assert cfg.network() == cfg.with_impl("fast").replace(cga_gram="never", grad_checkpoint=True).network()
    assert cfg.network() != cfg.replace(mask_eval="argmax").network()
    assert not set(cfg.network()) & set(COMPUTE_FIELDS)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_modulated_conv_conv_equals_unfold(k, batch, channels_last):
    gen = torch.Generator().manual_seed(k * 10 + batch)
    x = torch.randn(batch, 16, 7, 9, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    kernel = torch.randn(batch, 24, 16, k, k, generator=gen)
    noise = float64_noise(lambda *t: modulated_conv(*t, "unfold"), x, kernel)
    want = modulated_conv(x, kernel, "unfold")
    assert_within("conv vs unfold modulated conv", modulated_conv(x, kernel, "conv"), want,
                  noise_bound(ulps(want), noise), noise)
    with pytest.raises(ValueError, match="valid: unfold, conv"):
        modulated_conv(x, kernel, "einsum")


def test_per_sample_pointwise_is_the_grouped_conv_forward_and_backward():
    """The batched-matmul form the CUDA path takes for a batch at k = 1 (run here on the CPU)."""
    from cfin.models.cgm import per_sample_pointwise

    gen = torch.Generator().manual_seed(12)
    x = torch.randn(3, 16, 7, 9, generator=gen, requires_grad=True)
    kernel = torch.randn(3, 24, 16, 1, 1, generator=gen, requires_grad=True)
    weights = torch.randn(3, 24, 7, 9, generator=gen)

    def forward_backward(form, x, kernel):
        y = form(x, kernel)
        return (y, *torch.autograd.grad((y * weights.to(y.dtype)).sum(), (x, kernel)))

    def unfold(x, kernel):
        return forward_backward(lambda x, k: modulated_conv(x, k, "unfold"), x, kernel)

    noises = float64_noise(unfold, x, kernel)
    for got, expected, noise in zip(forward_backward(per_sample_pointwise, x, kernel), unfold(x, kernel), noises):
        assert_within("per-sample pointwise vs unfold (and gradients)", got, expected,
                      noise_bound(ulps(expected), noise), noise)


@pytest.mark.parametrize("size", [(1, 1), (5, 8), (9, 11)])
def test_ciam_branch_1x1_is_the_deconv_branch(size):
    torch.manual_seed(3)
    official = CIAM(8, 12, mask_eval="argmax")
    rewrite = CIAM(8, 12, mask_eval="argmax", branch_impl="1x1")
    rewrite.load_state_dict(official.state_dict())
    x = torch.randn(2, 8, *size, requires_grad=True)

    def branch_and_grads(ciam, x):
        if x.dtype == torch.float64:
            ciam = copy.deepcopy(ciam).double()
        a = ciam._branch(x)
        return (a, *torch.autograd.grad(a.square().sum(), [x, ciam.up.weight, ciam.up.bias, ciam.down.weight]))

    a, *ga = branch_and_grads(official, x)
    b, *gb = branch_and_grads(rewrite, x)
    noises = float64_noise(lambda x: branch_and_grads(official, x), x)
    for got, want, noise in zip((b, *gb), (a, *ga), noises):
        assert_within("CIAM branch: 1x1 convs vs deconv (and gradients)", got, want,
                      noise_bound(ulps(want), noise), noise)
    dead = torch.ones(2, 2, dtype=torch.bool)
    dead[0, 0] = False  # the three taps down never reads get no gradient on either path
    assert ga[1][:, :, dead].abs().max() == 0 and gb[1][:, :, dead].abs().max() == 0


def test_fast_path_reproduces_official_golden_outputs(shared, request):
    import cfin

    for scale in (2, 3, 4):
        io = torch.load(shared / "reference" / f"official_x{scale}_io.pt", weights_only=True)
        path = shared / "reference" / f"official_x{scale}_random_state_dict.pt"
        model = cfin.load_official(path, scale, mask_eval="argmax", **IMPLS["fast"])
        with torch.no_grad():
            assert_within("golden outputs", model(io["lr"]), io["sr_mask_argmax"], GOLDEN_ATOL)
    request.getfixturevalue("mt19937_exponential")  # the Gumbel samples below: skipped on torch < 2.7
    for scale in (2, 3, 4):
        io = torch.load(shared / "reference" / f"official_x{scale}_io.pt", weights_only=True)
        path = shared / "reference" / f"official_x{scale}_random_state_dict.pt"
        model = cfin.load_official(path, scale, mask_eval="sample", **IMPLS["fast"])
        torch.manual_seed(1234)
        with torch.no_grad():
            assert_within("golden outputs", model(io["lr"]), io["sr_mask_gumbel_seed1234"], GOLDEN_ATOL)


def test_config_validation_of_the_switches():
    with pytest.raises(CFINError, match="ciam_branch_impl.*valid: deconv, 1x1"):
        preset("tiny", ciam_branch_impl="tap00")
    for field in ("fused_attention", "channels_last", "grad_checkpoint"):
        with pytest.raises(CFINError, match=f"{field} must be True or False"):
            preset("tiny", **{field: "yes"})
    with pytest.raises(CFINError, match="cga_gram 'sometimes'.*valid: auto, always, never"):
        preset("tiny", cga_gram="sometimes")
    with pytest.raises(CFINError, match="implementation 'turbo'.*valid: faithful, fast"):
        preset("tiny").with_impl("turbo")
    assert preset("x4").with_impl("fast").replace(**FAITHFUL) == preset("x4")


@pytest.mark.parametrize("gram", ["always", "never", "auto"])  # auto: the first Gram, the second direct
@pytest.mark.parametrize("kernels", [(1, 1), (1, 3), (3, 1)])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_cga_pair_matches_faithful(kernels, batch, channels_last, gram):
    """Both CGAs of a CFGT, fused (Gram matrices where the CGM is 1x1 and ``gram`` takes them,
    keys handed over as a map) against the official computation: outputs, the keys and values
    each CGA returns (also when eq. (17)'s second CGA is asked for them), and gradients."""
    from cfin.models.cfgt import CGA
    from cfin.models.gram import gram_saving

    torch.manual_seed(kernels[0] * 7 + kernels[1])
    dim, heads = 16, 4
    assert gram_saving(7 * 9, dim, dim // heads, "alone") > 0 > gram_saving(7 * 9, dim, dim // heads, "second")
    ref = [CGA(dim, heads, k, impl="unfold") for k in kernels]
    fused = [CGA(dim, heads, k, impl="conv", fused=True, gram=gram) for k in kernels]
    for r, f in zip(ref, fused):
        f.load_state_dict(r.state_dict())
    x = torch.randn(batch, dim, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    n = torch.randn(batch, dim, 7, 9)

    def run(cgas, x, n=n):
        x = x.detach().clone().requires_grad_(True)
        out1, k1, v1 = cgas[0](x)
        x2 = x + out1 + n
        out2, k2, v2 = cgas[1](x2, k1, v1)
        k1 = k1.materialise("unfold") if hasattr(k1, "materialise") else k1
        v1 = v1.materialise("unfold") if hasattr(v1, "materialise") else v1
        as_map = [t.reshape(batch, dim, 7, 9) for t in (out1, k1, v1, out2, k2, v2)]
        (out2.square().sum() + out1.sum()).backward()
        return as_map, x.grad

    (expected, grad_ref), (got, grad_got) = run(ref, x), run(fused, x)
    exact = run([copy.deepcopy(r).double() for r in ref], x.double(), n.double())
    for a, b, c in zip((*expected, grad_ref), (*got, grad_got), (*exact[0], exact[1])):
        noise = float((a.detach().double() - c.detach()).abs().max())
        assert_within("fused CGA pair vs official (outputs, keys, values, gradient)", b, a,
                      noise_bound(ulps(a), noise), noise)


def counted_macs(fn) -> int:
    """Multiply-adds of the convolutions and matmuls ``fn`` dispatches, op by op."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from cfin.complexity.breakdown import op_kind

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            Count.total += op_kind(func, args, kwargs or {}, out)[1] or 0
            return out

    with torch.no_grad(), Count():
        fn()
    return Count.total


@pytest.mark.parametrize("role", ["alone", "second", "pair", "keys"])
@pytest.mark.parametrize("dim, heads, size", [(16, 4, (3, 5)), (16, 4, (20, 20)), (144, 12, (3, 5)),
                                              (144, 12, (33, 31))])
def test_gram_saving_is_the_counted_multiply_adds(role, dim, heads, size):
    """``gram_saving``, the rule of ``cga_gram="auto"``, is exactly what the direct form
    dispatches beyond the Gram form (or short of it), for each role a CGA can have."""
    from cfin.models.cfgt import CGA
    from cfin.models.gram import gram_saving

    torch.manual_seed(0)
    x = torch.randn(1, dim, *size)

    def macs(form: str) -> int:
        first = CGA(dim, heads, 1, impl="conv", fused=True, gram=form)
        second = CGA(dim, heads, 3 if role == "keys" else 1, impl="conv", fused=True, gram=form)
        if role == "alone":
            return counted_macs(lambda: first(x))
        if role == "second":  # given the keys of a first CGA in the Gram form, as a map
            _, k1, v1 = CGA(dim, heads, 1, impl="conv", fused=True, gram="always")(x)
            return counted_macs(lambda: second(x, k1, v1, return_kv=False))
        return counted_macs(lambda: second(x, *first(x)[1:], return_kv=False))

    assert macs("never") - macs("always") == gram_saving(size[0] * size[1], dim, dim // heads, role)


def test_auto_takes_the_gram_form_where_it_saves_multiply_adds(monkeypatch):
    """In the x4 network each CFGT's first CGA hands its keys to a second that can take the
    Gram form ("pair"); at 32 x 32 (1,024 pixels) that pays for the CFGTs of 8 and 12 heads
    and not for those of 16 (d = 9), and at 9 x 11 for none."""
    from cfin.models.cfgt import CFGT, CGA
    from cfin.models.gram import gram_saving

    taken = []
    gram_form = CGA._forward_gram

    def spy(self, *args, **kwargs):
        taken.append(self)
        return gram_form(self, *args, **kwargs)
    monkeypatch.setattr(CGA, "_forward_gram", spy)
    model = CFIN(preset("x4", mask_eval="argmax", **IMPLS["fast"])).eval()
    cfgts = [m for m in model.modules() if isinstance(m, CFGT)]
    assert {(c.cga1.role, c.cga2.role) for c in cfgts} == {("pair", "second")}
    pays = [c for c in cfgts if gram_saving(32 * 32, 144, 144 // c.cga1.heads, "pair") > 0]
    assert 0 < len(pays) < len(cfgts)
    with torch.no_grad():
        model(lr_batch(1, 32, 32))
    assert sorted(map(id, taken)) == sorted(id(cga) for c in pays for cga in (c.cga1, c.cga2))
    taken.clear()
    with torch.no_grad():
        model(lr_batch(1, 9, 11))
    assert taken == []


def test_cfgt_roles_follow_who_reads_the_keys():
    from cfin.models.cfgt import CFGT, CGA

    cfgts = {(kernels, share): CFGT(16, 4, kernels, share, fused=True)
             for kernels in ((1, 1), (1, 3)) for share in (True, False)}
    roles = {key: (c.cga1.role, c.cga2.role) for key, c in cfgts.items()}
    assert roles == {((1, 1), True): ("pair", "second"), ((1, 3), True): ("keys", "second"),
                     ((1, 1), False): ("alone", "alone"), ((1, 3), False): ("alone", "alone")}
    with pytest.raises(ValueError, match="valid: auto, always, never"):
        CGA(16, 4, gram="often")


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("with_grad", [False, True], ids=["no_grad", "grad"])
def test_gram_is_the_pixel_sum_of_outer_products(layout, batch, with_grad):
    from cfin.models.gram import gram

    gen = torch.Generator().manual_seed(batch)
    a, b = torch.randn(batch, 12, 5, 7, generator=gen), torch.randn(batch, 8, 5, 7, generator=gen)
    if layout == "channels_last":
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
    weights = torch.randn(batch, 12, 8, generator=gen)

    def with_gradients(form, a, b):
        """The Gram matrix and, with_grad, the gradients of a weighted sum of it."""
        a, b = a.detach().requires_grad_(with_grad), b.detach().requires_grad_(with_grad)
        y = form(a, b)
        return (y, *torch.autograd.grad((y * weights.to(y.dtype)).sum(), (a, b))) if with_grad else (y,)

    def einsum(a, b):
        return with_gradients(lambda a, b: torch.einsum("bchw,bdhw->bcd", a, b), a, b)

    exact, noises = einsum(a.double(), b.double()), float64_noise(einsum, a, b)
    for got, want, noise in zip(with_gradients(gram, a, b), exact, noises):
        # against the exact sums, within a bound from einsum's own float32 error
        assert_within("Gram matrix (and gradients) vs exact", got, want.float(), noise_bound(ulps(want), noise),
                      noise)


def test_gram_under_bf16_autocast_takes_mixed_operands():
    """``cfin bench --amp bf16``: a bf16 conv output against a float32 map (eq. 17's ``[x2; x1]``)."""
    from cfin.models.gram import gram

    gen = torch.Generator().manual_seed(5)
    a, b = (torch.randn(1, 16, 9, 11, generator=gen).contiguous(memory_format=torch.channels_last) for _ in range(2))
    expected = torch.einsum("bchw,bdhw->bcd", a.double(), b.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gram(a.bfloat16(), b)
    assert got.dtype == torch.bfloat16
    # bf16 keeps 8 significant bits: each operand's rounding moves a product by up to 2^-8 of
    # itself, the result's by 2^-9 of values up to ~40 (0.08); 0.5 + 2% is several times that
    # in any summation order, and far below what a wrong operand would move (values of ~10)
    torch.testing.assert_close(got.double(), expected, atol=0.5, rtol=0.02)


def test_gram_of_a_tensor_with_itself():
    """The fast path's commonest call, ``gram(x, x)`` (one tensor as both operands), channels-last."""
    from cfin.models.gram import gram

    x = torch.randn(1, 16, 9, 11, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=torch.channels_last)

    def einsum(x):
        return torch.einsum("bchw,bdhw->bcd", x, x)

    expected, noise = einsum(x.double()).float(), float64_noise(einsum, x)
    assert_within("Gram matrix (and gradients) vs exact", gram(x, x), expected, noise_bound(ulps(expected), noise),
                  noise)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_hard_gumbel_sample_is_gumbel_softmax_forward(layout):
    """The fused eval-mode mask consumes the same random draws as F.gumbel_softmax and gives
    its forward value: the one-hot of the same argmax (ones exact, where the straight-through
    form leaves them off by a rounding error)."""
    from cfin.models.ciam import hard_gumbel_sample

    logits = torch.randn(2, 3, 17, 23, generator=torch.Generator().manual_seed(4))
    if layout == "channels_last":
        logits = logits.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(9)
    expected = F.gumbel_softmax(logits, tau=1.0, hard=True, dim=1)[:, 1:2]
    after_official = torch.rand(1)
    torch.manual_seed(9)
    got = hard_gumbel_sample(logits)
    assert torch.equal(torch.rand(1), after_official)  # the generator advanced alike
    # the straight-through form's ones are 1 - s + s for a softmax value s in (0, 1): within one
    # rounding of 1 (6e-8) on any CPU; 1e-6 is far below a wrong pixel's 1
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert set(got.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("act", ["relu", "gelu", "leaky_relu"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_conv_act_post_op_is_conv_then_activation(act, k, layout):
    """The oneDNN post-op (taken without gradients) and the plain ops (with them) agree."""
    from cfin.models.postops import activation, conv_act, fusable

    gen = torch.Generator().manual_seed(k)
    x = torch.randn(1, 16, 9, 11, generator=gen) * 4
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(24, 16, k, k, generator=gen), torch.randn(24, generator=gen)

    def plain(x, w, b):
        return activation(F.conv2d(x, w, b, padding=k // 2), act, 0.05)

    expected, noise = plain(x, w, b), float64_noise(plain, x, w, b)
    with torch.no_grad():
        got = conv_act(x, w, b, act, 0.05)
    assert_within("conv + activation: oneDNN post-op vs plain ops", got, expected,
                  noise_bound(ulps(expected), noise), noise)
    assert got.is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
    w.requires_grad_(True)
    assert not fusable(x, w)  # a gradient to take: the plain ops, which autograd can follow
    conv_act(x, w, b, act, 0.05).sum().backward()
    assert w.grad is not None
    with pytest.raises(ValueError, match="valid: relu, gelu, leaky_relu"):
        conv_act(x, w, b, "swish")


@pytest.mark.parametrize("size", [(1, 1), (2, 5), (7, 7), (180, 320), (13, 8)])
@pytest.mark.parametrize("k", [1, 3])
def test_separable_max_pool_is_adaptive_max_pool(size, k):
    """The CGM's context pooling as the fast path runs it on CUDA, here on the CPU."""
    from cfin.models.cgm import _bins, context_pool, separable_max_pool

    x = torch.randn(2, 4, *size, generator=torch.Generator().manual_seed(0))
    want = F.adaptive_max_pool2d(x, k)
    assert torch.equal(separable_max_pool(x, k), want)
    assert torch.equal(separable_max_pool(x.contiguous(memory_format=torch.channels_last), k), want)
    bins = _bins(size[1], k)
    assert bins[0][0] == 0 and bins[-1][1] == size[1] and all(lo < hi for lo, hi in bins)
    assert torch.equal(context_pool(x, k, "conv"), want)  # on the CPU: ATen's own
