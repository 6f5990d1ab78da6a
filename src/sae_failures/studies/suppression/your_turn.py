"""Notebook 01's "your turn" checks: the one-feature toy (FS-1) at the student's knob."""

from __future__ import annotations

from sae_failures.engine.your_turn import Outcome, judge
from sae_failures.studies.suppression.experiment import (
    TOY_D,
    predicted_activation,
    train_single_feature,
)

TOLERANCE = 0.03  # the toy SAE lands within 0.02 of m - c d / 2 (FS-1's rule); a prediction within 0.03 is right


def one_feature(c: float, m: float, my_prediction: float | None, p: float = 0.05, d: int = TOY_D) -> Outcome:
    """Train the one-latent SAE on a feature of strength ``m`` under L1 coefficient ``c`` and
    check the student's predicted activation."""
    answer = predicted_activation(m, c, d)
    why = (f"Each unit of activation costs c·d = {c * d:g} in penalty and saves 2(m − a) in error, so the SAE "
           f"stops where they balance, a = m − c·d/2 = {m:g} − {c * d / 2:g} = {answer:.3g}"
           + (" (below zero: the latent dies)." if m < c * d / 2 else ".")
           + " Doubling c doubles the suppression, whatever the firing probability.")
    return judge(my_prediction, lambda: train_single_feature(p, m, c, d), TOLERANCE, why)
