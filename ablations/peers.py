"""Other methods' rows of Tables I, II and IX: whose network is rebuilt (:mod:`cfin.peers`), and why not.

A quoted row whose network is rebuilt carries ``peer=`` (its registry name): the complexity
reports count it with the same rulers as CFIN, and its note says which counting reproduces its
printed Params and Multi-Adds (the peer's ``printed_counting``, measured). Its accuracy stays
quoted (nothing is trained here) unless released weights re-score it (``run_all.py
--peer-weights``). A row whose network is not rebuilt says why in its note.
"""
from __future__ import annotations

# The method as CFIN's tables print it -> its registry name in cfin.peers.
REBUILT = {
    "IMDN": "imdn",
    "PAN": "pan",
    "SwinIR*": "swinir-light",
    "ESRT": "esrt",
    "LBNet": "lbnet",
    "LatticeNet+": "latticenet",
    "AWSRN-M": "awsrn-m",
    "MAFFSRN": "maffsrn",
    "MAFFSRN-L": "maffsrn-l",
    "EMASRN+": "emasrn",
}

# Why the others are not rebuilt: the architecture their table quotes is not public.
NOT_REBUILT = {
    **{m: "PENDING" for m in ("MemNet", "IDN", "CARN", "MADNet", "LAPAR-A", "GLADSR", "DCDN", "SMSR", "ECBSR",
                               "PFFN", "DRSAN", "FDIWN", "FDIWN-M")},
    "RFDN": "the paper's RFDN (48 channels, 6 RFDBs) is not in its public repository (njulj/RFDN) at any commit, "
            "which builds the AIM 2020 entry E-RFDN instead: rebuilt as `e-rfdn` and counted in "
            "reports/complexity/peers.md, not as this row",
}


def quoted_fields(method: str) -> dict:
    """The :class:`~cfin.tables.Row` fields of another method's row, by the name its table prints:
    ``peer`` and a note saying which counting reproduces the printed numbers, or a note saying why
    the network is not rebuilt. A "+" row is that method's x8 self-ensemble (as CFIN+ is CFIN's)."""
    fields = {"self_ensemble": method.endswith("+")}
    if method in REBUILT:
        from cfin.peers import spec

        peer = spec(REBUILT[method])
        fields.update(peer=peer.name, note=f"quoted accuracy; network rebuilt as `{peer.name}` from "
                                           f"{peer.source.repo}@{peer.source.commit}. {peer.printed_counting}")
    else:
        fields["note"] = "quoted; not rebuilt: " + NOT_REBUILT[method]
    return fields
