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
