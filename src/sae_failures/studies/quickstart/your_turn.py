"""Notebook 00's "your turn" checks: the standard SAE retrained with one knob changed, on the
notebook's own activations, against the notebook's SAE."""

from __future__ import annotations

import dataclasses

from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae
from sae_failures.engine.sites import SiteData
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.your_turn import DIRECTIONS, Outcome, compare, judge_choice

SAME_WITHIN = 0.05  # a metric within 5% of the notebook SAE's counts as "same"


def _against_notebook(data: SiteData, spec: SAESpec, changed: SAESpec, device: str) -> tuple[dict, dict]:
    x = data.x_eval()
    return (reconstruction_metrics(get_sae(spec, data.train, device=device), x),
            reconstruction_metrics(get_sae(changed, data.train, device=device), x))


def l1_coefficient(data: SiteData, spec: SAESpec, l1: float, my_prediction: str | None,
                   device: str = "cpu") -> Outcome:
    """L0 of the SAE trained at L1 coefficient ``l1`` against the notebook's (``spec``)."""
    def observe() -> tuple[str, str]:
        base, new = _against_notebook(data, spec, dataclasses.replace(spec, sparsity=l1), device)
        return compare(new["l0"], base["l0"], SAME_WITHIN), (
            f"L0 {base['l0']:.1f} at c = {spec.sparsity:g}, {new['l0']:.1f} at c = {l1:g}; "
            f"L2 ratio {base['l2_ratio']:.3f} and {new['l2_ratio']:.3f}")
    why = ("The L1 penalty charges every unit of activation, so a larger coefficient switches more latents off "
           "(L0 falls) and shrinks the ones left on (the L2 ratio falls too: notebook 01's suppression). "
           "The coefficient is the knob that trades sparsity against reconstruction.")
    return judge_choice(my_prediction, observe, DIRECTIONS, why)


def width(data: SiteData, spec: SAESpec, n_latents: int, my_prediction: str | None, device: str = "cpu") -> Outcome:
    """FVU of the SAE with ``n_latents`` latents against the notebook's, at the same L1 coefficient."""
    def observe() -> tuple[str, str]:
        base, new = _against_notebook(data, spec, dataclasses.replace(spec, width=n_latents), device)
        return compare(new["fvu"], base["fvu"], SAME_WITHIN), (
            f"FVU {base['fvu']:.3f} with {spec.width:,} latents, {new['fvu']:.3f} with {n_latents:,}; "
            f"L0 {base['l0']:.1f} and {new['l0']:.1f}")
    why = ("A latent writes one direction. With fewer of them, each must stand for more of the input, and the "
           "directions the SAE has no latent for go unreconstructed: FVU rises (with more latents it falls). "
           "Width and the L1 coefficient together set where an SAE sits on the sparsity-reconstruction frontier.")
    return judge_choice(my_prediction, observe, DIRECTIONS, why)
