"""Seed-count verdicts (Wilson intervals) and decided / undecided over training length."""

from __future__ import annotations

import pytest

from sae_failures.engine.seeds import Decision, SeedCount, TrainingTrend, wilson_interval

Z2 = 1.6448536269514722 ** 2  # z of a two-sided 90% interval, squared


def test_wilson_interval_closed_forms_at_the_ends():
    # k = n: lower end n / (n + z^2); k = 0: upper end z^2 / (n + z^2)
    for n in (3, 10):
        assert wilson_interval(n, n)[0] == pytest.approx(n / (n + Z2))
        assert wilson_interval(0, n)[1] == pytest.approx(Z2 / (n + Z2))
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
    lo, hi = wilson_interval(5, 10)
    assert lo + hi == pytest.approx(1.0)  # symmetric about 1/2
    with pytest.raises(ValueError, match="0 <= held <= n"):
        wilson_interval(4, 3)


def test_seed_rule_needs_a_one_sided_interval():
    assert SeedCount(3, 3).verdict == "reproduced" and SeedCount(0, 3).verdict == "not_reproduced"
    assert SeedCount(2, 3).verdict == "partial" and not SeedCount(2, 3).one_sided
    assert SeedCount(8, 10).verdict == "reproduced" and SeedCount(7, 10).verdict == "partial"
    assert SeedCount.of([True, False, True, True]).held == 3
    assert str(SeedCount(3, 3)) == "3/3 seeds (90% Wilson 0.53-1.00)"


def test_decided_needs_settled_or_receding_training():
    settled = TrainingTrend((1_000_000, 2_000_000, 4_000_000), (0.5, 0.6, 0.605), tolerance=0.01, paper=0.9)
    rising = TrainingTrend((1_000_000, 2_000_000), (0.5, 0.6), tolerance=0.01, paper=0.9)
    receding = TrainingTrend((1_000_000, 2_000_000), (0.6, 0.5), tolerance=0.01, paper=0.9)
    assert Decision(SeedCount(0, 3), settled).decided
    assert not Decision(SeedCount(0, 3), rising).decided
    assert str(Decision(SeedCount(0, 3), rising)).startswith("undecided: 0/3 seeds")
    assert "still moving toward the paper's 0.9 at 2M tokens (+0.1" in str(rising)
    assert Decision(SeedCount(0, 3), receding).decided and "moving away" in str(receding)
    no_number = TrainingTrend((1_000_000, 2_000_000), (0.5, 0.6), tolerance=0.01)
    assert str(no_number) == "still changing at 2M tokens (+0.1 over 1M -> 2M tokens)" and not no_number.moving_away
    threshold = TrainingTrend((1_000_000, 2_000_000), (0.5, 0.6), 0.01, paper=2.0, target_name="the rule's threshold")
    assert str(threshold).startswith("still moving toward the rule's threshold 2 at 2M")
    assert not Decision(SeedCount(2, 3), settled).decided  # the seeds disagree
    assert Decision(SeedCount(3, 3), None).decided  # read at one budget: seeds alone


def test_trends_need_doubling_budgets():
    with pytest.raises(ValueError, match="must double"):
        TrainingTrend((1_000_000, 3_000_000), (0.1, 0.2), tolerance=0.01)


def test_seeds_that_agree_on_partial_stay_partial():
    assert SeedCount.of_verdicts(["partial"] * 3).verdict == "partial"  # not a failure
    assert SeedCount.of_verdicts(["not_reproduced"] * 3).verdict == "not_reproduced"
    assert SeedCount.of_verdicts(["reproduced"] * 3).verdict == "reproduced"
    assert SeedCount.of_verdicts(["partial"] + ["not_reproduced"] * 9).verdict == "not_reproduced"  # 1/10 partly
    assert SeedCount.of_verdicts(["partial"] * 3 + ["not_reproduced"] * 7).verdict == "partial"  # 3/10: can't say
    mixed = SeedCount.of_verdicts(["reproduced", "partial", "not_reproduced"])
    assert (mixed.held, mixed.partly, mixed.n) == (1, 1, 3) and not mixed.one_sided
    assert str(mixed) == "1/3 seeds (+1 partial) (90% Wilson 0.08-0.75)"
    with pytest.raises(ValueError, match="0 <= held <= n"):
        SeedCount(2, 3, partly=2)
