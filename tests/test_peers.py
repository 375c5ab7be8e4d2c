"""Every rebuilt peer network (cfin.peers) builds, runs, trains and counts as pinned.

Parametrized over the registry, so a peer added to ``cfin.peers.registry.PEER_MODULES`` is
tested here without a line of its own: forward at every scale it is registered for on an odd
LR size (17 x 23), output ``s*H x s*W`` and finite; every parameter gets a gradient but those
its spec names unused; its counts under the meta-tensor conventions equal the pins in
``tests/data/peer_counts/<name>.json`` (``python tools/pin_peer_counts.py NAME`` writes them
after a deliberate change).
"""
from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

import cfin.peers
from cfin.complexity import count
from cfin.errors import CFINError
from cfin.paths import REPO_ROOT
from cfin.runner.measure import peer_complexity

PINS = REPO_ROOT / "tests" / "data" / "peer_counts"
PINNED_CONVENTIONS = ("paper", "full", "ptflops", "ptflops_aten", "own")
CASES = [(name, s) for name in cfin.peers.names() for s in cfin.peers.spec(name).scales]
ODD_LR = (17, 23)


def _unused(name: str, param_name: str) -> bool:
    return any(re.match(p, param_name) for p in cfin.peers.spec(name).unused)


@pytest.mark.parametrize("name, scale", CASES, ids=[f"{n}-x{s}" for n, s in CASES])
def test_forward_and_gradients_at_an_odd_size(name, scale, one_thread):
    torch.manual_seed(0)
    model = cfin.peers.build(name, scale)
    assert model.peer == name and model.scale == scale
    x = torch.rand(1, 3, *ODD_LR) * 255
    out = model.train()(x)
    assert out.shape == (1, 3, ODD_LR[0] * scale, ODD_LR[1] * scale)
    assert torch.isfinite(out).all()
    F.l1_loss(out, torch.full_like(out, 128.0)).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    no_grad = sorted(n for n, p in trainable.items() if p.grad is None or not torch.isfinite(p.grad).all())
    named_unused = sorted(n for n in trainable if _unused(name, n))
    assert no_grad == named_unused, (f"{name} x{scale}: parameters without a gradient {no_grad}; the spec names "
                                     f"unused {named_unused}")
    with torch.no_grad():
        assert torch.isfinite(model.eval()(x)).all()


@pytest.mark.parametrize("name", cfin.peers.names())
def test_counts_are_the_pinned_ones(name):
    """Params and Multi-Adds at the paper's input (1280 x 720 output) under every meta-tensor
    convention, at every scale: a change to the network or to a counting rule shows here."""
    path = PINS / f"{name}.json"
    assert path.is_file(), f"no pins for {name}: run python tools/pin_peer_counts.py {name}"
    pins = json.loads(path.read_text())
    spec = cfin.peers.spec(name)
    assert sorted(pins) == sorted(f"x{s}" for s in spec.scales)
    for s in spec.scales:
        # the counts the reports use (cached per process: tests/test_committed_reports.py's too)
        counted = peer_complexity(name, s, PINNED_CONVENTIONS[:-1])
        assert ("own" in counted) == (spec.own_count is not None) == ("own" in pins[f"x{s}"])
        for conv, c in counted.items():
            assert [c["params"], c["multi_adds"]] == pins[f"x{s}"][conv], f"{name} x{s} {conv}"


def test_registry_names_and_errors():
    names = cfin.peers.names()
    assert len(names) == len(set(names)) and all(n == n.lower() for n in names)
    with pytest.raises(CFINError, match=r"unknown model 'no-such-net'.*valid: cfin"):
        cfin.peers.build("no-such-net", 4)
    for name in names:
        spec = cfin.peers.spec(name)
        assert spec.source.repo and spec.source.commit and spec.paper and spec.tables, name
        assert cfin.peers.spec(name.upper()) is spec
        bad = next(s for s in (2, 3, 4, 5) if s not in spec.scales)
        with pytest.raises(CFINError, match=f"{name} is built at"):
            cfin.peers.build(name, bad)


# "715,176 / 40.89G" or "897,228 / 49,649,529,600": a count a spec's printed_counting states (Multi-Adds
# written exactly have four groups of digits at least; "964,187 / 1,148,827" lists params of two scales)
_STATED = re.compile(r"(\d{1,3}(?:,\d{3})+) / (\d{1,3}(?:,\d{3}){3,}(?![\d.,])|\d+\.(\d+)G)")
# the LR sizes a note counts at besides the paper's: "240 x 427", "264 x 184", "--lr-size 240x427"
_SIZE = re.compile(r"(\d{2,4}) ?x ?(\d{2,4})")


def _stated_problems(name: str) -> list[str]:
    """Each "params / Multi-Adds" a peer's ``printed_counting`` states whose params a convention gives at
    a scale of it must be that convention's Multi-Adds too, at the paper's input (the pins) or at an LR
    size the text names, to the digits shown; a pair no convention gives (a variant tried) is not checked."""
    from cfin.complexity.conventions import CONVENTIONS, applies

    spec = cfin.peers.spec(name)
    text = spec.printed_counting
    counted: dict[int, list[int]] = {}
    for convs in json.loads((PINS / f"{name}.json").read_text()).values():
        for params, multi_adds in convs.values():
            counted.setdefault(params, []).append(multi_adds)

    def at_named_sizes() -> None:  # only where the paper's input does not explain a stated pair
        sizes = [(int(a), int(b)) for a, b in _SIZE.findall(text)]
        for s in spec.scales:
            with torch.device("meta"):
                model = cfin.peers.build(name, s)
            for conv, c in CONVENTIONS.items():
                for size in (*sizes, *((w, h) for h, w in sizes)):
                    if c.needs_data or not applies(conv, model):
                        continue
                    try:
                        n = count(model, size, conv)
                    except CFINError:  # too small an input at this scale
                        continue
                    counted.setdefault(n.params, []).append(n.multi_adds)

    def stated_ok(m) -> bool:
        values = counted.get(int(m[1].replace(",", "")), [])
        if m[3] is None:
            return int(m[2].replace(",", "")) in values
        return any(round(v / 1e9, len(m[3])) == float(m[2][:-1]) for v in values)

    problems, recounted = [], False
    for m in _STATED.finditer(text):
        if int(m[1].replace(",", "")) not in counted:
            continue
        if not stated_ok(m) and not recounted:
            at_named_sizes()
            recounted = True
        if not stated_ok(m):
            values = counted[int(m[1].replace(",", ""))]
            problems.append(f"{name}: the note states {m[0]!r}; counted with those params: "
                            f"{sorted(set(f'{v / 1e9:.2f}G' for v in values))}")
    return problems


@pytest.mark.parametrize("name", cfin.peers.names())
def test_counts_a_note_states_are_the_measured_ones(name):
    problems = _stated_problems(name)
    assert not problems, "\n".join(problems)
