"""One headline verdict per claim: the combining rule and the magnitude against the paper's."""

import pytest

from sae_failures.engine.headline import DIRECTION, HEADLINES, MATCHED, counts, headline, magnitude


def test_magnitude_is_matched_within_a_factor_of_two_of_the_papers_effect_and_its_sign():
    assert magnitude(0.65, 0.65) == magnitude(0.33, 0.65) == magnitude(1.3, 0.65) == MATCHED
    assert magnitude(0.32, 0.65) == magnitude(1.31, 0.65) == DIRECTION  # just outside 1/2 and 2
    assert magnitude(-0.65, 0.65) == DIRECTION  # the opposite sign
    assert magnitude(-0.1, -0.09) == MATCHED
    assert magnitude(float("nan"), 0.65) == DIRECTION
    with pytest.raises(ValueError, match="nonzero effect size"):
        magnitude(0.0, 0.0)


def test_the_headline_rule():
    assert headline("reproduced") == headline("reproduced", MATCHED) == "reproduced"
    assert headline("reproduced", DIRECTION) == "direction only"
    assert headline("partial", DIRECTION) == "partial"  # the size qualifies a claim that held, only
    assert headline("not_reproduced") == "not reproduced"
    assert headline("reproduced", undecided=True) == headline("not_reproduced", undecided=True) == "undecided"
    assert headline("unmeasurable", undecided=True) == "unmeasurable"  # nothing to decide
    assert headline("not_attempted") == "not attempted"
    assert set(map(headline, ("reproduced", "partial", "not_reproduced", "unmeasurable", "not_attempted"))) | {
        "undecided", "direction only"} == set(HEADLINES)


def test_counts_list_every_headline_and_refuse_unknown_ones():
    tally = counts(["reproduced", "partial", "reproduced"])
    assert list(tally) == list(HEADLINES) and tally["reproduced"] == 2 and tally["undecided"] == 0
    with pytest.raises(ValueError, match=r"Unknown headline\(s\) \['held'\]"):
        counts(["held"])
