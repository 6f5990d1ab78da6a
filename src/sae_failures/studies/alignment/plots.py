"""Figures of notebook 03: alignment histograms by latent status, checkpoints, sweeps."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from sae_failures.studies.alignment.experiment import status

STATUS_COLORS = {"live": "tab:blue", "rare": "tab:orange", "dead": "tab:red"}
MIN_SPAN = 1e-3  # a histogram spans at least this much: a tied or aligned SAE has every a_i = 1 to float precision


def bin_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """``bins`` equal bins over ``values``, widened to ``MIN_SPAN`` around their middle when
    they (nearly) coincide: numpy cannot cut 80 finite bins out of a range of a few ulps."""
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi - lo < MIN_SPAN:
        middle = (lo + hi) / 2
        lo, hi = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    return np.linspace(lo, hi, bins + 1)


def alignment_histograms(tables: dict[str, pd.DataFrame], modes: pd.DataFrame, bins: int = 60
                         ) -> plt.Figure:
    """One panel per SAE: stacked histogram of a_i coloured by dead / rare / live (AB-2, AB-3),
    with the fitted mixture's two means marked."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4 * len(tables), 3.4), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items(), strict=True):
        frame = table.assign(status=status(table))
        sns.histplot(frame, x="alignment", hue="status", multiple="stack", bins=bin_edges(frame.alignment, bins), ax=ax,
                     palette=STATUS_COLORS, hue_order=list(STATUS_COLORS), legend=ax is axes[0][0])
        for i, mean in enumerate((modes.loc[name, "low_mean"], modes.loc[name, "high_mean"])):
            ax.axvline(mean, color="k", ls=":", lw=1, label="the two fitted modes' means" if i == 0 else None)
        ax.set(title=f"{name}: b = {modes.loc[name, 'sarle']:.2f}, D = {modes.loc[name, 'ashman_d']:.1f}",
               xlabel="alignment score a_i", ylabel="latents")
    axes[0][-1].legend(loc="upper left", fontsize=9)
    fig.suptitle("Alignment scores by architecture. b: Sarle's bimodality coefficient (bimodal above 0.555); "
                 "D: Ashman's D (modes separated above 2)")
    return fig


def release_histograms(scores: dict[str, np.ndarray], bins: int = 80) -> plt.Figure:
    """One panel per sae-lens release: the histogram of its alignment scores (AB-2 on the paper's SAEs)."""
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores), 3.4), squeeze=False)
    for ax, (release, a) in zip(axes[0], scores.items(), strict=True):
        ax.hist(a, bins=bin_edges(a, bins))
        ax.set(title=release[:40], xlabel="a_i", ylabel="latents")
    return fig


def checkpoint_histograms(scores: dict[str, dict[int, np.ndarray]], names: dict[str, str],
                          bins: int = 50) -> plt.Figure:
    """The alignment histogram at each training checkpoint (AB-10): one row per SAE
    (``scores``' keys, labelled by ``names``), one panel per snapshot."""
    n_cols = max(len(s) for s in scores.values())
    fig, axes = plt.subplots(len(scores), n_cols, figsize=(2.3 * n_cols, 2.6 * len(scores)), squeeze=False,
                             layout="constrained")  # tight_layout warned that it could not fit the titles
    hi = max(1.2, max(float(np.quantile(a, 0.999)) for s in scores.values() for a in s.values()))
    for row, (name, snapshots) in zip(axes, scores.items(), strict=True):
        for ax, (tokens, a) in zip(row, snapshots.items(), strict=False):
            ax.hist(np.clip(a, -0.2, hi), bins=np.linspace(-0.2, hi, bins), color="tab:blue")
            ax.set(title=f"{names[name]}, {tokens / 1e3:,.0f}k tokens", xlabel="alignment score a_i", yscale="log")
        row[0].set_ylabel("latents (log scale)")
        for ax in row[len(snapshots):]:
            ax.set_visible(False)
    return fig


def alignment_vs_mcs(latents: pd.DataFrame, reference_width: int, pearson: float, pearson_live: float
                     ) -> plt.Figure:
    """AB-4: each latent's alignment score against its maximum cosine similarity (MCS) with the
    decoder rows of a wider SAE, coloured by how often it fires."""
    fig, ax = plt.subplots(figsize=(6, 4.6))
    points = ax.scatter(latents.alignment, latents.mcs, c=np.log10(latents.frequency + 1e-6), s=4, cmap="viridis")
    fig.colorbar(points, label="log10 firing frequency (-6 = never fired)")
    ax.set(xlabel="alignment score a_i", ylabel=f"MCS with the {reference_width:,}-latent SAE",
           title=f"Alignment against MCS: Pearson {pearson:.2f} (live latents only: {pearson_live:.2f})")
    return fig
