"""Sizes every study reads: dictionary sizes relative to the input width, and calibration.

The studies' own sizes live in their folders (``studies/<study>/sizes.py``); ``profiles``
puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimesD:
    """A dictionary size given as a multiple of the SAE's input width d."""

    factor: float

    def of(self, d: int) -> int:
        return round(self.factor * d)


Size = int | TimesD


def resolve(size: Size, d: int) -> int:
    """The dictionary size ``size`` means for input width ``d``."""
    return size.of(d) if isinstance(size, TimesD) else int(size)


# Calibration (``calibration``): the grid point of each architecture that landed nearest L0 64 on
# SmolLM2 layer 12 in the offline run (03: standard 2.0 -> 66, aligned 0.8 -> 78; 04: baseline 2.5
# -> 62, Gated 4.0 -> 67), and AB-2's own coefficients for sae-lens's Gated and JumpReLU.
CALIBRATION_TARGET_L0 = 64.0
CALIBRATION_REFERENCE = {"standard": 2.0, "aligned": 0.8, "standard_unit_norm": 2.5, "gated_paper": 4.0,
                         "gated": 10.0, "jumprelu": 3.0}




@dataclass(frozen=True)
class CalibrationSizes:
    """How the paper profile finds its sparsity coefficients per (model, hook, architecture)."""

    tokens: int  # training tokens of each probe SAE
    probes: int  # most probe SAEs per calibration
    tolerance: float  # accepted |L0 / target - 1|
