"""The methods CFIN's tables compare against, rebuilt in this project's own code.

    import cfin.peers
    cfin.peers.names()                                # every registered network
    net = cfin.peers.build("imdn", scale=4)           # random weights; RGB in [0, 255] in and out
    net = cfin.peers.load("imdn", "IMDN_x4.pth", 4)   # released weights, strictly, eval mode
    cfin.peers.spec("imdn").source                    # the repository and commit it was read from

One module per method (:data:`cfin.peers.registry.PEER_MODULES`); each names its paper, the
public code its shapes and key names were read from, the rows of Tables I, II and IX it
serves, and which counting reproduces its printed Params and Multi-Adds.
"""
from cfin.peers.loading import load, read_state_dict
from cfin.peers.registry import PEER_MODULES, OwnCount, PeerSpec, Source, build, names, spec

__all__ = ["build", "load", "names", "spec", "read_state_dict", "OwnCount", "PeerSpec", "Source", "PEER_MODULES"]
