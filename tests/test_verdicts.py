"""Verdict rules on hand-made read-outs with known answers (the notebooks only assemble these)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sae_failures.engine.splicing import CELosses
from sae_failures.studies.alignment import experiment as alignment
from sae_failures.studies.gated import experiment as gated_saes
from sae_failures.studies.quickstart import claims as quickstart
from sae_failures.studies.suppression import experiment as suppression


def test_gs5_counts_sites_at_about_half_the_l0():
    ratios = {"a": pd.Series([0.4, 0.5]), "b": pd.Series([0.9]), "c": pd.Series([], dtype=float)}
    claim = gated_saes.gs5(ratios)
    assert claim.measured == "a: 0.45, b: 0.90, c: nan"
    assert claim.verdict == "partial"  # one site of three at <= 0.6, two below 1
    assert gated_saes.gs5({"a": pd.Series([0.5]), "b": pd.Series([0.6])}).verdict == "reproduced"


def test_gs7_needs_both_no_shrinkage_and_a_small_share():
    def readout(gamma, gain, gated):
        return gated_saes.AblationReadout(pd.Series(dtype=float), gain, gated, pd.Series(gamma))
    assert gated_saes.gs7(readout([1.001, 0.995], 0.01, 0.04), "s").verdict == "reproduced"  # 25%
    assert gated_saes.gs7(readout([1.001, 0.995], 0.03, 0.04), "s").verdict == "partial"  # 75%
    assert gated_saes.gs7(readout([0.9], 0.03, 0.04), "s").verdict == "not_reproduced"
    assert "(25% of it)" in gated_saes.gs7(readout([1.0], 0.01, 0.04), "s").measured


def _gamma_results(baseline: list[float], gated: list[float], site: str = "resid 12") -> pd.DataFrame:
    """GS-3's read-out as the sweeps give it: the baseline and Gated sweep different
    coefficients (the profiles' 1.5/2.5/4 against 2.5/4/6.5), overlapping in two."""
    rows = [{"site": site, "variant": "baseline", "sparsity": s, "gamma": g} for s, g in zip((1.5, 2.5, 4.0), baseline, strict=True)]
    rows += [{"site": site, "variant": "Gated", "sparsity": s, "gamma": g} for s, g in zip((2.5, 4.0, 6.5), gated, strict=True)]
    return pd.DataFrame(rows)


def test_gs3_reads_each_variant_at_its_own_coefficients():
    # The paper's picture: baseline below 1 and falling, Gated within 0.02 of 1. Read through a
    # (site, sparsity) x variant table, the coefficients only one variant has gave NaN, every
    # check failed, and this case came out not_reproduced.
    held = gated_saes.gs3(_gamma_results([0.97, 0.95, 0.93], [1.0, 1.001, 0.999]), ["resid 12"])
    assert held.verdict == "reproduced"
    assert held.measured == "resid 12: baseline 0.930-0.970 (falls), Gated 0.999-1.001"
    shrunk = gated_saes.gs3(_gamma_results([0.97, 0.95, 0.93], [0.95, 1.0, 1.0]), ["resid 12"])
    assert shrunk.verdict == "partial"  # Gated 0.95 is shrinkage; the baseline still sits below 1
    assert gated_saes.gs3(_gamma_results([0.97, 1.01, 0.93], [1.0, 1.0, 1.0]), ["resid 12"]).verdict == \
        "not_reproduced"  # a baseline gamma above 1


def test_fs2_allows_one_layer_at_or_above_one_for_partial():
    ratio = pd.DataFrame({"Original": [0.9, 0.95, 1.02]}, index=[1, 2, 3])
    claim = suppression.fs2(ratio)
    assert claim.verdict == "partial" and claim.measured == "L1: 0.900, L2: 0.950, L3: 1.020"
    assert suppression.fs2(ratio.clip(upper=0.99)).verdict == "reproduced"


def test_fs9_counts_layers_with_a_jump_over_one_decade():
    jumps = {3: (1e-2, 2.5, 10), 9: (1e-3, 0.4, 0), 12: (1e-3, 1.5, 3)}
    assert suppression.fs9(jumps, 1_000_000).verdict == "partial"  # 2 of 3 layers
    assert suppression.fs9({3: (1e-2, 0.2, 0)}, 1_000_000).verdict == "not_reproduced"


def test_ab1_ignores_seeds_that_died():
    toys = pd.DataFrame({"perfect": [True, False, True], "dead": [False, True, False],
                         "alignment": [1.0 + 1e-7, 0.2, 1.0 - 2e-7]})
    claim = alignment.ab1(toys)
    assert claim.verdict == "reproduced" and claim.measured.startswith("2/3 seeds perfect, max |a - 1| 2.0e-07; 1 died")
    assert alignment.ab1(toys.assign(perfect=False)).verdict == "not_reproduced"


def _topk_gain(ce: list[float], dead_topk: list[float], dead_aligned: list[float]) -> pd.DataFrame:
    return pd.DataFrame({("explained_variance", "aligned - topk"): [0.08, 0.0],  # EV is reported, not judged
                         ("ce_loss_recovered", "aligned - topk"): ce,
                         ("dead_fraction", "topk"): dead_topk, ("dead_fraction", "aligned_topk"): dead_aligned,
                         ("dead_fraction", "aligned - topk"): np.subtract(dead_aligned, dead_topk)},
                        index=pd.Index([16, 128], name="k"))


def test_ab9_judges_the_papers_quantities_ce_recovered_and_dead_latents():
    """AB-9 once judged explained variance, which the paper's Figures 10 and 11 do not show:
    a large EV gain at small k failed a claim whose CE and dead-latent patterns both held."""
    both = _topk_gain([0.001, 0.02], [0.0, 0.10], [0.0, 0.01])
    assert alignment.ab9(both).verdict == "reproduced"
    assert alignment.ab9(_topk_gain([0.001, 0.02], [0.0, 0.0], [0.0, 0.0])).verdict == "partial"  # nothing dead to save
    assert alignment.ab9(_topk_gain([0.03, 0.02], [0.0, 0.10], [0.0, 0.01])).verdict == "partial"  # CE differs at small k
    assert alignment.ab9(_topk_gain([0.0, -0.01], [0.0, 0.0], [0.0, 0.0])).verdict == "not_reproduced"
    assert "TopK has 0.0% dead at k=128" in alignment.ab9(_topk_gain([0.0, 0.02], [0.0, 0.0], [0.0, 0.0])).notes


def test_qs_claims():
    ce = CELosses(clean=2.0, sae=2.5, zero=7.0, n_tokens=100)  # recovered 0.9
    rec = {"l0": 20.0, "fvu": 0.2, "l2_ratio": 0.9, "gamma": 0.85}
    assert quickstart.qs1(ce, rec).verdict == "reproduced"
    assert quickstart.qs1(CELosses(clean=2.0, sae=4.0, zero=7.0, n_tokens=100), rec).verdict == "partial"  # 0.6
    assert "min" not in quickstart.qs1(ce, rec).measured  # no wall-clock time in a claim
    assert quickstart.qs2(rec).verdict == "reproduced"
    assert quickstart.qs2({**rec, "l2_ratio": 1.01}).verdict == "not_reproduced"
    assert np.isclose(ce.recovered, 0.9)
