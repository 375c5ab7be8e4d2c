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
    "MemNet": "memnet",
    "IDN": "idn",
    "CARN": "carn",
    "IMDN": "imdn",
    "AWSRN-M": "awsrn-m",
    "MAFFSRN-L": "maffsrn-l",
    "LAPAR-A": "lapar-a",
    "LatticeNet+": "latticenet",
    "SMSR": "smsr",
    "ECBSR": "ecbsr",
    "DRSAN": "drsan",
    "FDIWN": "fdiwn",
    "EMASRN+": "emasrn",
    "SwinIR*": "swinir-light",
    "ESRT": "esrt",
    "LBNet": "lbnet",
    "PAN": "pan",
    "MAFFSRN": "maffsrn",
    "FDIWN-M": "fdiwn-m",
}

# Why the others are not rebuilt: the architecture their table quotes is not public (searched on
# 2026-12-07: repository names, code and issues of public GitHub, through the suite's search tool).
NOT_REBUILT = {
    "RFDN": "the paper's RFDN (48 channels, 6 RFDBs) is not in its public repository (njulj/RFDN) at any commit, "
            "which builds the AIM 2020 entry E-RFDN instead: rebuilt as `e-rfdn` and counted in "
            "reports/complexity/peers.md, not as this row",
    "MADNet": "no official code found (Lan et al., IEEE TCYB 2021); the one public 'MADNet' SR rewrite guesses its "
              "layers (about 585K params at x4 against the printed 1002K), and other MADNet repositories are "
              "other methods",
    "GLADSR": "no public code found (searched its name, its title's words and code for it)",
    "DCDN": "no public code found (searched its name, its title's words and code for it)",
    "PFFN": "no public code found (the PFFN/PFFNet repositories are dehazing or unrelated methods)",
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
