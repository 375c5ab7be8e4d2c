"""The fast path computes the faithful path's function (issue 7).

Every implementation switch of ``CFINConfig`` (and all of them at once, ``IMPLS["fast"]``)
must give the faithful outputs within 1e-3 on the 0-255 scale and the faithful gradients
within a relative 1e-4, at odd sizes and batch > 1, for x2, x3, x4 and the tiny preset;
and the official golden outputs must still come out of the fast path.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cfin.config import COMPUTE_FIELDS, IMPLS, preset
from cfin.errors import CFINError
from cfin.models import CFIN
from cfin.models.cgm import modulated_conv
from cfin.models.ciam import CIAM

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
OUT_ATOL = 1e-3     # 0-255 scale
GRAD_RTOL = 1e-4    # relative to the norm of all faithful gradients together


pytestmark = pytest.mark.usefixtures("one_thread")


def pair(name: str, switch: dict, seed: int = 0, **changes):
    """(faithful, switched) CFINs with identical weights."""
    torch.manual_seed(seed)
    ref = CFIN(preset(name, **FAITHFUL, **changes))
    other = CFIN(preset(name, **FAITHFUL, **changes).replace(**switch))
    other.load_state_dict(ref.state_dict())
    return ref, other


def lr_batch(batch: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255


def grads(model: CFIN, x: torch.Tensor, seed: int = 2) -> dict[str, torch.Tensor]:
    """Parameter gradients of an L1 loss in training mode (Gumbel masks drawn from ``seed``)."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = model(x)
    F.l1_loss(out, torch.full_like(out, 128.0)).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(ref: dict, got: dict):
    """All gradients within GRAD_RTOL of the faithful ones, relative to the whole gradient's norm.

    Per parameter, float32 rounding alone moves some small gradients by more than 1e-4 of
    their own norm (the faithful path against float64: up to 1.5e-3 on a CGM's W in the
    tiny preset), so the tolerance is on the concatenated gradient.
    """
    assert ref.keys() == got.keys()
    diff = torch.sqrt(sum((got[n] - g).square().sum() for n, g in ref.items()))
    scale = torch.sqrt(sum(g.square().sum() for g in ref.values()))
    assert diff <= GRAD_RTOL * scale, f"relative gradient error {diff / scale:.3g}"


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
@pytest.mark.parametrize("batch", [1, 2])   # one image runs channels-last, a batch NCHW
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_matches_faithful(scale, batch, switch):
    ref, fast = pair(f"x{scale}", switch, mask_eval="argmax")
    x = lr_batch(batch, 9, 11)
    with torch.no_grad():
        expected, got = ref.eval()(x), fast.eval()(x)
    assert got.shape == (batch, 3, 9 * scale, 11 * scale)
    assert got.is_contiguous()
    torch.testing.assert_close(got, expected, atol=OUT_ATOL, rtol=0)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
def test_sampled_masks_match_under_the_same_seed(switch):
    """Official eval mode draws a Gumbel sample: the same seed gives the same draws on both paths."""
    ref, fast = pair("tiny", switch)
    x = lr_batch(1, 13, 7)
    outs = []
    for m in (ref.eval(), fast.eval()):
        torch.manual_seed(5)
        with torch.no_grad():
            outs.append(m(x))
    torch.testing.assert_close(outs[1], outs[0], atol=OUT_ATOL, rtol=0)


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("name", ["tiny", "x4"])
def test_gradients_match_faithful(name, batch, switch):
    """Gradients with the softmax mask: the official hard Gumbel mask is a step function of
    its logits, so where a sampled logit lands within float rounding of a tie, any
    reordering of a sum can flip one pixel's mask and its straight-through gradient (x4,
    batch 1, seed 2 here: a relative 2.5e-4). The switches do not touch the mask."""
    ref, fast = pair(name, switch, mask="softmax")
    x = lr_batch(batch, 9, 11)
    assert_grads_close(grads(ref, x), grads(fast, x))


@pytest.mark.parametrize("switch", SWITCHES.values(), ids=SWITCHES.keys())
def test_gradients_with_gumbel_masks(switch):
    ref, fast = pair("tiny", switch)
    x = lr_batch(2, 9, 11)
    assert_grads_close(grads(ref, x), grads(fast, x))


def test_checkpoint_recomputes_the_same_masks():
    """grad_checkpoint reruns each CT block in backward; its Gumbel draws must repeat exactly."""
    ref, ckpt = pair("tiny", dict(grad_checkpoint=True))
    x = lr_batch(3, 8, 8)
    g_ref, g_ckpt = grads(ref, x), grads(ckpt, x)
    for name in g_ref:
        torch.testing.assert_close(g_ckpt[name], g_ref[name], atol=0, rtol=1e-6)


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
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
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
    torch.testing.assert_close(modulated_conv(x, kernel, "conv"), modulated_conv(x, kernel, "unfold"),
                               atol=1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="valid: unfold, conv"):
        modulated_conv(x, kernel, "einsum")


def test_per_sample_pointwise_is_the_grouped_conv_forward_and_backward():
    """The batched-matmul form the CUDA path takes for a batch at k = 1 (run here on the CPU)."""
    from cfin.models.cgm import per_sample_pointwise

    gen = torch.Generator().manual_seed(12)
    x = torch.randn(3, 16, 7, 9, generator=gen, requires_grad=True)
    kernel = torch.randn(3, 24, 16, 1, 1, generator=gen, requires_grad=True)
    weights = torch.randn(3, 24, 7, 9, generator=gen)
    results = []
    for fn in (lambda: per_sample_pointwise(x, kernel), lambda: modulated_conv(x, kernel, "unfold")):
        y = fn()
        grads = torch.autograd.grad((y * weights).sum(), (x, kernel))
        results.append((y, *grads))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (5, 8), (9, 11)])
def test_ciam_branch_1x1_is_the_deconv_branch(size):
    torch.manual_seed(3)
    official = CIAM(8, 12, mask_eval="argmax")
    rewrite = CIAM(8, 12, mask_eval="argmax", branch_impl="1x1")
    rewrite.load_state_dict(official.state_dict())
    x = torch.randn(2, 8, *size, requires_grad=True)
    a, b = official._branch(x), rewrite._branch(x)
    torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)
    ga = torch.autograd.grad(a.square().sum(), [x, official.up.weight, official.up.bias, official.down.weight])
    gb = torch.autograd.grad(b.square().sum(), [x, rewrite.up.weight, rewrite.up.bias, rewrite.down.weight])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(v, u, atol=1e-5, rtol=1e-5)
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
            torch.testing.assert_close(model(io["lr"]), io["sr_mask_argmax"], atol=1e-4, rtol=0)
    request.getfixturevalue("mt19937_exponential")  # the Gumbel samples below: skipped on torch < 2.7
    for scale in (2, 3, 4):
        io = torch.load(shared / "reference" / f"official_x{scale}_io.pt", weights_only=True)
        path = shared / "reference" / f"official_x{scale}_random_state_dict.pt"
        model = cfin.load_official(path, scale, mask_eval="sample", **IMPLS["fast"])
        torch.manual_seed(1234)
        with torch.no_grad():
            torch.testing.assert_close(model(io["lr"]), io["sr_mask_gumbel_seed1234"], atol=1e-4, rtol=0)


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

    def run(cgas, x):
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
    for name, a, b in zip(("out1", "k1", "v1", "out2", "k2", "v2"), expected, got):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4, msg=lambda m: f"{name}: {m}")
    torch.testing.assert_close(grad_got, grad_ref, atol=1e-4, rtol=1e-4)


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
    a64, b64 = a.double().requires_grad_(with_grad), b.double().requires_grad_(with_grad)
    a.requires_grad_(with_grad), b.requires_grad_(with_grad)
    expected, got = torch.einsum("bchw,bdhw->bcd", a64, b64), gram(a, b)
    torch.testing.assert_close(got, expected.float(), atol=1e-5, rtol=1e-5)
    if with_grad:
        weights = torch.randn(expected.shape, generator=gen)
        (got * weights).sum().backward()
        (expected * weights.double()).sum().backward()
        torch.testing.assert_close(a.grad, a64.grad.float(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b.grad, b64.grad.float(), atol=1e-5, rtol=1e-5)


def test_gram_under_bf16_autocast_takes_mixed_operands():
    """``cfin bench --amp bf16``: a bf16 conv output against a float32 map (eq. 17's ``[x2; x1]``)."""
    from cfin.models.gram import gram

    gen = torch.Generator().manual_seed(5)
    a, b = (torch.randn(1, 16, 9, 11, generator=gen).contiguous(memory_format=torch.channels_last) for _ in range(2))
    expected = torch.einsum("bchw,bdhw->bcd", a.double(), b.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = gram(a.bfloat16(), b)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.double(), expected, atol=0.5, rtol=0.02)


def test_gram_of_a_tensor_with_itself():
    """The fast path's commonest call, ``gram(x, x)`` (one tensor as both operands), channels-last."""
    from cfin.models.gram import gram

    x = torch.randn(1, 16, 9, 11, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=torch.channels_last)
    expected = torch.einsum("bchw,bdhw->bcd", x.double(), x.double()).float()
    torch.testing.assert_close(gram(x, x), expected, atol=1e-5, rtol=1e-5)


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
    expected = activation(F.conv2d(x, w, b, padding=k // 2), act, 0.05)
    with torch.no_grad():
        got = conv_act(x, w, b, act, 0.05)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
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
