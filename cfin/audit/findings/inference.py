"""The Gumbel mask is sampled at inference: the same weights give different images."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from cfin.audit.context import AuditContext, lr_tensor, sr_image
from cfin.audit.findings._fmt import test_name
from cfin.audit.record import Finding
from cfin.metrics import psnr
from cfin.models.ciam import RIFUMask


def _forward(model, x, seed: int, masks: list | None = None):
    """``model(x)`` right after ``torch.manual_seed(seed)``; optionally record every RIFU mask."""
    handles = []
    if masks is not None:
        for mod in model.modules():
            if isinstance(mod, RIFUMask):
                handles.append(mod.register_forward_hook(lambda _m, _a, out: masks.append(out.detach().cpu())))
    try:
        torch.manual_seed(seed)
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()


def seed_spread(model, samples, scale: int, seeds: int, device, progress: bool = False) -> dict:
    """PSNR (Y, ``scale`` px shaved) of ``model`` on ``samples`` under ``seeds`` Gumbel seeds.

    Returns per-seed mean PSNR, the spread over seeds, per-image spread, the PSNR between the
    seed-0 and seed-1 outputs, their max |difference| (0-255) and the fraction of RIFU mask
    pixels that flip between those two seeds.
    """
    per_image = np.zeros((len(samples), seeds))
    between, max_diff, flips = [], 0.0, []
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []), \
            tqdm(total=len(samples) * seeds, desc="gumbel seeds", unit="run", disable=not progress) as bar:
        for i, sample in enumerate(samples):
            x = lr_tensor(sample.lr, device)
            first = None
            for seed in range(seeds):
                masks = [] if seed < 2 else None
                out = _forward(model, x, seed, masks)
                per_image[i, seed] = psnr(sr_image(out), sample.hr, scale)
                if seed == 0:
                    first, first_masks = out, masks
                elif seed == 1:
                    between.append(psnr(sr_image(out), sr_image(first), scale))
                    max_diff = max(max_diff, float((out - first).abs().max()))
                    flips.append(float(np.mean([(a != b).float().mean().item()
                                                for a, b in zip(first_masks, masks)])))
                bar.update()
    per_seed = per_image.mean(axis=0)
    return {
        "seeds": seeds, "images": len(samples),
        "psnr_per_seed": [round(float(v), 4) for v in per_seed],
        "psnr_spread_over_seeds_db": round(float(per_seed.max() - per_seed.min()), 4),
        "psnr_std_over_seeds_db": round(float(per_seed.std(ddof=1)), 4),
        "max_per_image_spread_db": round(float((per_image.max(1) - per_image.min(1)).max()), 4),
        "psnr_between_two_seeds_db": round(float(np.mean(between)), 3),
        "max_abs_diff_between_two_seeds": round(max_diff, 3),
        "mask_pixels_flipped_between_two_seeds": round(float(np.mean(flips)), 4),
    }


def gumbel_at_inference(ctx: AuditContext) -> Finding:
    model = ctx.model(mask_eval="sample")
    samples = ctx.samples
    meas = seed_spread(model, samples, ctx.scale, ctx.seeds, ctx.device, ctx.progress)
    argmax = ctx.model(mask_eval="argmax")
    with torch.no_grad():
        arg_psnr = np.mean([psnr(sr_image(argmax(lr_tensor(s.lr, ctx.device))), s.hr, ctx.scale) for s in samples])
    meas["psnr_argmax_mask_db"] = round(float(arg_psnr), 4)
    meas["data"] = ctx.data_label
    confirmed = meas["max_abs_diff_between_two_seeds"] > 1e-3
    random_note = "" if ctx.kind == "official" else (
        " These numbers come from random weights: the spread a trained checkpoint shows depends on how "
        "confident its mask logits are; run `cfin audit --official model_best_x4.pt` to measure it.")
    return Finding(
        id="gumbel-at-inference",
        title="RIFU's Gumbel mask is sampled at inference: outputs change with the random seed",
        paper_claim=("\"During training we need model to select only one channel from the three channels\"; "
                     "the Gumbel-Softmax trick \"randomly add[s] some sampling\" so the network can be optimised "
                     "end to end."),
        citation="Sec. III-B.1, eq. (7)-(8); Table IV",
        code_behaviour=("The official RIFU calls F.gumbel_softmax(hard=True) whatever the mode, so a fresh Gumbel "
                        "noise sample picks each pixel's mask at inference too (model.eval() does not turn it "
                        "off). The published PSNRs are one draw of a random variable."),
        measurement=meas,
        how=(f"Same weights, eval mode, torch.manual_seed(seed) before each forward, seeds 0..{ctx.seeds - 1}, on "
             f"{ctx.data_label}; PSNR on Y with {ctx.scale} px shaved (cfin.metrics, outputs quantised to uint8). "
             f"Mask flips: forward hooks on every RIFU mask in the seed-0 and seed-1 runs. 'argmax' replaces the "
             f"sample by the noiseless argmax (our mask_eval='argmax')."),
        user_impact=(f"Two runs of {'the released model' if ctx.kind == 'official' else 'this model'} on the same "
                     f"image differ by up to "
                     f"{meas['max_abs_diff_between_two_seeds']:.1f} grey levels (PSNR between them "
                     f"{meas['psnr_between_two_seeds_db']:.1f} dB) and the Set5 PSNR moves by "
                     f"{meas['psnr_spread_over_seeds_db']:.2g} dB across {ctx.seeds} seeds; "
                     f"{meas['mask_pixels_flipped_between_two_seeds'] * 100:.1f}% of mask pixels flip between two "
                     f"runs. Fix torch.manual_seed before every image (cfin evaluate does), or use "
                     f"mask_eval='argmax', and report which." + random_note),
        test=test_name("test_gumbel_mask_is_sampled_at_inference"),
        found_by="REFERENCE.md; seen while matching the golden outputs (sample mode only matches under the seed).",
        confirmed=confirmed,
        weights=ctx.label,
    )
