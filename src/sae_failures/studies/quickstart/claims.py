"""Notebook 00's claims: a standard SAE on a real LM, on a CPU.

No wall-clock time enters a claim (two identical runs give identical claims); training
time is printed by the notebook and kept in ``timings.json``.
"""

from __future__ import annotations

from typing import Any

from sae_failures.engine.claims import Claim, rule, verdict
from sae_failures.engine.sites import SiteData, site_setup
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.splicing import CELosses
from sae_failures.profiles import Profile

# Verdict rules, fixed before the runs.
QS1_RECOVERED, QS1_PARTLY_RECOVERED = 0.8, 0.5


@rule
def qs1(ce: CELosses, rec: dict[str, float]) -> Claim:
    return Claim("QS-1", "A standard SAE trained on a real LM on a CPU recovers most of the CE loss",
                 "(ours) CE recovered > 0.8",
                 f"CE recovered {ce.recovered:.3f}, L0 {rec['l0']:.1f}, FVU {rec['fvu']:.3f}",
                 verdict(ce.recovered > QS1_RECOVERED, partially=ce.recovered > QS1_PARTLY_RECOVERED),
                 evidence="quickstart_sae.png")


@rule
def qs2(rec: dict[str, float]) -> Claim:
    return Claim("QS-2", "The L1 penalty shrinks reconstructions: L2 ratio < 1 (see notebook 01, FS-2)",
                 "< 1 (Wright & Sharkey)", f"L2 ratio {rec['l2_ratio']:.3f}, gamma {rec['gamma']:.3f}",
                 verdict(rec["l2_ratio"] < 1), evidence="quickstart_sae.png (right)")


def setup(settings: Profile, data: SiteData, ce_tokens: int, spec: SAESpec) -> dict[str, Any]:
    """What notebook 00's claims were measured under."""
    return {**site_setup(settings, data, ce_tokens), "sae": spec.to_dict()}
