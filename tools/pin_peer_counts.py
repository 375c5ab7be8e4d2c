#!/usr/bin/env python
"""Pin a peer's counts for tests/test_peers.py: ``python tools/pin_peer_counts.py NAME [NAME ...]`` or ``--all``.

Writes tests/data/peer_counts/<name>.json: ``{"x4": {"paper": [params, multi_adds], ...}}`` at the
paper's input (1280 x 720 output) under every convention that runs on meta tensors. Run it after a
deliberate change to a peer network or a counting rule, and read the diff before committing it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cfin.atomic import atomic_write_json  # noqa: E402
from cfin.complexity import count  # noqa: E402
from cfin.complexity.conventions import applies  # noqa: E402
from cfin.errors import CFINError  # noqa: E402

CONVENTIONS = ("paper", "full", "ptflops", "ptflops_aten", "own")


def pins(name: str) -> dict:
    import cfin.peers

    out = {}
    for s in cfin.peers.spec(name).scales:
        with torch.device("meta"):
            model = cfin.peers.build(name, s)
        out[f"x{s}"] = {c: [(n := count(model, convention=c)).params, n.multi_adds]
                        for c in CONVENTIONS if applies(c, model)}
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="registered peers (cfin.peers.names())")
    p.add_argument("--all", action="store_true", help="every registered peer")
    return p


def main() -> int:
    import cfin.peers

    args = build_parser().parse_args()
    try:
        for name in (cfin.peers.names() if args.all else args.names):
            name = cfin.peers.spec(name).name
            path = atomic_write_json(ROOT / "tests" / "data" / "peer_counts" / f"{name}.json", pins(name))
            print(f"wrote {path.relative_to(ROOT)}")
    except CFINError as e:
        print(f"pin_peer_counts: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
