"""The ``own`` convention: a peer method's own counting rule, the one its paper's numbers came from.

Each method counted its Params and Multi-Adds its own way (a ``flops()`` method written into
the model, an analytic formula in the paper, a counting library's rules of the day). Where that
rule is not one of the shared conventions, the peer's :class:`~cfin.peers.PeerSpec` carries it
as ``own_count``, and this module runs it on the meta-device copy of the network.
"""
from __future__ import annotations

import time

from cfin.complexity.counts import Counts, input_shape, meta_model
from cfin.errors import CFINError


def count_own(model_or_config, lr_size=None, batch: int = 1) -> Counts:
    """Params and Multi-Adds under the peer's own rule; a CFINError where the network has none."""
    from cfin.peers import spec

    peer = getattr(model_or_config, "peer", None)
    if peer is None:
        raise CFINError("the 'own' convention is a peer method's own counting rule; CFIN's own is the "
                        "'paper' convention (the torchsummaryX rule its paper used)")
    own = spec(peer).own_count
    if own is None:
        raise CFINError(f"{spec(peer).title} has no counting rule of its own here: "
                        f"{spec(peer).printed_counting or 'its printed numbers follow a shared convention'}")
    t0 = time.perf_counter()
    model, _ = meta_model(model_or_config)
    shape = input_shape(model, lr_size, batch)
    params, multi_adds = own.count(model, shape)
    return Counts("own", f"own: {own.label}", shape, params=int(params), multi_adds=int(multi_adds),
                  notes=(own.label,), seconds=time.perf_counter() - t0)

