"""``cfin train``: train a CFIN variant with a named recipe, resumably, on one or many GPUs.

    cfin train --preset tiny --recipe smoke                          # bundled pictures, CPU minutes
    cfin train --preset x4 --recipe short --data-root DATA --out runs/x4-short
    torchrun --nproc_per_node 4 -m cfin train --preset x4 --recipe paper --data-root DATA

Training data: DIV2K 1-800 under ``--data-root`` (``DIV2K_train_HR``, LR made by MATLAB
bicubic where ``DIV2K_train_LR_bicubic`` is absent), validated on DIV2K 896-900 as the official
code is; without
``--data-root`` the bundled scikit-image pictures (train split; validated on the test split).
Running the same command again resumes from ``OUT/last.pt``.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from cfin.commands._common import (add_impl_argument, add_model_arguments, add_tf32_argument, check_seed,
                                   config_from_args)

DIV2K_VAL_IDS = range(896, 901)  # the official code's (REFERENCE.md, "Training")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, scale_default=None)
    p.add_argument("--recipe", default="smoke", help="smoke (minutes on CPU; default), short (hours on a GPU), "
                                                     "paper (the paper's 1M iterations, as the official code "
                                                     "ran them) or paper-text (the same, with the schedule the "
                                                     "paper's text states)")
    p.add_argument("--data-root", metavar="DIR", help="folder holding DIV2K_train_HR and DIV2K_valid_HR "
                                                      "(default: the bundled scikit-image pictures)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/train/<model>-<recipe>-seed<N>)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available; under torchrun "
                                    "each process takes cuda:LOCAL_RANK)")
    p.add_argument("--seed", type=int, help="seed of weights, data order and masks, 0 to 2**63 - 1 (default: the "
                                            "recipe's, 0)")
    p.add_argument("--iterations", type=int, metavar="N", help="override the recipe's iteration count: the "
                                                               "cosine spans N, in ceil(N / 1000) steps at paper "
                                                               "and short (one per 1000-iteration epoch: under "
                                                               "1000, a constant lr; a last partial epoch keeps "
                                                               "its step's lr), every iteration at paper-text "
                                                               "and smoke")
    p.add_argument("--workers", type=int, metavar="N", help="DataLoader workers (default: the recipe's)")
    p.add_argument("--no-resume", action="store_true", help="start over even if OUT/last.pt exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_impl_argument(p, None, "the config's own (faithful for a preset); a run resumes under either")
    add_tf32_argument(p)


def _model_label(args, cfg) -> str:
    name = Path(args.config).stem if args.config else (args.preset or f"x{cfg.scale}")
    return name if name == f"x{cfg.scale}" else f"{name}-x{cfg.scale}"


def _validation_text(val, val_images: int) -> str:
    """The images a run validates on: the first ``val_images`` of ``val`` (the recipe's count)."""
    names = val.names[:val_images]
    if not names:
        return "none"
    if names[0].isdigit():  # DIV2K
        return f"DIV2K {int(names[0])}-{int(names[-1])}" if len(names) > 1 else f"DIV2K {int(names[0])}"
    return f"the test split's {', '.join(names)}" if len(names) < len(val) else "the test split"


def build_data(data_root: str | None, scale: int, recipe, progress: bool):
    """(training patches, validation images, a label for both) for DIV2K or the bundled pictures."""
    from cfin.data import EmbeddedSet, TrainPatchDataset, div2k_pairs, embedded_images
    from cfin.data.pairs import ImageSet

    if data_root:
        images = div2k_pairs(data_root, scale, "train")
        val = ImageSet("DIV2K 896-900", div2k_pairs(data_root, scale, "valid", ids=DIV2K_VAL_IDS), scale)
        label = f"DIV2K 1-800 (validation: {_validation_text(val, recipe.val_images)}) under {data_root}"
    else:
        images = embedded_images("train")
        val = EmbeddedSet(scale)
        held_out = _validation_text(val, recipe.val_images)
        label = (f"the bundled scikit-image pictures (train split; validation: {held_out}"
                 f"{'; the test split is also the evaluation set' if recipe.val_images else ''})")
    # One distinct random patch per sample of the whole run: the run is a single epoch.
    patches = TrainPatchDataset(images, scale, recipe.patch_size, augment=True,
                                length=recipe.iterations * recipe.batch_size, seed=recipe.seed)
    if recipe.num_workers > 0:  # load once, before the workers fork, so they share the images
        patches.preload(progress=progress)
    return patches, val, label


def run(args) -> int:
    import torch

    import cfin
    from cfin.atomic import atomic_write_json
    from cfin.errors import CFINError
    from cfin.train import recipe, train
    from cfin.paths import output_dir
    from cfin.train.distributed import launched_processes, launched_rank
    from cfin.train.lock import run_lock
    from cfin.train.trainer import CHECKPOINT_NAME

    if args.seed is not None:
        check_seed("--seed", args.seed)
    cfg = config_from_args(args)
    if args.impl is not None:
        cfg = cfg.with_impl(args.impl)
    overrides = {k: v for k, v in (("seed", args.seed), ("iterations", args.iterations),
                                   ("num_workers", args.workers)) if v is not None}
    rec = recipe(args.recipe, **overrides)
    processes = launched_processes()  # the recipe's batch is the global one, split over torchrun's processes
    if rec.batch_size % processes:
        raise CFINError(f"recipe {rec.name!r} trains with a global batch of {rec.batch_size}, which the {processes} "
                        f"processes of torchrun cannot split evenly; use a --nproc_per_node that divides it")
    main_process = launched_rank() == 0
    progress = main_process and not args.no_progress
    out = Path(args.out or Path("runs") / "train" / f"{_model_label(args, cfg)}-{rec.name}-seed{rec.seed}")
    if main_process:
        output_dir(out, "--out", create=False)  # made when training starts, after the data is checked

    torch.manual_seed(rec.seed)  # initial weights (identical on every process)
    model = cfin.CFIN(cfg)
    train_set, val_set, data_label = build_data(args.data_root, cfg.scale, rec, progress)
    # the main process holds the folder from here on (run.json included); train() re-enters the lock
    with run_lock(out, elsewhere="give another --out") if main_process else contextlib.nullcontext():
        if main_process:
            n_params = sum(p.numel() for p in model.parameters())
            split = f" (global: {rec.batch_size // processes} per process x {processes})" if processes > 1 else ""
            print(f"training CFIN x{cfg.scale} ({n_params:,} parameters) with recipe {rec.name!r}: "
                  f"{rec.iterations:,} iterations, batch {rec.batch_size}{split}, {rec.patch_size}x{rec.patch_size} "
                  f"LR patches")
            print(f"data: {data_label}")
            print(f"checkpoints: {out / 'last.pt'} (every {rec.checkpoint_every:,} iterations; rerun to resume); "
                  f"weights: {out / 'final.pt'}, {out / 'best.pt'}; log: {out / 'train_log.jsonl'}")
            if args.no_resume or not (out / CHECKPOINT_NAME).is_file():  # a resumed run keeps its run.json
                atomic_write_json(out / "run.json", {"config": cfg.to_dict(), "recipe": rec.to_dict(),
                                                     "data": data_label, "processes": processes})
        res = train(model, rec, train_set, out, device=args.device, val_set=val_set, resume=not args.no_resume,
                    progress=progress, tf32=args.tf32)
    if main_process:
        if res.resumed_from is not None:
            print(f"resumed from iteration {res.resumed_from:,}")
        best = f"; best validation PSNR {res.best_psnr:.3f} dB (Y) at iteration {res.best_iteration:,}" \
            if res.best_psnr is not None else ""
        loss = f"final loss {res.final_loss:.4f}" if res.final_loss is not None else "no new iterations"
        print(f"done: {res.iterations:,} iterations in {res.elapsed:.1f} s, {loss}{best}; weights: {res.weights}")
    return 0
