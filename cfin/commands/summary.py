"""``cfin summary``: the module tree with parameter counts per block."""
from __future__ import annotations

from torch import nn

from cfin.commands._common import add_model_arguments, check_at_least, config_from_args


def add_arguments(parser):
    add_model_arguments(parser)
    parser.add_argument("--depth", type=int, default=3, help="tree depth to print, at least 1 (default 3)")


def module_rows(model: nn.Module, depth: int):
    """(indented name, class, own-and-children parameter count) for modules up to ``depth``."""
    def walk(mod, name, level):
        n = sum(p.numel() for p in mod.parameters())
        yield ("  " * level + (name or "CFIN"), type(mod).__name__, n)
        if level < depth:
            for child_name, child in mod.named_children():
                yield from walk(child, child_name, level + 1)
    yield from walk(model, "", 0)


def run(args) -> int:
    from cfin.models import CFIN

    check_at_least("--depth", args.depth, 1)
    cfg = config_from_args(args)
    model = CFIN(cfg)
    rows = list(module_rows(model, args.depth))
    width = max(len(r[0]) for r in rows) + 2
    cls_w = max(len(r[1]) for r in rows) + 2
    print(f"CFIN x{cfg.scale}: {cfg}")
    print(f"{'module':<{width}}{'class':<{cls_w}}{'params':>12}")
    for name, cls, n in rows:
        print(f"{name:<{width}}{cls:<{cls_w}}{n:>12,}")
    total = sum(p.numel() for p in model.parameters())
    print(f"total parameters (all used in forward): {total:,}")
    return 0
