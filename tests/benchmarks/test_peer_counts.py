"""How long counting every rebuilt peer takes (skipped by default: ``--benchmark-skip``).

    python -m pytest tests/benchmarks/test_peer_counts.py -o addopts=""

The issue's target: every peer at every scale under every convention that runs on meta tensors
(paper, full, ptflops, ptflops_aten, own), under a minute in all on a 2-core CPU. fvcore is not
among them: it traces real tensors at 720p, about a minute for CFIN alone.
"""
from __future__ import annotations

import torch

import cfin.peers
from cfin.complexity import count
from cfin.complexity.conventions import CONVENTIONS, applies


def count_every_peer() -> float:
    """Seconds the counts themselves took (imports and network construction excluded)."""
    total = 0.0
    for name in cfin.peers.names():
        for scale in cfin.peers.spec(name).scales:
            with torch.device("meta"):
                model = cfin.peers.build(name, scale)
            for conv, c in CONVENTIONS.items():
                if not c.needs_data and applies(conv, model):
                    total += count(model, convention=conv).seconds
    return total


def test_counting_every_peer(benchmark):
    seconds = benchmark.pedantic(count_every_peer, rounds=1, iterations=1)
    assert seconds < 60, f"{seconds:.1f} s"
