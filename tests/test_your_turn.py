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


def test_the_rare_feature_check_finds_the_same_suppression_at_any_firing_probability():
    """The second cell of notebook 01: a feature firing in 1% of inputs loses c·d/2 like any other."""
    right = suppression_turn.one_feature(c=0.05, m=2.0, my_prediction=1.6, p=0.01)
    assert right.right and right.observed == pytest.approx(1.6, abs=0.02)
    assert suppression_turn.one_feature(c=0.05, m=2.0, my_prediction=1.8, p=0.01).right is False  # "rare: less shrunk"


def test_a_choice_is_judged_by_the_word_and_a_word_outside_the_choices_is_refused():
    from sae_failures.engine.your_turn import DIRECTIONS, judge_choice

    right = judge_choice("lower", lambda: ("lower", "L0 30 then 12"), DIRECTIONS, "why")
    assert right.right and repr(right) == "Right: you predicted 'lower'; the SAE gave 'lower' (L0 30 then 12). why"
    assert judge_choice("higher", lambda: ("lower", ""), DIRECTIONS, "why").right is False
    assert repr(judge_choice(None, lambda: pytest.fail("ran without a prediction"), DIRECTIONS, "why")) == ASK
    with pytest.raises(ValueError, match=r"^my_prediction must be one of 'higher', 'same', 'lower', got 'down'\.$"):
        judge_choice("down", lambda: ("lower", ""), DIRECTIONS, "why")


def test_compare_names_the_direction_and_calls_small_changes_the_same():
    from sae_failures.engine.your_turn import compare

    assert compare(12.0, 30.0, 0.05) == "lower" and compare(31.0, 30.0, 0.05) == "same"
    assert compare(0.4, 0.3, 0.05) == "higher" and compare(0.0, 0.0, 0.05) == "same"


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory):
    """One cache for this module's toy SAEs: the explorer and the co-occurrence check share BL-1's world."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAE_FAILURES_DATA", str(tmp_path_factory.mktemp("toys") / "data"))
        yield


@pytest.fixture
def small_site(sparse_store):
    """Notebook 00's inputs on 3 sparse features in 16 dims: a SiteData, and a 64-latent standard SAE's spec."""
    from sae_failures.engine.sites import SiteData
    from sae_failures.engine.specs import Site, standard_spec

    store, _ = sparse_store
    data = SiteData(Site("synthetic", "synthetic", store.spec.hook), None, store, store, None, 0)
    return data, standard_spec(store.spec, 8192, 256, d_model=16, l1=0.3)


def test_the_l1_check_sees_l0_fall_when_the_coefficient_doubles(small_site):
    from sae_failures.studies.quickstart import your_turn as quickstart_turn

    data, spec = small_site
    right = quickstart_turn.l1_coefficient(data, spec, 4 * spec.sparsity, "lower")
    assert right.right, repr(right)
    assert quickstart_turn.l1_coefficient(data, spec, 4 * spec.sparsity, "higher").right is False


def test_the_width_check_sees_fvu_rise_with_fewer_latents_than_features(small_site):
    from sae_failures.studies.quickstart import your_turn as quickstart_turn

    data, spec = small_site
    right = quickstart_turn.width(data, spec, 1, "higher")  # one latent for three features
    assert right.right and "with 1" in right.seen, repr(right)
    assert quickstart_turn.width(data, spec, 1, "same").right is False


def test_the_gated_check_finds_the_gate_closed_where_the_baseline_dies():
    assert gated_turn.one_dimension(lam=1.5, my_prediction=1.0, kind="gated").right  # open: no shrinkage
    closed = gated_turn.one_dimension(lam=2.5, my_prediction=0.0, kind="gated")
    assert closed.right and "From λ = 2 the gate closes" in repr(closed)
    assert gated_turn.one_dimension(lam=2.5, my_prediction=1.0, kind="gated").right is False
    with pytest.raises(ValueError, match=r"^kind must be one of 'baseline', 'gated', got 'topk'\.$"):
        gated_turn.one_dimension(lam=1.0, my_prediction=1.0, kind="topk")


def test_the_co_occurrence_check_absorbs_only_when_the_child_needs_its_parent(toy_cache):
    from sae_failures.studies.broken_latents import your_turn as toy_turn

    assert toy_turn.co_occurrence(True, "absorbed", samples_scale=0.25).right  # BL-1's own world
    independent = toy_turn.co_occurrence(False, "clean", samples_scale=0.25)
    assert independent.right, repr(independent)
    assert toy_turn.co_occurrence(False, "absorbed", samples_scale=0.25).right is False


def test_the_single_latent_check_merges_with_frequent_children_only(toy_cache):
    from sae_failures.studies.broken_latents import your_turn as toy_turn

    assert toy_turn.single_latent(0.4, "merged", samples_scale=0.1).right  # BL-10's world
    rare = toy_turn.single_latent(0.02, "clean", samples_scale=0.1)  # one latent settles in a tenth of the samples
    assert rare.right, repr(rare)


def test_changed_toy_worlds_get_names_of_their_own_and_refuse_bad_probabilities():
    from sae_failures.studies.broken_latents import your_turn as toy_turn

    names = {toy_turn.absorption_world(0.25, 0.2).name, toy_turn.absorption_world(0.25, 0.2, False).name,
             toy_turn.absorption_world(0.1 + 0.2, 0.2).name, toy_turn.single_latent_world(0.05).name, "absorption"}
    assert len(names) == 5 and toy_turn.absorption_world(0.1 + 0.2, 0.2).firing_probabilities[0] == 0.3
    assert toy_turn.absorption_world(0.25, 0.2, False).gated == ()
    with pytest.raises(ValueError, match=r"^p_child is a probability between 0 and 1, got 1\.5\.$"):
        toy_turn.absorption_world(0.25, 1.5)


def test_how_many_names_the_dead_fraction_as_the_aligned_check_asks():
    from sae_failures.studies.alignment.your_turn import how_many

    assert [how_many(f) for f in (0.68, 0.5, 0.2, 0.049, 0.0)] == ["most", "some", "some", "few", "few"]


def test_the_alignment_checks_train_the_very_saes_the_notebook_trains(small_site):
    """The your-turn cells of notebook 03 share the cache with its init check and TopK sweep."""
    from sae_failures.profiles import get_profile
    from sae_failures.studies.alignment import experiment as alignment
    from sae_failures.studies.alignment.your_turn import init_spec, topk_spec

    data, _ = small_site
    settings = get_profile("offline")
    study = alignment.study_config(settings.alignment, 16)
    notebook_init = alignment.paired_sweep(data.train.spec, study.init_check_l1, [study.width], study.sweep_tokens,
                                           settings.sae_batch_size, 0, settings.sae_autocast, study.checkpoints)
    aligned = notebook_init["aligned", study.width, study.init_check_l1["aligned"][0]]
    assert init_spec(data, study, settings, 0.1) == aligned
    assert init_spec(data, study, settings, 1.0).key() == alignment.unit_decoder_init(aligned).key()
    notebook_topk = alignment.paired_sweep(data.train.spec, {"topk": (16, 32), "aligned_topk": (16, 32)},
                                           [study.width], study.sweep_tokens, settings.sae_batch_size, 0,
                                           settings.sae_autocast)
    assert topk_spec(data, study, settings, 32) == notebook_topk["topk", study.width, 32]


def test_the_absorption_explorer_trains_both_saes_and_says_what_the_untied_one_learned(toy_cache):
    """Notebook 02's explorer at BL-1's own probabilities: the untied SAE absorbs, the tied one is clean."""
    import matplotlib

    matplotlib.use("Agg")
    from sae_failures.studies.broken_latents.plots import absorption_explorer

    fig = absorption_explorer(0.25, 0.2, samples_scale=0.25)
    assert fig._suptitle.get_text() == "P(f0) = 0.25, P(f1 | f0) = 0.2: the untied SAE absorbs f1 into f0's latents"
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 3 and "encoder = decoder" in titles[-1]  # untied encoder and decoder, then tied
