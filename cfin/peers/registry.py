"""The peer registry: every rebuilt network of another method, built by name.

A peer module (``cfin/peers/imdn.py``, ...) defines its network and a tuple ``SPECS`` of
:class:`PeerSpec`, one per registered name (a method and its smaller or larger variant, e.g.
``fdiwn`` and ``fdiwn-m``, share a module). :data:`PEER_MODULES` lists those modules: the
registry imports them on first use, in that order. There is no folder scanning and no plugin
hook: a new peer is one module and one line here.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from cfin.errors import CFINError

# The modules that define peers, in the order the registry lists them.
PEER_MODULES: tuple[str, ...] = (
    "cfin.peers.imdn",
    "cfin.peers.pan",
    "cfin.peers.rfdn",
    "cfin.peers.swinir",
    "cfin.peers.esrt",
    "cfin.peers.lbnet",
    "cfin.peers.latticenet",
    "cfin.peers.awsrn",
    "cfin.peers.maffsrn",
    "cfin.peers.emasrn",
    "cfin.peers.fdiwn",
    "cfin.peers.smsr",
    "cfin.peers.ecbsr",
    "cfin.peers.carn",
    "cfin.peers.idn",
    "cfin.peers.memnet",
    "cfin.peers.lapar",
    "cfin.peers.drsan",
)


@dataclass(frozen=True)
class Source:
    """Where a peer's shapes and key names were read: a public repository at a commit.

    Args:
        repo: ``owner/name`` on GitHub.
        commit: the commit (short sha) read.
        paths: the files in it that define the network.
    """

    repo: str
    commit: str
    paths: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit} ({', '.join(self.paths)})"


@dataclass(frozen=True)
class OwnCount:
    """A method's own counting rule (the ``own`` convention of :mod:`cfin.complexity`).

    Args:
        label: what the rule counts and whose it is ("SwinIR's flops(): ...").
        count: ``count(model, (B, 3, H, W)) -> (params, multi_adds)``; ``model`` is on the meta device.
    """

    label: str
    count: Callable[[nn.Module, tuple[int, int, int, int]], tuple[int, int]]


@dataclass(frozen=True)
class PeerSpec:
    """One registered network of another method.

    Args:
        name: the registry key, lower case as the paper prints it (``imdn``, ``swinir-light``).
        title: the method as CFIN's tables print it (``IMDN``, ``SwinIR*``).
        paper: the method's own paper (authors, title, venue, year).
        source: the public code its shapes, widths and key names were read from.
        scales: the upscaling factors it is built for (the scales its tables print).
        builder: ``builder(scale) -> nn.Module``: the network, RGB in [0, 255] in and out
            whatever range its weights were trained in (``trained_range``).
        trained_range: the pixel range its released weights expect (1.0 or 255.0); the network
            converts at its input and output, so callers always pass [0, 255].
        tables: the rows of CFIN's tables it serves (``("I", "IX")``).
        printed_counting: which counting reproduces the Params / Multi-Adds its paper printed, as
            measured (a convention of :mod:`cfin.complexity` and the numbers), or what was tried.
        own_count: the method's own counting rule (:class:`OwnCount`) where its paper used one that no
            shared convention reproduces (e.g. a model's ``flops()``); None where it has none.
        key_map: maps a released checkpoint's key (after a ``module.`` prefix is dropped) to ours;
            None: the same keys.
        unused: names (regular-expression prefixes) of parameters the public code registers but
            its forward never reads: kept so that released weights load strictly, named so that a
            missing gradient is explained.
        weights: released checkpoint file names this peer reads, by scale (``{4: "IMDN_x4.pth"}``).
        notes: what a reader must know (where the rebuild differs from the public code and why).
    """

    name: str
    title: str
    paper: str
    source: Source
    scales: tuple[int, ...]
    builder: Callable[[int], nn.Module]
    trained_range: float = 255.0
    tables: tuple[str, ...] = ()
    printed_counting: str = ""
    own_count: OwnCount | None = None
    key_map: Callable[[str], str] | None = None
    unused: tuple[str, ...] = ()
    weights: dict[int, str] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        if self.name != self.name.lower() or " " in self.name:
            raise CFINError(f"peer name {self.name!r} must be lower case without spaces")
        if not self.scales or any(s not in (2, 3, 4) for s in self.scales):
            raise CFINError(f"peer {self.name!r}: scales must be among 2, 3, 4, got {self.scales}")
        if self.trained_range not in (1.0, 255.0):
            raise CFINError(f"peer {self.name!r}: trained_range is 1.0 or 255.0, got {self.trained_range}")


_REGISTRY: dict[str, PeerSpec] = {}


def _registry() -> dict[str, PeerSpec]:
    if not _REGISTRY:
        for module in PEER_MODULES:
            for spec in importlib.import_module(module).SPECS:
                if spec.name in _REGISTRY:
                    raise CFINError(f"peer {spec.name!r} is registered twice ({module})")
                _REGISTRY[spec.name] = spec
    return _REGISTRY


def names() -> list[str]:
    """Every registered peer, in registry order."""
    return list(_registry())


def unknown_peer(name: str) -> CFINError:
    """The error for a name that is not registered: the close matches, then every valid name."""
    valid = names()
    close = difflib.get_close_matches(str(name).lower(), valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return CFINError(f"unknown model {name!r}{hint}; valid: cfin, {', '.join(valid)}")


def spec(name: str) -> PeerSpec:
    """The :class:`PeerSpec` registered as ``name`` (case-insensitive); a CFINError listing the valid names."""
    key = str(name).strip().lower()
    registry = _registry()
    if key not in registry:
        raise unknown_peer(name)
    return registry[key]


def check_scale(peer: PeerSpec, scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in peer.scales:
        raise CFINError(f"{peer.name} is built at x{', x'.join(map(str, peer.scales))} (the scales its tables "
                        f"print); got scale {scale!r}")
    return scale


def build(name: str, scale: int = 4) -> nn.Module:
    """The network registered as ``name`` at ``scale``, with random weights, in train mode.

    It takes and returns RGB in [0, 255] (N x 3 x H x W -> N x 3 x sH x sW) like CFIN, and
    carries ``peer`` (its name) and ``scale``.
    """
    peer = spec(name)
    model = peer.builder(check_scale(peer, scale))
    model.peer = peer.name
    model.scale = scale
    return model
