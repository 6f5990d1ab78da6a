"""Notebook 00's "your turn" checks: the standard SAE retrained with one knob changed, on the
notebook's own activations, against the notebook's SAE."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae
from sae_failures.engine.sites import SiteData
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.your_turn import DIRECTIONS, Outcome, compare, judge_choice

SAME_WITHIN = 0.05  # a metric within 5% of the notebook SAE's counts as "same"


def _against_notebook(data: SiteData, spec: SAESpec, changed: SAESpec, metric: str,
                      seen: Callable[[dict, dict], str], why: str, my_prediction: str | None,
                      device: str) -> Outcome:
    """Judge the direction ``metric`` moves from the notebook's SAE (``spec``) to ``changed``,
    both trained on the notebook's activations and measured on its held-out tokens."""
    def observe() -> tuple[str, str]:
        x = data.x_eval()
        base, new = (reconstruction_metrics(get_sae(s, data.train, device=device), x) for s in (spec, changed))
        return compare(new[metric], base[metric], SAME_WITHIN), seen(base, new)
    return judge_choice(my_prediction, observe, DIRECTIONS, why)


def l1_coefficient(data: SiteData, spec: SAESpec, l1: float, my_prediction: str | None,
                   device: str = "cpu") -> Outcome:
    """L0 of the SAE trained at L1 coefficient ``l1`` against the notebook's (``spec``)."""
    return _against_notebook(
        data, spec, dataclasses.replace(spec, sparsity=l1), "l0",
        lambda base, new: (f"L0 {base['l0']:.1f} at c = {spec.sparsity:g}, {new['l0']:.1f} at c = {l1:g}; "
                           f"L2 ratio {base['l2_ratio']:.3f} and {new['l2_ratio']:.3f}"),
        "The L1 penalty charges every unit of activation, so a larger coefficient switches more latents off "
        "(L0 falls) and shrinks the ones left on (the L2 ratio falls too: notebook 01's suppression). "
        "The coefficient is the knob that trades sparsity against reconstruction.",
        my_prediction, device)


def width(data: SiteData, spec: SAESpec, n_latents: int, my_prediction: str | None, device: str = "cpu") -> Outcome:
    """FVU of the SAE with ``n_latents`` latents against the notebook's, at the same L1 coefficient."""
    return _against_notebook(
        data, spec, dataclasses.replace(spec, width=n_latents), "fvu",
        lambda base, new: (f"FVU {base['fvu']:.3f} with {spec.width:,} latents, {new['fvu']:.3f} with "
                           f"{n_latents:,}; L0 {base['l0']:.1f} and {new['l0']:.1f}"),
        "A latent writes one direction. With fewer of them, each must stand for more of the input, and the "
        "directions the SAE has no latent for go unreconstructed: FVU rises (with more latents it falls). "
        "Width and the L1 coefficient together set where an SAE sits on the sparsity-reconstruction frontier.",
        my_prediction, device)
