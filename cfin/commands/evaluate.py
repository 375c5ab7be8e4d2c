"""``cfin evaluate``: PSNR/SSIM (Y channel, MATLAB conventions) of a model on benchmark datasets.

    cfin evaluate --model bicubic --scale 4 --data-root DATA --datasets Set5 Set14
    cfin evaluate --model runs/train/x4-paper-seed0/best.pt --self-ensemble --json
    cfin evaluate --official model_best_x4.pt --scale 4 --data-root DATA --tile 256
    cfin evaluate --official model_best_x4.pt --scale 4 --data-root DATA --impl fast
    cfin evaluate --model imdn --weights IMDN_x4.pth --scale 4 --data-root DATA --protocols all   # a peer

Without ``--data-root`` it evaluates on the bundled scikit-image test pictures (label "embedded").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cfin.commands._common import add_impl_argument, add_tf32_argument, check_scale, check_seed
from cfin.errors import CFINError
from cfin.evaluate import TILE_OVERLAP
from cfin.paths import existing_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="{bicubic|PEER|CHECKPOINT}",
                       help="'bicubic' (MATLAB bicubic baseline), a rebuilt peer method's name (cfin.peers: imdn, "
                            "pan, fdiwn, ...; with --weights) or a cfin checkpoint file")
    which.add_argument("--official", metavar="OFFICIAL.pt", help="an official model_best_x{s}.pt state_dict")
    p.add_argument("--weights", metavar="PATH", help="with --model PEER: its released state_dict, loaded strictly")
    p.add_argument("--scale", type=int, help="upscaling factor (needed for bicubic: an integer >= 2, and for "
                                            "--official and a peer: 2, 3 or 4; checked against a checkpoint's own)")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="how PSNR/SSIM are computed (cfin.protocols): matlab (default: Y unrounded, MATLAB "
                        "ssim_index), y-rounded (IMDN's code), edsr (EDSR's calc_psnr: CFIN, FDIWN, SMSR), basicsr")
    p.add_argument("--protocols", nargs="+", metavar="NAME", default=None,
                   help="also score by these protocols ('all': every one), on the same SR images")
    p.add_argument("--data-root", metavar="DIR", help="folder with benchmark/<name>/HR (default: the "
                                                     "bundled scikit-image pictures, label 'embedded')")
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="datasets to evaluate (default: the paper's five benchmarks found under --data-root; "
                        "those not found are named on stderr)")
    p.add_argument("--self-ensemble", action="store_true", help="x8 flip/rotation ensemble (the '+' rows)")
    p.add_argument("--tile", type=int, metavar="N",
                   help="tiled inference with N x N LR tiles, for images too large to run whole; CFIN's "
                        "attention and context pooling then see one tile, so the scores differ from "
                        "whole-image scores (the output says so)")
    p.add_argument("--tile-overlap", type=int, metavar="N",
                   help=f"LR pixels of context per tile side, with --tile (default {TILE_OVERLAP})")
    p.add_argument("--save-images", metavar="DIR", help="write SR images to DIR/<dataset>/<image>_x<s>.png")
    p.add_argument("--per-image", action="store_true", help="also report every image")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="torch seed before each image (CFIN's masks are random; "
                                                       "0 to 2**63 - 1)")
    add_impl_argument(p, None, "the checkpoint's own (faithful for --official)")
    add_tf32_argument(p)


def _load_model(args):
    """(model or function, scale, label) for the --model / --official choice."""
    from cfin.evaluate import bicubic_upsampler

    peer = _peer_name(args)
    if peer is not None:
        return _load_peer(args, peer)
    if args.weights:
        if args.model not in (None, "bicubic") and not Path(args.model).exists():
            from cfin.peers.registry import unknown_peer

            raise unknown_peer(args.model)
        raise CFINError(f"--weights goes with --model PEER (a rebuilt method: {', '.join(_peer_names())}); "
                        f"{'--official' if args.official else '--model ' + args.model} "
                        f"{'has no weights' if args.model == 'bicubic' else 'names its weights itself'}")
    if args.model == "bicubic":
        if args.scale is None:
            raise CFINError("--model bicubic needs --scale (2, 3, 4, ...)")
        check_scale(args.scale, valid=None)
        return bicubic_upsampler(args.scale), args.scale, "bicubic"
    path = _model_path(args)
    if args.scale is not None:
        check_scale(args.scale)
    import cfin
    from cfin.config import impl_switches

    impl = f" ({args.impl} path)" if args.impl else ""
    if args.official:
        if args.scale is None:
            raise CFINError("--official needs --scale (2, 3 or 4)")
        model = cfin.load_official(path, args.scale, **impl_switches(args.impl or "faithful"))
        return model, args.scale, f"official {path.name}{impl}"
    model = cfin.load(path, impl=args.impl)
    scale = model.config.scale
    if args.scale is not None and args.scale != scale:
        raise CFINError(f"--scale {args.scale} but checkpoint {path} is a x{scale} model")
    return model, scale, f"{path}{impl}"


def _peer_names() -> list[str]:
    from cfin.peers import names

    return names()


def _peer_name(args) -> str | None:
    """The registry name ``--model`` gives, where it names a peer and no file of that name exists."""
    if args.model is None or Path(args.model).exists():
        return None
    key = args.model.strip().lower()
    return key if key in _peer_names() else None


def _load_peer(args, name: str):
    """``--model PEER --weights PATH --scale S``: the released network, strictly loaded."""
    from cfin.peers import load, spec

    peer = spec(name)
    if not args.weights:
        raise CFINError(f"--model {name} needs --weights PATH: the released {peer.title} state_dict "
                        f"(e.g. {next(iter(peer.weights.values()), 'the file its repository publishes')})")
    if args.scale is None:
        raise CFINError(f"--model {name} needs --scale ({', '.join(map(str, peer.scales))})")
    if args.impl is not None:
        raise CFINError(f"--impl chooses CFIN's computation; --model {name} is computed as rebuilt")
    path = existing_file(args.weights, "--weights state_dict")
    return load(name, path, args.scale), args.scale, f"{peer.title} (released weights {path.name})"


def _model_path(args) -> Path:
    """The --official or --model file; a CFINError naming the option when it is missing or a folder."""
    if args.official:
        return existing_file(args.official, "--official state_dict")
    if not Path(args.model).exists():
        from cfin.peers.registry import unknown_peer

        raise CFINError(f"--model checkpoint not found: {args.model} (--model takes 'bicubic', a checkpoint file or "
                        f"a peer name; {str(unknown_peer(args.model)).removeprefix('unknown model ')})")
    return existing_file(args.model, "--model checkpoint")


def _datasets(args, scale):
    from cfin.data import STANDARD_BENCHMARKS, BenchmarkSet, available_datasets, open_dataset

    names = args.datasets
    if names is None:
        if args.data_root is None:
            names = ["embedded"]
        else:
            found = available_datasets(args.data_root)
            names = [n for n in STANDARD_BENCHMARKS if n in found] or found
            if not names:
                open_dataset(args.data_root, "Set5", scale)  # raises, naming the layout expected
            missing = [n for n in STANDARD_BENCHMARKS if n not in found]
            if missing and set(names) & set(STANDARD_BENCHMARKS):  # the paper's five, some not there
                print(f"cfin evaluate: note: {', '.join(missing)} not found under {args.data_root} (expected "
                      f"{Path(args.data_root) / 'benchmark'}/<name>/HR); evaluating {', '.join(names)} of the "
                      f"paper's {len(STANDARD_BENCHMARKS)} benchmarks", file=sys.stderr)
    datasets = [open_dataset(args.data_root, name, scale) for name in dict.fromkeys(names)]
    for data in datasets:
        if isinstance(data, BenchmarkSet):
            data.check_sizes()  # from the files' headers, before any image is upscaled
    return datasets


def run(args) -> int:
    from cfin.config import impl_switches
    from cfin.device import resolve_device
    from cfin.evaluate import evaluate_model
    from cfin.paths import output_dir

    device = resolve_device(args.device)
    check_seed("--seed", args.seed)
    if args.impl is not None:
        impl_switches(args.impl)  # named before any work, and with --model bicubic too, which ignores it
    if args.save_images:
        output_dir(args.save_images, "--save-images")
    if args.tile is None and args.tile_overlap is not None:
        raise CFINError(f"--tile-overlap {args.tile_overlap} given without --tile; tiling is off unless "
                        f"--tile N names the LR tile size")
    if args.tile_overlap is None:
        args.tile_overlap = TILE_OVERLAP
    if args.tile is not None and (args.tile < 1 or args.tile_overlap < 0):
        raise CFINError(f"--tile must be >= 1 and --tile-overlap >= 0; got {args.tile}, {args.tile_overlap}")
    main_protocol, also = _protocols(args)
    model, scale, label = _load_model(args)
    datasets = _datasets(args, scale)
    results = evaluate_model(model, scale, datasets, self_ensemble=args.self_ensemble, tile=args.tile,
                             tile_overlap=args.tile_overlap, device=device, per_image=args.per_image,
                             save_dir=args.save_images, seed=args.seed, tf32=args.tf32,
                             protocol=main_protocol.name, also=also)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    plus = " + self-ensemble" if args.self_ensemble else ""
    arithmetic = (", TF32" if args.tf32 else ", float32") if device.type == "cuda" else ""
    print(f"{label}{plus}, x{scale}, {device}{arithmetic}; Y channel, {scale}-pixel border cropped; protocol "
          f"{main_protocol.name} ({main_protocol.label})")
    if args.tile is not None:
        print(f"tiled: {args.tile}x{args.tile} LR tiles with {args.tile_overlap} pixels of context; the "
              f"attention and pooling see a tile, not the image: not comparable with whole-image scores")
    print(f"{'dataset':<12} {'images':>6} {'PSNR':>8} {'SSIM':>7}" + "".join(f"  {p:>18}" for p in also))
    for name, r in results.items():
        print(f"{name:<12} {r['images']:>6} {r['psnr']:>8.2f} {r['ssim']:>7.4f}"
              + "".join(f"  {r['protocols'][p]['psnr']:>11.3f}/{r['protocols'][p]['ssim']:.4f}" for p in also))
        for row in r.get("per_image", []):
            print(f"  {row['name']:<16} {row['psnr']:>8.2f} {row['ssim']:>7.4f}")
    return 0


def _protocols(args):
    """(the main protocol, the names of the others to score too) from --protocol / --protocols."""
    from cfin.protocols import DEFAULT_PROTOCOL, PROTOCOLS, protocol

    main = protocol(args.protocol or DEFAULT_PROTOCOL)
    names = args.protocols or []
    if names == ["all"]:
        names = list(PROTOCOLS)
    for name in names:
        protocol(name)
    return main, [n for n in dict.fromkeys(names) if n != main.name]
