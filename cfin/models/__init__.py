"""CFIN and its parts, named as in the paper."""
from cfin.models.cfgt import CFGT, CGA, IGP
from cfin.models.cfin import CFIN, CTBody
from cfin.models.cgm import CGM, modulated_conv
from cfin.models.ciam import CIAM, ECA, RIFU

__all__ = ["CFIN", "CTBody", "CFGT", "CGA", "IGP", "CGM", "modulated_conv", "CIAM", "ECA", "RIFU"]
