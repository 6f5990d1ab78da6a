"""Notebook 04's teaching figure: the 1-d shrinkage example (GS-2) as its penalty moves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def shrinkage_1d_explorer(lam: float, x: float = 1.0) -> plt.Figure:
    """One latent, one input x: the loss each SAE minimises over its reconstruction f.

    The baseline pays lambda f on the magnitude itself, (x - f)^2 + lambda f, so its best f is
    x - lambda / 2: shrunk. The Gated SAE pays lambda on its gate alone; once the gate is open
    its magnitude path minimises (x - f)^2 and reaches x.
    """
    f = np.linspace(0, 1.5 * x, 300)
    baseline_best, gated_best = max(x - lam / 2, 0.0), x
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(f, (x - f) ** 2 + lam * f, lw=2, label="baseline: (x − f)² + λ f")
    ax.plot(f, (x - f) ** 2, lw=2, label="Gated, gate open: (x − f)² (λ is paid by the gate)")
    ax.plot([baseline_best], [(x - baseline_best) ** 2 + lam * baseline_best], "o", color="tab:blue", ms=9,
            label=f"baseline's best f = x − λ/2 = {baseline_best:.2f}")
    ax.plot([gated_best], [0.0], "o", color="tab:orange", ms=9, label=f"Gated's best f = x = {gated_best:.2f}")
    ax.axvline(x, color="k", ls=":", lw=1)
    ax.set(xlabel="reconstruction f", ylabel="loss", title=f"Shrinkage in one dimension: x = {x:g}, λ = {lam:g}")
    ax.legend(fontsize=9)
    return fig


def ablation_frontiers(ablations: pd.DataFrame, site: str) -> plt.Figure:
    """GS-6 / GS-7: CE loss recovered against L0 for the Gated SAE, the baseline, each of the
    paper's three ablations and "baseline + rescale & shift", at one site."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for variant, points in ablations.groupby("variant"):
        points = points.sort_values("l0")
        ax.plot(points.l0, points.ce_loss_recovered, "o-", label=variant)
    ax.set(xscale="log", xlabel="L0 (active latents per token)", ylabel="CE loss recovered",
           title=f"Which part of the Gated SAE matters? Ablations at {site}")
    ax.legend(title="higher and to the left is better", fontsize=9, title_fontsize=9)
    return fig
