"""Findings about the network's layout: the loop mechanism, per-scale shapes, the reconstruction tail."""
from __future__ import annotations

import re

import torch

from cfin.audit.context import AuditContext
from cfin.audit.findings._fmt import n, test_name
from cfin.audit.probes import call_counts
from cfin.audit.record import Finding
from cfin.config import preset
from cfin.models.cfgt import CFGT
from cfin.models.cfin import Expand, Squeeze
from cfin.models.ciam import CIAM
from cfin.official import read_state_dict
from cfin.paths import shared_dir


def loop_mechanism(ctx: AuditContext) -> Finding:
    model = ctx.model("argmax")
    calls = call_counts(model, ctx.probe(16), (CIAM, CFGT, Expand, Squeeze))

    def summary(kind):
        names = [k for k, mod in model.named_modules() if isinstance(mod, kind)]
        return {"instances": len(names), "calls_each": sorted({calls.get(k, 0) for k in names})}

    meas = {"ciam": summary(CIAM), "cfgt": summary(CFGT), "expand": summary(Expand), "squeeze": summary(Squeeze),
            "ct_blocks": ctx.config.num_blocks}
    confirmed = meas["ciam"]["calls_each"] == [2] and meas["cfgt"]["calls_each"] == [1]
    return Finding(
        id="loop-mechanism",
        title="Only the convolution stages loop: 4 CIAMs run twice, 8 CFGTs run once",
        paper_claim=("\"In the final model, we use 8 transformer stages and 8 convolution stages, and all of which are "
                     "called twice using a loop mechanism\"; \"each two CT blocks are called once using a loop "
                     "mechanism\"."),
        citation="Sec. IV-B; Sec. III-A, Fig. 2",
        code_behaviour=("8 CT blocks; block i uses CIAM j = i // 2 and expand/squeeze pair j, so there are 4 CIAMs "
                        "and 4 expand/squeeze pairs, each called by two consecutive blocks, and 8 distinct CFGTs, "
                        "each called once."),
        measurement=meas,
        how="Forward pre-hooks count the calls of every CIAM, CFGT, expand and squeeze instance in one forward.",
        user_impact=("Neither reading of the paper (8 + 8 stages all run twice, or pairs of whole CT blocks shared) "
                     "builds the released network: sharing is per conv stage only. Parameters and Multi-Adds of a "
                     "model built from IV-B differ accordingly."),
        test=test_name("test_loop_mechanism"),
        found_by="Building the CT body from the official state_dict (4 rb_search, 8 trans_block keys).",
        confirmed=confirmed,
    )


def _shape_facts(sd: dict[str, torch.Tensor]) -> dict:
    heads = []
    for k, v in sd.items():
        mt = re.search(r"trans_block(\d*)\.attn\.weight$", k)
        if mt:
            heads.append((int(mt[1] or 0), v.shape[0]))
    return {"deconv_width": int(sd["conv_trans_2.cnn_block.rb_search1.k1.0.weight"].shape[1]),
            "expand_weight_norm": "conv_trans_2.cnn_block.expand_block.conv_project.weight_g" in sd,
            "heads": [h for _, h in sorted(heads)], "params_registered": sum(v.numel() for v in sd.values())}


def per_scale_shapes(ctx: AuditContext) -> Finding:
    shared = shared_dir()
    facts, source = {}, {}
    for s in (2, 3, 4):
        path = shared / "reference" / f"official_x{s}_random_state_dict.pt" if shared else None
        if s == ctx.scale and ctx.official_sd is not None:
            facts[s], source[s] = _shape_facts(ctx.official_sd), ctx.label
        elif path is not None and path.is_file():
            facts[s], source[s] = _shape_facts(read_state_dict(path)), f"official-format fixture {path.name}"
        else:
            cfg = preset(s)
            facts[s] = {"deconv_width": cfg.deconv_feats, "expand_weight_norm": cfg.expand_weight_norm,
                        "heads": list(cfg.heads)}
            source[s] = "cfin preset (no official state_dict at hand)"
    meas = {f"x{s}": f for s, f in facts.items()}
    meas["source"] = {f"x{s}": v for s, v in source.items()}
    differ = len({(f["deconv_width"], f["expand_weight_norm"], tuple(f["heads"])) for f in facts.values()})
    confirmed = differ > 1
    return Finding(
        id="per-scale-shapes",
        title="x2, x3 and x4 are different architectures, not one network with another upsampler",
        paper_claim=("One CFIN for all scales: \"we set the initial input channel to 48\", 8 CT blocks; heads and "
                     "per-scale differences are not given (Table I lists 675K / 681K / 699K)."),
        citation="Sec. III, Sec. IV-B, Table I",
        code_behaviour=("CFINx2.py, CFINx3.py and CFINx4.py differ beyond the upsampler: x2 widens CIAM's "
                        "transposed conv to 72 channels and weight-normalises the expand conv; x3 uses heads "
                        "(8, 12, 8, 12, ...) where x2/x4 use (8, 12, 16, 12, ...)."),
        measurement=meas,
        how=("Read off the official-format state_dicts of each scale: CIAM transposed-conv width "
             "(rb_search1.k1.0.weight), presence of expand_block weight_g, heads per CFGT (attn.weight is "
             "heads x d x d)."),
        user_impact=("A paper-only rebuild of x2 or x3 gets shapes that do not load the released weights; "
                     "cfin's presets x2/x3/x4 carry the differences."),
        test=test_name("test_per_scale_shapes_differ"),
        found_by="Writing the presets: the x2 and x3 state_dicts did not fit the x4 shapes.",
        confirmed=confirmed,
    )


def reconstruction_tail(ctx: AuditContext) -> Finding:
    model = ctx.model("argmax")
    x = ctx.probe(16).clone().requires_grad_(True)
    out = model.lr_upsample(model.lr_conv(x))
    c = out.shape[-1] // 2
    out[0, :, c, c].sum().backward()
    lr_rf = int((x.grad.abs().sum(1)[0] != 0).sum())
    lr_path = sum(p.numel() for mod in (model.lr_conv, model.lr_upsample) for p in mod.parameters())
    deep_path = sum(p.numel() for mod in (model.body_conv, model.upsample) for p in mod.parameters())
    meas = {"lr_path_convs": 2, "lr_path_params": lr_path, "lr_path_receptive_field_lr_pixels": lr_rf,
            "deep_path_tail_convs": 2, "deep_path_tail_params": deep_path,
            "body_long_skip_scalars": [float(model.body.scale_body.scale.detach()),
                                       float(model.body.scale_skip.scale.detach())]}
    confirmed = lr_rf == 25
    return Finding(
        id="reconstruction-tail",
        title="The two reconstruction paths of eq. (4) are two-conv networks with separate weights",
        paper_claim=("I_SR = F_rec(I_ct) + F_rec(I_LR), \"where F_rec is the post-sampling reconstruction module, "
                     "which composed of a 3x3 convolutional layer and a PixelShuffle layer\"."),
        citation="Sec. III-A, eq. (4)",
        code_behaviour=("Deep path: 3x3 conv 48->48 then 3x3 conv 48->3s^2 and PixelShuffle. LR path: 3x3 conv "
                        "3->48, 3x3 conv 48->3s^2, PixelShuffle, on the raw input (before the mean shift). The two "
                        "paths have separate weights; the body also ends with a*x + b*body_input."),
        measurement=meas,
        how=("Receptive field: gradient of one output pixel of the LR path with respect to the LR input counts the "
             "LR pixels it reads (one 3x3 conv would read 9, two read 25). Parameters summed per path."),
        user_impact=(f"The LR path is a {n(lr_path)}-parameter two-layer CNN (receptive field {lr_rf} LR pixels), "
                     f"not a 3x3 conv: an eq. (4) rebuild has fewer parameters and no hidden layer there."),
        test=test_name("test_reconstruction_tail"),
        found_by="Building the tail from the official state_dict (conv_stright, UP2, conv_after_body, UP1).",
        confirmed=confirmed,
    )
