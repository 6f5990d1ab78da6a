"""The toy generator: firing rates and co-occurrence rules match their configuration."""

from __future__ import annotations

import pytest
import torch

from sae_failures.engine.toy_data import ToySetup, build_dictionary, build_generator
from sae_failures.studies.broken_latents.toy_worlds import BL_SETUPS, get_setup

N = 400_000


def rates(f: torch.Tensor) -> torch.Tensor:
    return (f > 0).float().mean(0)


def test_gated_child_fires_only_with_its_parent_at_the_configured_marginal():
    f = build_generator(get_setup("absorption"), seed=0).sample(N)
    assert torch.all(f[f[:, 1] > 0, 0] > 0)  # f1 => f0
    r = rates(f)
    assert r[0] == pytest.approx(0.25, abs=0.005)
    assert r[1] == pytest.approx(0.05, abs=0.003)  # 0.25 * 0.2
    assert r[2] == pytest.approx(0.05, abs=0.003)
    assert set(f.unique().tolist()) == {0.0, 1.0}


def test_single_latent_children_fire_with_probability_given_parent():
    f = build_generator(get_setup("single_latent"), seed=1).sample(N)
    parent = f[:, 0] > 0
    assert rates(f)[0] == pytest.approx(0.3, abs=0.005)
    assert (f[parent, 1] > 0).float().mean() == pytest.approx(0.4, abs=0.006)
    assert (f[parent, 2] > 0).float().mean() == pytest.approx(0.4, abs=0.006)
    assert not torch.any(f[~parent, 1:3] > 0)
    assert rates(f)[3] == pytest.approx(0.2, abs=0.005)


def test_forced_parent_fires_whenever_a_child_does():
    setup = get_setup("cooc_a")
    f = build_generator(setup, seed=2).sample(N)
    child = (f[:, 5] > 0) | (f[:, 7] > 0)
    assert torch.all(f[child, 12] == setup.magnitudes[12])
    p = setup.firing_probabilities
    expected = 1 - (1 - p[12]) * (1 - p[5]) * (1 - p[7])
    assert rates(f)[12] == pytest.approx(expected, abs=0.005)
    assert rates(f)[5] == pytest.approx(p[5], abs=0.004)  # children keep their own rate


def test_too_narrow_magnitudes_and_expected_mse_rank_features_4_to_8_first():
    setup = get_setup("too_narrow")
    f = build_generator(setup, seed=3).sample(N)
    assert rates(f)[19] == pytest.approx(0.3, abs=0.005)
    assert rates(f)[0] == pytest.approx(0.015, abs=0.002)
    assert f[:, 0].max() == 20.0 and f[:, 19].max() == 1.0
    assert sorted(setup.expected_mse().topk(5).indices.tolist()) == [4, 5, 6, 7, 8]
    assert int(setup.expected_mse().argmax()) == 6


def test_fast_generator_matches_sae_lens_sampling():
    setup = get_setup("cooc_b")
    fast = build_generator(setup, seed=4).sample(N)
    reference = build_generator(setup, fast=False).sample(N)
    assert torch.allclose(rates(fast), rates(reference), atol=0.006)
    assert torch.allclose(fast.mean(0), reference.mean(0), atol=0.06)


def test_streams_are_reproducible_per_seed():
    setup = get_setup("too_wide")
    a = build_generator(setup, seed=5).sample(64)
    b = build_generator(setup, seed=5).sample(64)
    c = build_generator(setup, seed=6).sample(64)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dictionaries_orthonormal_or_near_orthogonal_in_superposition():
    phi = build_dictionary(get_setup("too_narrow"), seed=0).feature_vectors.detach()
    assert torch.allclose(phi @ phi.T, torch.eye(20), atol=1e-5)
    phi = build_dictionary(get_setup("superposition"), seed=0).feature_vectors.detach()
    assert phi.shape == (20, 19)
    cos = phi @ phi.T
    off = cos[~torch.eye(20, dtype=torch.bool)].abs()
    assert torch.allclose(cos.diagonal(), torch.ones(20), atol=1e-5)
    assert off.max() < 0.06 and off.mean() == pytest.approx(1 / 19, abs=0.005)


def test_every_posts_setup_is_defined():
    assert set(BL_SETUPS) == {"absorption", "too_wide", "too_wide_cooc", "too_wide_cooc_gated", "too_narrow", "cooc_a",
                              "cooc_b", "superposition", "single_latent"}


def test_bad_setups_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match="Valid setups: absorption"):
        get_setup("nope")
    with pytest.raises(ValueError, match=r"names features \[7\]; valid: 0..3"):
        ToySetup("bad", 10, (0.1,) * 4, (1.0,) * 4, forced=((0, (7,)),))
    with pytest.raises(ValueError, match="4 firing probabilities but 3 magnitudes"):
        ToySetup("bad", 10, (0.1,) * 4, (1.0,) * 3)
