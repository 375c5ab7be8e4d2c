"""``cfin convert OFFICIAL.pt --scale 4 --out OURS.pt``: official state_dict -> our checkpoint."""
from __future__ import annotations

from pathlib import Path

from cfin.commands._common import check_scale
from cfin.errors import CFINError


def add_arguments(parser):
    parser.add_argument("official", help="an official model_best_x{s}.pt state_dict")
    parser.add_argument("--scale", type=int, required=True, help="2, 3 or 4 (must match the checkpoint)")
    parser.add_argument("--out", required=True, help="where to write the cfin checkpoint")
    parser.add_argument("--mask-eval", choices=["sample", "argmax"], default="sample",
                        help="Gumbel mask at inference (default: sample, as the official code)")


def run(args) -> int:
    from cfin.checkpoint import save_checkpoint
    from cfin.official import load_official
    from cfin.paths import output_file

    check_scale(args.scale)
    check_out(args.official, args.out)
    output_file(args.out, "--out", _converted, "a checkpoint cfin convert wrote")
    model = load_official(args.official, args.scale, mask_eval=args.mask_eval)
    n_drop = len(model.official_dropped)
    save_checkpoint(model, args.out, source=str(Path(args.official).resolve()), converted_from="official",
                    dropped_official_keys=model.official_dropped)
    print(f"wrote {args.out}: CFIN x{args.scale}, {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"dropped {n_drop} official tensors the official forward never uses")
    return 0


def _converted(path) -> bool:
    """Whether ``path`` is a checkpoint an earlier ``cfin convert`` wrote (not a trained one)."""
    from cfin.checkpoint import read_checkpoint

    try:
        return read_checkpoint(path).get("metadata", {}).get("converted_from") == "official"
    except CFINError:
        return False


def check_out(official: str, out: str) -> None:
    """A CFINError when ``out`` is the input file itself (the conversion would overwrite it)."""
    src, dst = Path(official), Path(out)
    if dst.resolve() == src.resolve() or (dst.exists() and src.exists() and dst.samefile(src)):
        raise CFINError(f"--out {out} is the input file {official}: writing there would overwrite the official "
                        f"checkpoint; give another --out path")
