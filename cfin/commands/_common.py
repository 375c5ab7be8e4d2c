"""Argument helpers shared by subcommands: which CFIN to build, and checks of shared arguments."""
from __future__ import annotations

import argparse

from cfin.config import IMPLS, PRESETS, SCALES, CFINConfig, preset
from cfin.errors import CFINError

SCALE_PRESETS = tuple(f"x{s}" for s in SCALES)  # the presets --scale picks
MAX_SEED = 2**63 - 1  # the largest seed every generator here takes (torch's is 64-bit, derive_seed's 63)


def add_model_arguments(parser: argparse.ArgumentParser, scale_default: int | None = 4) -> None:
    """``--scale``, ``--preset NAME`` and ``--config FILE.json`` (a JSON object of CFINConfig fields)."""
    parser.add_argument("--scale", type=int, default=None,
                        help=f"upscaling factor 2, 3 or 4 (default {scale_default}); picks preset x{{scale}}, "
                             f"or sets the scale of --preset tiny or of a --config file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", default=None, help=f"a named config: {', '.join(PRESETS)}")
    group.add_argument("--config", default=None, metavar="FILE.json", help="CFINConfig fields as JSON")
    parser.set_defaults(_scale_default=scale_default)


def add_impl_argument(parser: argparse.ArgumentParser, default: str | None, default_text: str) -> None:
    """``--impl faithful|fast``: which computation of the same network (:data:`cfin.config.IMPLS`)."""
    parser.add_argument("--impl", default=default, metavar="{" + ",".join(IMPLS) + "}",
                        help="how the network is computed: 'faithful' (the official code's computation) or "
                             "'fast' (the same function and weights by cfin's rewrites, outputs within 1e-3 "
                             "on the 0-255 scale; faster on a CPU, less memory on a GPU: docs/performance.md); "
                             f"default {default_text}")


def add_tf32_argument(parser: argparse.ArgumentParser) -> None:
    """``--tf32``: let a CUDA device run float32 matmuls and convolutions in TF32."""
    parser.add_argument("--tf32", action="store_true",
                        help="on CUDA, run float32 matmuls and cuDNN convolutions in TF32 (PyTorch's default for "
                             "convolutions; faster on Ampere and later, a 10-bit mantissa). Default: float32, as the "
                             "paper's GPU computed; recorded either way")


def config_from_args(args: argparse.Namespace) -> CFINConfig:
    """The CFINConfig the arguments name; ``--scale`` overrides the scale of a ``--config`` file
    or of a preset that is not a scale's own (``tiny``). ``--scale 4 --preset x2`` is an error."""
    if args.scale is not None:
        check_scale(args.scale)
    if args.config:
        cfg = CFINConfig.from_json(args.config)
    elif args.preset:
        cfg = preset(args.preset)
        if args.scale is not None and args.preset in SCALE_PRESETS and args.scale != cfg.scale:
            raise CFINError(f"--scale {args.scale} picks preset x{args.scale}, but --preset {args.preset} "
                            f"was given; give one of them")
    else:
        scale = args.scale if args.scale is not None else args._scale_default
        if scale is None:
            raise CFINError("give --scale, --preset or --config")
        cfg = preset(f"x{scale}")
    if args.scale is not None and args.scale != cfg.scale:
        cfg = cfg.replace(scale=args.scale)
    return cfg


def check_not_empty(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A CFINError naming an option given an empty value (``--out "$UNSET"``), which would otherwise
    read as the option left out or, as a path, as the current folder."""
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if any(isinstance(v, str) and not v.strip() for v in (value if isinstance(value, list) else [value])):
            name = "/".join(action.option_strings) or action.dest
            raise CFINError(f"{name} was given an empty value; give {action.metavar or action.dest.upper()}, or "
                            f"leave the option out")


def check_scale(scale: int, valid: tuple[int, ...] | None = SCALES) -> int:
    """``--scale`` if it is one of ``valid`` (None: any integer >= 2); a CFINError naming it otherwise."""
    if valid is None and scale < 2:
        raise CFINError(f"--scale {scale}: the upscaling factor must be an integer >= 2")
    if valid is not None and scale not in valid:
        raise CFINError(f"--scale {scale}: valid scales {', '.join(map(str, valid))}")
    return scale


def check_seed(flag: str, seed: int) -> int:
    """``seed`` if every generator takes it (0 .. 2**63 - 1); a CFINError naming ``flag`` otherwise."""
    if not 0 <= seed <= MAX_SEED:
        raise CFINError(f"{flag} takes an integer from 0 to 2**63 - 1 = {MAX_SEED}, got {seed}")
    return seed


def check_at_least(flag: str, value: int | None, minimum: int) -> None:
    """A CFINError naming ``flag`` when ``value`` is given and below ``minimum``."""
    if value is not None and value < minimum:
        raise CFINError(f"{flag} must be at least {minimum}, got {value}")
