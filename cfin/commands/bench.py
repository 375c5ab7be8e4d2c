"""``cfin bench``: the fast path against the faithful one, side by side (time, memory, floor).

    cfin bench --scale 4 --lr-size 180x320 --threads 2            # x4 inference at 720p output
    cfin bench --scale 4 --train --grad-checkpoint                # training step, batch 16 of 48x48
    cfin bench --scale 4 --device cuda --amp bf16 --tf32 --compile --psnr --json
    cfin bench --config row.json --train                          # any CFINConfig: a table's row, a variant
    cfin bench --models cfin swinir-light esrt lbnet --scale 4 --lr-size 180x320   # Table II's time and memory

Both paths run in one process with the same weights, input and allocator settings
(:mod:`cfin.bench`); ``--json`` prints ``{"fast": {"median_s", "peak_mb", ...}, "faithful": {...},
"speedup", "memory_ratio", "floor_s", ...}``.
"""
from __future__ import annotations

import json

from cfin.bench import ALLOCATORS, AMP_DTYPES, BenchSpec, render, run_bench, set5_psnr_delta
from cfin.commands._common import add_model_arguments, config_from_args


def add_arguments(parser):
    add_model_arguments(parser, scale_default=4)  # --scale, --preset, --config: any network, e.g. a table's row
    parser.add_argument("--lr-size", metavar="HxW", default=None,
                        help="LR input, rows x columns (default: the input of a 720x1280 output, 180x320 at x4; "
                             "48x48 patches with --train)")
    parser.add_argument("--batch", type=int, default=None, help="images per call (default 1; 16 with --train)")
    parser.add_argument("--train", action="store_true", help="time a training step (forward, L1, backward, Adam)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cuda when available)")
    parser.add_argument("--runs", type=int, default=None, help="timed calls per path (default 5 CPU, 30 CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls per path first (default 1 CPU, 5 CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--allocator", default="tuned", choices=list(ALLOCATORS),
                        help="glibc malloc settings for every path alike (default tuned: no mmap, no trim)")
    parser.add_argument("--grad-checkpoint", action="store_true",
                        help="also time the fast path with activation checkpointing per CT block")
    parser.add_argument("--amp", default=None, choices=list(AMP_DTYPES),
                        help="also time the fast path under autocast (changes results; fp16 on a GPU only)")
    parser.add_argument("--compile", action="store_true", help="also time the fast path through torch.compile")
    parser.add_argument("--compile-mode", default=None, metavar="MODE",
                        help="torch.compile mode of the --compile path (implies --compile): default, "
                             "reduce-overhead (CUDA graphs on a GPU), max-autotune, max-autotune-no-cudagraphs")
    parser.add_argument("--tf32", action="store_true",
                        help="CUDA: also time the fast path with TF32 matmuls and convolutions (changes results; "
                             "every other path runs with TF32 off)")
    parser.add_argument("--psnr", action="store_true",
                        help="Set5 PSNR of the fast path and of each --amp/--tf32/--compile path (needs ../shared)")
    parser.add_argument("--weights", metavar="OFFICIAL.pt", default=None,
                        help="official state_dict to load (default: random weights, seed 0)")
    parser.add_argument("--mask-eval", default=None, choices=["sample", "argmax"],
                        help="the Gumbel mask at inference (default: the preset's 'sample', as the official code)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time every aten op of each path's call, grouped by kind (where the time goes)")
    parser.add_argument("--memory-runs", type=int, default=3,
                        help="CPU peak-memory children per path, median reported (default 3)")
    parser.add_argument("--models", nargs="+", metavar="NAME", default=None,
                        help="instead of fast vs faithful: CFIN beside these rebuilt peers (cfin.peers names, e.g. "
                             "swinir-light esrt lbnet): forward latency, forward and training-step peak memory, "
                             "each as a ratio to CFIN (CFIN is added where not named)")
    parser.add_argument("--train-batch", type=int, default=None,
                        help="with --models: the training step's batch for its peak memory (default 16)")
    parser.add_argument("--train-patch", type=int, default=None,
                        help="with --models: the training step's LR patch side (default 48)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--output", metavar="FILE.json", default=None, help="also write the JSON object here")


# options of the fast-vs-faithful comparison that --models does not take: (dest, flag)
_PATH_OPTIONS = (("preset", "--preset"), ("config", "--config"), ("batch", "--batch"), ("train", "--train"),
                 ("grad_checkpoint", "--grad-checkpoint"), ("amp", "--amp"), ("compile", "--compile"),
                 ("compile_mode", "--compile-mode"), ("tf32", "--tf32"), ("psnr", "--psnr"), ("weights", "--weights"),
                 ("mask_eval", "--mask-eval"), ("breakdown", "--breakdown"))


def run_models(args) -> int:
    """``--models``: CFIN and peers side by side (:func:`cfin.bench.models.compare_models`)."""
    from cfin.bench.models import compare_models, render_models
    from cfin.complexity.conventions import parse_size
    from cfin.device import resolve_device
    from cfin.errors import CFINError
    from cfin.paths import json_with_keys, output_file

    given = [flag for dest, flag in _PATH_OPTIONS if getattr(args, dest) not in (None, False)]
    for flag, value in (("--train-batch", args.train_batch), ("--train-patch", args.train_patch)):
        if value is not None and value < (1 if flag == "--train-batch" else 3):
            raise CFINError(f"{flag} must be at least {1 if flag == '--train-batch' else 3}, got {value}")
    if given:
        raise CFINError(f"--models compares networks' forward time and memory; {', '.join(given)} "
                        f"{'belongs' if len(given) == 1 else 'belong'} to the fast-vs-faithful comparison "
                        f"(leave out --models)")
    if args.output:
        output_file(args.output, "--output", json_with_keys("models", "reference"), "an earlier cfin bench report")
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    report = compare_models(args.models, scale=args.scale if args.scale is not None else 4,
                            lr_size=parse_size(args.lr_size, "--lr-size") if args.lr_size else None, device=device,
                            runs=args.runs if args.runs is not None else (30 if cuda else 5),
                            warmup=args.warmup if args.warmup is not None else (5 if cuda else 1),
                            memory=not args.no_memory, train_batch=args.train_batch, train_patch=args.train_patch,
                            threads=args.threads, allocator=args.allocator, progress=not args.json)
    if args.output:
        from cfin.atomic import atomic_write_json

        atomic_write_json(args.output, report)
    print(json.dumps(report, indent=2) if args.json else render_models(report))
    return 0


def run(args) -> int:
    if args.models is None and (args.train_batch is not None or args.train_patch is not None):
        from cfin.errors import CFINError

        raise CFINError("--train-batch and --train-patch size the training step of --models; without --models use "
                        "--train with --batch and --lr-size")
    if args.models is not None:
        return run_models(args)
    from cfin.bench.psnr import set5_root
    from cfin.complexity.conventions import parse_size
    from cfin.device import resolve_device
    from cfin.paths import json_with_keys, output_file

    config = config_from_args(args)
    device = resolve_device(args.device)
    if args.output:
        output_file(args.output, "--output", json_with_keys("fast", "faithful"), "an earlier cfin bench report")
    if args.psnr:
        set5_root()
    cuda = device.type == "cuda"
    spec = BenchSpec(scale=config.scale, config=config,
                     lr_size=parse_size(args.lr_size, "--lr-size") if args.lr_size else None,
                     batch=args.batch, train=args.train, device=device,
                     runs=args.runs if args.runs is not None else (30 if cuda else 5),
                     warmup=args.warmup if args.warmup is not None else (5 if cuda else 1),
                     threads=args.threads, allocator=args.allocator, grad_checkpoint=args.grad_checkpoint,
                     amp=args.amp, compile=args.compile or args.compile_mode is not None,
                     compile_mode=args.compile_mode or "default", tf32=args.tf32,
                     memory=not args.no_memory, memory_runs=args.memory_runs,
                     weights=args.weights,
                     mask_eval=args.mask_eval, breakdown=args.breakdown)
    report = run_bench(spec, progress=not args.json)
    if args.psnr:
        report["set5"] = set5_psnr_delta(spec, progress=not args.json)
    if args.output:
        from cfin.atomic import atomic_write_json

        atomic_write_json(args.output, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
        if "set5" in report:
            s = report["set5"]
            print("Set5 PSNR (dB): " + ", ".join(f"{k} {v:.3f}" for k, v in s["psnr"].items())
                  + "; delta vs fast: " + (", ".join(f"{k} {v:+.4f}" for k, v in s["delta_db"].items()) or "-")
                  + f" (weights: {s['weights']})")
    return 0
