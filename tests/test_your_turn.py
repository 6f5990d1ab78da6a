"""Each "your turn" check, with a right and a wrong answer, and with none."""

from __future__ import annotations

import pytest

from sae_failures.engine.your_turn import ASK
from sae_failures.studies.gated import your_turn as gated_turn
from sae_failures.studies.suppression import your_turn as suppression_turn


def test_without_a_prediction_the_check_asks_for_one_and_runs_nothing(monkeypatch):
    monkeypatch.setattr(suppression_turn, "train_single_feature", lambda *a: pytest.fail("trained without a prediction"))
    outcome = suppression_turn.one_feature(c=0.1, m=1.0, my_prediction=None)
    assert outcome.right is None and repr(outcome) == ASK


def test_the_one_feature_check_knows_right_from_wrong():
    right = suppression_turn.one_feature(c=0.1, m=1.0, my_prediction=0.2)  # 1 - 0.1 * 16 / 2
    assert right.right and repr(right).startswith("Right: you predicted 0.2; the SAE gave 0.2")
    wrong = suppression_turn.one_feature(c=0.1, m=1.0, my_prediction=0.6)  # c d / 2 of the old c
    assert wrong.right is False and repr(wrong).startswith("Not quite")
    assert "a = m − c·d/2 = 1 − 0.8 = 0.2" in repr(wrong)
    dead = suppression_turn.one_feature(c=0.1, m=0.6, my_prediction=0.0)
    assert dead.right and "the latent dies" in repr(dead)


def test_the_one_dimension_check_knows_right_from_wrong():
    assert gated_turn.one_dimension(lam=0.5, my_prediction=0.75).right
    assert gated_turn.one_dimension(lam=0.5, my_prediction=1.0).right is False  # the Gated SAE's answer


def test_a_prediction_that_is_not_a_number_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^my_prediction must be a number, got 'half'\.$"):
        gated_turn.one_dimension(lam=0.5, my_prediction="half")
