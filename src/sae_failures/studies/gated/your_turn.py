"""Notebook 04's "your turn" checks: the 1-d shrinkage example (GS-2) at the student's penalty."""

from __future__ import annotations

from sae_failures.engine.your_turn import Outcome, judge
from sae_failures.studies.gated.experiment import shrinkage_example

TOLERANCE = 0.03


def one_dimension(lam: float, my_prediction: float | None) -> Outcome:
    """Train the baseline SAE on x = 1 in one dimension under penalty ``lam`` and check the
    student's predicted reconstruction."""
    why = (f"The baseline pays λ on its activation itself: it minimises (1 − f)² + λ f, so f = 1 − λ/2 = "
           f"{max(1 - lam / 2, 0):.3g}. A Gated SAE pays λ on its gate alone and reconstructs 1 at any λ.")
    return judge(my_prediction, lambda: shrinkage_example("baseline", l1=lam).reconstruction, TOLERANCE, why)
