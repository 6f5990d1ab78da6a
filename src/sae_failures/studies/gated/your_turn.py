"""Notebook 04's "your turn" checks: the 1-d shrinkage example (GS-2) at the student's penalty."""

from __future__ import annotations

from sae_failures.engine.your_turn import Outcome, judge
from sae_failures.studies.gated.experiment import shrinkage_example

TOLERANCE = 0.03
WHY = {
    "baseline": lambda lam: (f"The baseline pays λ on its activation itself: it minimises (1 − f)² + λ f, so f = 1 − λ/2 "
                             f"= {max(1 - lam / 2, 0):.3g} (0 from λ = 2: the latent dies). A Gated SAE pays λ on its "
                             "gate alone and reconstructs 1 while its gate is open."),
    "gated": lambda lam: ("The magnitude path pays no penalty, so while the gate is open the Gated SAE reconstructs "
                          "x = 1 exactly. But the gate still pays λ, and the auxiliary loss asks the gate path alone to "
                          "reconstruct x: the baseline's problem, (1 − π)² + λπ, with π = 1 − λ/2 = "
                          f"{1 - lam / 2:.3g}. From λ = 2 the gate closes and the latent dies, as the baseline's does: "
                          "gating removes the shrinkage of what fires, not the threshold for firing."),
}


def one_dimension(lam: float, my_prediction: float | None, kind: str = "baseline") -> Outcome:
    """Train the ``kind`` SAE ("baseline" or "gated") on x = 1 in one dimension under penalty
    ``lam`` and check the student's predicted reconstruction."""
    if kind not in WHY:
        raise ValueError(f"kind must be one of {', '.join(map(repr, WHY))}, got {kind!r}.")
    return judge(my_prediction, lambda: shrinkage_example(kind, l1=lam).reconstruction, TOLERANCE, WHY[kind](lam))
