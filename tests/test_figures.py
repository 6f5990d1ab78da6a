"""Figures a reader can read: what they draw, count and label, on known inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import torch

from sae_failures.studies.quickstart.plots import quickstart_figure


def test_the_quickstart_scatter_counts_its_outliers_instead_of_drawing_them():
    torch.manual_seed(0)
    x = torch.randn(3000, 8) * 10
    x[0] *= 80  # one massive input, as SmolLM2's residual stream has
    history = pd.DataFrame({"tokens": [1, 2], "mse_loss": [2.0, 1.0], "l1_loss": [0.5, 0.4]})
    frequency = np.array([0.0, 0.1, 0.5])  # as engine.metrics.firing_frequency gives it: one latent never fired
    fig = quickstart_figure(history, frequency, x, 0.9 * x, n_dead=1, n_eval_tokens=3000, l2_ratio=0.9, title="t")
    scatter = fig.axes[2]
    assert scatter.get_xlim()[1] < float(x[0].norm())  # the outlier does not set the scale
    notes = [t.get_text() for t in scatter.texts]
    assert notes == [f"1 token(s) with ||x|| up to {float(x[0].norm()):.0f} not drawn"]
    assert len(scatter.collections[0].get_offsets()) == 2999
    assert "(-7 = never fired)" in fig.axes[1].get_xlabel()
    assert {t.get_text() for t in scatter.get_legend().get_texts()} == {"held-out tokens",
                                                                       "||x_hat|| = ||x|| (no shrinkage)"}


def test_the_moved_study_figures_draw_and_label_what_they_show():
    from sae_failures.studies.alignment.plots import alignment_vs_mcs
    from sae_failures.studies.broken_latents.plots import (
        aux_training_curves,
        feature_cosines,
        single_latent_bars,
    )
    from sae_failures.studies.gated.plots import ablation_frontiers

    latents = pd.DataFrame({"alignment": [0.1, 0.5, 0.9], "mcs": [0.9, 0.7, 0.95], "frequency": [0.0, 1e-3, 1e-2]})
    fig = alignment_vs_mcs(latents, 9216, 0.12, 0.2)
    assert fig.axes[0].get_ylabel() == "MCS with the 9,216-latent SAE"
    assert fig.axes[1].get_ylabel() == "log10 firing frequency (-6 = never fired)"  # the colour bar
    history = [{"samples": 1e6, "mse": 1.0, "aux": 0.5}, {"samples": 2e6, "mse": 0.5, "aux": 0.1}]
    fig = aux_training_curves({(n, s): history for n in ("cooc_a/tied", "cooc_a/tied_aux") for s in (0, 1)}, [0, 1])
    assert [len(ax.lines) for ax in fig.axes] == [4, 2]  # two architectures x two seeds; the aux loss of one
    fig = feature_cosines(np.eye(3), "t")
    assert fig.axes[-1].get_ylabel() == "cosine between two true features"
    fig = single_latent_bars({0: {"tied": np.array([0.9, 0.3, 0.3, 0.3])}, 1: {"tied": -np.array([0.9, 0.3, 0.3, 0.3])}})
    assert len(fig.axes[0].patches) == 4 and fig.axes[1].patches[0].get_height() == -0.9
    ablations = pd.DataFrame({"variant": ["Gated", "Gated", "baseline"], "l0": [10, 20, 15],
                              "ce_loss_recovered": [0.9, 0.95, 0.85]})
    fig = ablation_frontiers(ablations, "resid 12")
    assert fig.axes[0].get_xlabel() == "L0 (active latents per token)" and len(fig.axes[0].lines) == 2

