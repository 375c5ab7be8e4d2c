"""``cfin complexity``: Params / Multi-Adds under every convention, side by side; memory and latency on request.

    cfin complexity --scale 4                      # the paper's 320x180 input: every count, in seconds
    cfin complexity --model imdn --scale 4         # a rebuilt peer (cfin.peers), the same rulers
    cfin complexity --scale 4 --measure            # also peak memory and latency on this device (minutes on a CPU)
    cfin complexity --scale 3 --conventions all --json   # fvcore too (it traces real tensors: about a minute)
    cfin complexity --preset x4 --hr-size 480x640 --breakdown
    cfin complexity --table VII [--json]           # a paper table: printed | ours (paper rule) | ours (full)
"""
from __future__ import annotations

import argparse
import json

from cfin.commands._common import add_model_arguments, check_at_least, config_from_args
from cfin.complexity.conventions import CONVENTIONS, TRAIN_BATCH, TRAIN_PATCH, applies, resolve_lr_size, size_label
from cfin.errors import CFINError

# the default: every convention that runs on meta tensors (seconds); "all" adds fvcore's real trace
FAST = tuple(n for n, c in CONVENTIONS.items() if not c.needs_data)


def add_arguments(parser):
    add_model_arguments(parser)
    add_peer_argument(parser)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--lr-size", metavar="HxW", default=None,
                      help="LR input, rows x columns (default: the paper's input for a 720x1280 output: "
                           "360x640 at x2, 240x426 at x3, 180x320 at x4)")
    size.add_argument("--hr-size", metavar="HxW", default=None, help="output size, divisible by the scale")
    parser.add_argument("--conventions", default="fast",
                        help=f"comma list of {', '.join(CONVENTIONS)}; 'fast' (default): every one that runs on "
                             f"meta tensors ({', '.join(FAST)}: seconds); 'all' adds fvcore, which traces the real "
                             f"network (about a minute at 720p on a CPU)")
    parser.add_argument("--no-libs", action="store_true",
                        help="skip fvcore and ptflops (the counting libraries)")
    parser.add_argument("--breakdown", action="store_true", help="per-module params and Multi-Adds table")
    parser.add_argument("--depth", type=int, default=None, help="cut the breakdown at this module depth")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N for memory and latency "
                                                        "(default cuda when available)")
    parser.add_argument("--measure", action=argparse.BooleanOptionalAction, default=False,
                        help="also measure peak memory (inference and a training step) and latency on --device: "
                             "minutes at 720p on a CPU (default: counts only; --no-measure says so explicitly)")
    parser.add_argument("--no-train-memory", action="store_true", help="skip the training-step memory")
    parser.add_argument("--runs", type=int, default=None, help="timed forwards (default 20 on GPU, 5 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed forwards first (default 5 GPU, 1 CPU)")
    parser.add_argument("--dtype", default="float32", help="float32, float16 or bfloat16")
    parser.add_argument("--train-batch", type=int, default=TRAIN_BATCH, help="training-memory batch (16)")
    parser.add_argument("--train-patch", type=int, default=TRAIN_PATCH, help="training-memory LR patch (48)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--output", metavar="FILE.json", default=None, help="also write the JSON object here")
    parser.add_argument("--table", metavar="ID", default=None,
                        help="a paper table (I ... X, V-A.2): its rows' printed Params / Multi-Adds beside ours "
                             "under the paper's rule and the full count (model options are ignored)")


def run(args) -> int:
    from cfin.complexity.memory import resolve_dtype
    from cfin.complexity.report import breakdown_rows, build_report, parse_conventions, render_table
    from cfin.device import resolve_device
    from cfin.paths import json_with_keys, output_file

    if args.output:  # checked before the counts it would hold; only an earlier count is replaced
        output_file(args.output, "--output", json_with_keys("rows", "table") if args.table is not None
                    else json_with_keys("conventions", "paper_printed"), "an earlier cfin complexity report")
    if args.table is not None:
        return _run_table(args)
    cfg = model_from_args(args)
    from cfin.complexity.counts import scale_of

    lr_size = resolve_lr_size(scale_of(cfg), args.lr_size, args.hr_size)
    named = args.conventions.strip() not in ("fast", "all")
    conventions = parse_conventions(args.conventions) if args.conventions.strip() != "fast" else FAST
    if not named:  # a convention asked for by name that cannot count the network is named in the output
        conventions = tuple(n for n in conventions if applies(n, cfg))
    if args.no_libs:
        conventions = tuple(c for c in conventions if not c.startswith(("fvcore", "ptflops")))
    if not conventions:
        raise CFINError("no convention left to count: --no-libs removed all of --conventions")
    check_at_least("--depth", args.depth, 1)
    resolve_dtype(args.dtype)
    device = None
    if args.measure or args.device is not None:  # a --device given is checked even where nothing is measured
        device = resolve_device(args.device)
        if device.type not in ("cpu", "cuda"):
            raise CFINError(f"memory and latency support cpu and cuda, got {device}; leave out --measure")
        if args.train_batch < 1 or args.train_patch < 3:
            raise CFINError(f"--train-batch must be >= 1 and --train-patch >= 3, "
                            f"got {args.train_batch} and {args.train_patch}")
    cuda = device is not None and device.type == "cuda"
    runs = args.runs if args.runs is not None else (20 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    if runs < 1 or warmup < 0:
        raise CFINError(f"--runs must be >= 1 and --warmup >= 0, got {runs} and {warmup}")

    report, counts = build_report(cfg, lr_size, conventions, device, args.measure, runs, warmup,
                                  args.dtype, args.train_batch, args.train_patch,
                                  training_memory=not args.no_train_memory, progress=not args.json)
    rows = breakdown_rows(counts, args.depth) if args.breakdown else None
    if rows is not None:
        report["breakdown"] = rows
    if args.output:
        from cfin.atomic import atomic_write_json

        atomic_write_json(args.output, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report, rows))
        if args.output:
            print(f"\nwrote {args.output} ({size_label(lr_size, scale_of(cfg))})")
    return 0


def _run_table(args) -> int:
    """``--table ID``: the table's complexity columns (cfin.complexity.tables)."""
    from cfin.complexity.tables import render_table_complexity, table_complexity

    result = table_complexity(args.table, progress=not args.json)
    if args.output:
        from cfin.atomic import atomic_write_json

        atomic_write_json(args.output, result)
    print(json.dumps(result, indent=2) if args.json else render_table_complexity(result))
    return 0


def add_peer_argument(parser) -> None:
    """``--model NAME``: CFIN (default) or a rebuilt peer of :mod:`cfin.peers`."""
    parser.add_argument("--model", default="cfin", metavar="NAME",
                        help="cfin (default: the network --scale/--preset/--config name) or a rebuilt peer method "
                             "(cfin.peers: imdn, swinir-light, ...; an unknown name lists them)")


def model_from_args(args):
    """A CFINConfig for ``--model cfin``; else the peer at ``--scale`` (default 4), built on the meta device."""
    if args.model.strip().lower() == "cfin":
        return config_from_args(args)
    import torch

    from cfin.commands._common import check_scale
    from cfin.peers import build, spec

    peer = spec(args.model)
    if args.preset or args.config:
        raise CFINError(f"--preset and --config describe a CFIN; --model {peer.name} takes --scale only")
    scale = args.scale if args.scale is not None else args._scale_default or 4
    check_scale(scale, peer.scales)
    with torch.device("meta"):  # counts need shapes only; memory and latency build their own copy
        return build(peer.name, scale)
