"""Notebook 03's analysis: the one-point toy (AB-1), MCS (AB-4), modes and Pareto comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens.saes.gated_sae import GatedSAE, GatedSAEConfig

from sae_failures.engine.frontiers import compare, frontier, l0_at, metric_at
from sae_failures.engine.metrics import alignment_scores, bimodality
from sae_failures.engine.specs import SAESpec
from sae_failures.studies.alignment.experiment import (
    max_cosine_similarity,
    parameter_count,
    train_one_point_toy,
)


def test_one_point_toy_reaches_alignment_one_exactly_when_it_reconstructs():
    toys = [train_one_point_toy(seed, steps=1500) for seed in range(6)]
    for toy in toys:
        if toy.perfect:
            assert toy.alignment == pytest.approx(1.0, abs=1e-3)
        else:  # the ReLU closed on x: no gradient, nothing reconstructed
            assert toy.dead and toy.relative_error == pytest.approx(1.0)
    assert {toy.perfect for toy in toys} == {True, False}  # both outcomes occur


def test_max_cosine_similarity_known_cases():
    basis = torch.eye(6)
    mine = torch.stack([3 * basis[0], basis[1] + basis[2], -basis[3]])
    mcs = max_cosine_similarity(mine, basis[:3])
    assert mcs == pytest.approx([1.0, np.sqrt(0.5), 0.0], abs=1e-6)


def test_gated_alignment_uses_the_magnitude_path():
    sae = GatedSAE(GatedSAEConfig(d_in=4, d_sae=3))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(4)[:, :3])
        sae.W_dec.copy_(0.5 * torch.eye(4)[:3])
        sae.r_mag.copy_(torch.log(torch.tensor([2.0, 1.0, 4.0])))
    assert alignment_scores(sae) == pytest.approx(torch.tensor([1.0, 0.5, 2.0]))


def test_ashman_d_and_modes_separate_two_clusters_only():
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(0.0, 0.05, 300), rng.normal(1.0, 0.05, 700)])
    skewed = rng.exponential(0.2, 1000)  # one mode, long tail: Sarle's b alone would say two
    assert bimodality(two).bimodal and bimodality(two).ashman_d > 10
    assert bimodality(skewed).sarle_bimodal and not bimodality(skewed).bimodal
    high = bimodality(two).in_high_mode
    assert high.sum() == 700 and high[300:].all()


def test_aligned_has_d_sae_fewer_parameters_than_standard(sparse_store):
    store, _ = sparse_store
    counts = {v: parameter_count(SAESpec(v, store.spec, width=8, sparsity=1.0, n_tokens=4096), store.d)
              for v in ("standard", "aligned")}
    assert counts["standard"] - counts["aligned"] == 8


def test_frontier_interpolation_and_comparison():
    l0 = np.array([10, 20, 40, 15])
    metric = np.array([0.5, 0.7, 0.9, 0.4])  # (15, 0.4) is dominated by (10, 0.5)
    front = frontier(l0, metric)
    assert front[0].tolist() == [10, 20, 40] and front[1].tolist() == [0.5, 0.7, 0.9]
    assert metric_at(front, np.sqrt(10 * 20)) == pytest.approx(0.6)  # midway in log L0
    assert np.isnan(metric_at(front, 50))  # never extrapolated
    assert l0_at(front, 0.8) == pytest.approx(np.sqrt(20 * 40))
    better = (np.array([12.0, 30.0]), np.array([0.7, 0.95]))
    result = compare(better, front)
    assert result.n_compared == 2 and result.dominates
    assert not compare(front, better).dominates


def test_bimodality_of_a_point_mass_is_unimodal():
    b = bimodality(np.full(100, 0.01))
    assert b.means == (0.01, 0.01) and b.ashman_d == 0.0 and not b.bimodal


def test_compare_variants_per_group():
    import pandas as pd

    from sae_failures.engine.frontiers import compare_variants

    rows = [("std", 1, 10, 0.5), ("std", 1, 40, 0.9), ("new", 1, 20, 0.8), ("new", 1, 30, 0.9),
            ("std", 2, 10, 0.5), ("std", 2, 40, 0.9), ("new", 2, 20, 0.6)]
    results = pd.DataFrame(rows, columns=["variant", "width", "l0", "ev"])
    table = compare_variants(results, "new", "std", ["ev"])
    assert table.loc[(1, "ev"), "dominates"] and table.loc[(1, "ev"), "n_better"] == 2
    assert not table.loc[(2, "ev"), "dominates"] and table.loc[(2, "ev"), "n_worse"] == 1


def test_study_configs_have_the_papers_counts():
    from sae_failures.profiles import get_profile
    from sae_failures.studies.alignment.experiment import study_config, training_profile

    offline = study_config(get_profile("offline").alignment, 576)
    assert all(len(v) >= 4 for v in offline.sweep_l1.values()) and len(offline.sweep_widths) >= 2 and len(offline.topk_ks) >= 3
    paper = training_profile(get_profile("paper"))
    assert (paper.model, paper.default_layer) == ("EleutherAI/pythia-160m-deduped", 8)
    assert study_config(paper.alignment, 768).sweep_widths == (4096, 16384)
    assert (offline.width, offline.sweep_widths) == (2304, (2304, 4608))  # 4 x and 8 x d_model


def test_wide_reference_keeps_data_and_schedule_and_shares_no_initial_latent(sparse_store):
    from sae_failures.engine.training import build_training_sae
    from sae_failures.studies.alignment.experiment import paper_sae_spec, wide_reference

    store, _ = sparse_store
    spec = paper_sae_spec("standard", store.spec, 8, 3.0, 1024, 256, checkpoints=4)
    wide = wide_reference(spec, 4)
    assert (wide.width, wide.checkpoints) == (32, 0)
    assert (wide.activations, wide.n_tokens, wide.sparsity) == (spec.activations, 1024, 3.0)
    small, reference = build_training_sae(spec, store.d), build_training_sae(wide, store.d)
    for name in ("W_dec", "W_enc"):  # rows (decoder) and columns (encoder) of each latent
        a, b = getattr(small, name).detach(), getattr(reference, name).detach()
        a, b = (a, b) if name == "W_dec" else (a.T, b.T)
        assert not (a[:, None, :] == b[None, :, :]).all(-1).any(), f"a latent's initial {name} is shared"


def test_unit_decoder_init_starts_the_aligned_encoder_at_the_standard_scale(sparse_store):
    """sae-lens's 0.1 decoder norm makes aligned training start with ||W_enc[:, i]|| ~ 1 / 0.1."""
    from sae_failures.engine.training import build_training_sae
    from sae_failures.studies.alignment.experiment import paper_sae_spec, unit_decoder_init

    store, _ = sparse_store
    spec = paper_sae_spec("aligned", store.spec, 8, 1.0, 1024, 256, checkpoints=4)
    unit = unit_decoder_init(spec)
    assert unit.checkpoints == 0 and unit.key() != spec.key()
    for s, dec_norm in ((spec, 0.1), (unit, 1.0)):
        sae = build_training_sae(s, store.d)
        torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.full((8,), dec_norm))
        enc_norm = sae.W_enc.detach().norm(dim=0)
        # a_i = 1 = W_enc[:, i] . W_dec[i] <= |W_enc[:, i]| |W_dec[i]|, nearly tight at the start
        assert ((enc_norm * dec_norm >= 1 - 1e-5) & (enc_norm * dec_norm < 1.1)).all()


def test_init_norm_check_trains_each_spec_at_both_initial_norms(sparse_store):
    from sae_failures.engine.metrics import reconstruction_metrics
    from sae_failures.engine.saes import get_sae
    from sae_failures.studies.alignment.experiment import (
        init_norm_check,
        paired_sweep,
        unit_decoder_init,
    )

    store, _ = sparse_store
    specs = paired_sweep(store.spec, {"standard": (1.0,), "aligned": (0.5,)}, [8], 1024, 256)
    x = store.tensor()[:512]
    table = init_norm_check(specs, store, x)
    assert table[["variant", "l1", "decoder_init_norm"]].values.tolist() == [
        ["standard", 1.0, 0.1], ["standard", 1.0, 1.0], ["aligned", 0.5, 0.1], ["aligned", 0.5, 1.0]]
    unit_aligned = reconstruction_metrics(get_sae(unit_decoder_init(specs["aligned", 8, 0.5]), store), x)
    assert table.iloc[3].n_dead == unit_aligned["n_dead"]
    assert table.iloc[3].explained_variance == pytest.approx(unit_aligned["explained_variance"])


def _membership(**standard) -> pd.DataFrame:
    row = {"bimodal": True, "n_latents": 100, "n_low_mode": 20, "n_dead": 15, "n_rare": 3,
           "inactive_in_low_mode": 1.0, "low_mode_inactive": 0.9, "median_frequency_low": 0.0,
           "median_frequency_high": 0.1}
    topk = {**row, "n_low_mode": 40, "n_dead": 30}
    jumprelu = {**row, "bimodal": False}
    return pd.DataFrame({"standard": {**row, **standard}, "topk": topk, "jumprelu": jumprelu}).T


def test_ab3_without_a_low_mode_or_dead_latents_is_unmeasurable_not_a_failure():
    from sae_failures.studies.alignment.experiment import ab3

    assert ab3(_membership()).verdict == "reproduced"
    assert ab3(_membership(low_mode_inactive=0.2)).verdict == "partial"
    one_mode = ab3(_membership(bimodal=False))
    assert one_mode.verdict == "unmeasurable" and one_mode.measured == "standard: one mode"
    nothing_to_place = ab3(_membership(n_dead=0, n_rare=0, inactive_in_low_mode=float("nan")))
    assert nothing_to_place.verdict == "unmeasurable" and "no dead or rare latents" in nothing_to_place.notes
    assert "topk: 40 of 100 in the low mode, 30 dead" in nothing_to_place.notes  # reported where readable
    assert "jumprelu (one mode)" in nothing_to_place.notes and "jumprelu:" not in nothing_to_place.notes


def test_ab10_is_judged_on_topk_as_the_paper_was_and_reports_the_standard_sae():
    import pandas as pd

    from sae_failures.studies.alignment.experiment import ab10

    def snapshots(*bimodal: bool) -> pd.DataFrame:
        return pd.DataFrame({"sarle": [0.6 if b else 0.3 for b in bimodal], "ashman_d": [3.0 if b else 1.0 for b in bimodal],
                             "bimodal": list(bimodal)}, index=[0, 1000, 2000][:len(bimodal)])

    splits, stays = snapshots(False, False, True), snapshots(False, False, False)
    claim = ab10({"topk": splits, "standard": stays})
    assert claim.verdict == "reproduced" and claim.measured.startswith("TopK: 0k b 0.30 D 1.0")
    assert "standard: " in claim.measured and claim.notes.endswith("does not split from one mode to two")
    assert ab10({"topk": stays, "standard": splits}).verdict == "partial"  # the standard SAE alone
    assert ab10({"topk": snapshots(True, True), "standard": stays}).verdict == "partial"  # bimodal from the start
    assert ab10({"topk": stays, "standard": stays}).verdict == "not_reproduced"
