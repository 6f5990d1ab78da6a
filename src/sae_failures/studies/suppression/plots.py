"""Figures of notebook 01 (feature suppression): each takes what the notebook measured and
returns the figure, which the notebook saves (``Notebook.save``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from sae_failures.studies.suppression.experiment import (
    DECODER_SIDE,
    TOY_C,
    TOY_D,
    LatentStats,
    ScaleAnalysis,
)
from sae_failures.variants.scaled import ENCODER_METHODS, METHODS


def single_feature(toy: pd.DataFrame, toy_m: tuple[float, ...]) -> plt.Figure:
    """FS-1: the learned activation of each (p, m) toy against m - c d / 2."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.scatterplot(data=toy, x="m", y="learned", hue="p", palette="viridis", s=60, ax=ax)
    grid = np.linspace(0, max(toy_m), 100)
    ax.plot(grid, np.maximum(grid - TOY_C * TOY_D / 2, 0), "k--", label="m - c d / 2")
    ax.plot(grid, grid, ":", color="gray", label="no suppression")
    ax.set(xlabel="true strength m", ylabel="learned activation", title=f"FS-1: c = {TOY_C}, d = {TOY_D}")
    ax.legend(title="p (points)")
    return fig


def finetune_curves(histories: dict[tuple[int, str], list[dict[str, float]]], layers: list[int]) -> plt.Figure:
    """Each fine-tune's training MSE against its tokens, one panel per layer (the held-out
    convergence check is ``experiment.heldout_change``)."""
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.2), sharey=False)
    for ax, layer in zip(np.atleast_1d(axes), layers, strict=True):
        for method in METHODS:
            h = pd.DataFrame(histories[layer, method])
            ax.plot(h.tokens, h.mse_loss, label=method)
        ax.set(title=f"layer {layer}", xlabel="fine-tuning tokens", yscale="log")
    np.atleast_1d(axes)[0].set_ylabel("MSE (scaled activations)")
    np.atleast_1d(axes)[-1].legend(fontsize=7)
    fig.suptitle("Fine-tuning loss curves (constant learning rate)")
    return fig


def l2_ratio(ratio: pd.DataFrame) -> plt.Figure:
    """FS-2 / FS-3: the L2 ratio per layer, decoder-side methods and encoder methods apart."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    ratio[["Original", "Baseline", *DECODER_SIDE]].plot(marker="o", ax=axes[0])
    ratio[["Original", *ENCODER_METHODS]].plot(marker="o", ax=axes[1])
    for ax, title in zip(axes, ["decoder-side methods", "encoder methods"], strict=True):
        ax.axhline(1, color="k", lw=1, ls="--", label="no shrinkage")
        ax.set(xlabel="layer", ylabel="L2 ratio ||x_hat|| / ||x||", title=f"L2 ratio after fine-tuning: {title}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)  # beside the lines, never over them
    return fig


def l0_per_method(l0: pd.DataFrame) -> plt.Figure:
    """FS-4: L0 per layer of the base SAE and every fine-tune."""
    fig, ax = plt.subplots(figsize=(7, 4))
    l0[["Original", *METHODS]].plot(marker="o", logy=True, ax=ax)
    ax.set(xlabel="layer", ylabel="L0", title="L0 per method")
    return fig


def fractional_reduction(frac: pd.DataFrame) -> plt.Figure:
    """FS-5: fractional MSE and perplexity-gap reduction per layer of the decoder-side methods."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for ax, col in zip(axes, frac.columns, strict=True):
        frac[col].unstack()[["Baseline", *DECODER_SIDE]].plot(marker="o", ax=ax)
        ax.axhline(0, color="k", lw=1)
        ax.set(xlabel="layer", ylabel=col.replace("_", " "), title=col.replace("_", " ") + " (0 = original, 1 = perfect)")
    return fig


def decoder_cosines(cosines: dict[int, np.ndarray]) -> plt.Figure:
    """FS-6: per layer, the cosine of each decoder row before and after the Decoder fine-tune."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for layer, c in cosines.items():
        ax.hist(c, bins=50, histtype="step", label=f"layer {layer} (mean {c.mean():.3f})")
    ax.set(xlabel="cos(decoder row before, after)", ylabel="latents", yscale="log",
           title="Decoder method: rotation of latents")
    ax.legend(fontsize=8)
    return fig


def scale_vs_frequency_strength(scales: ScaleAnalysis, layer: int) -> plt.Figure:
    """FS-7 / FS-8: the learned scale and the additive change of every live latent, over its
    firing frequency and strength."""
    live = scales.live
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, values, label in [(axes[0], scales.scale, "learned scale s"),
                              (axes[1], scales.additive, "additive change (s - 1) * strength")]:
        points = ax.scatter(scales.stats.frequency[live], scales.stats.strength[live], c=values[live], s=6,
                            cmap="viridis")
        ax.set(xscale="log", yscale="log", xlabel="firing frequency", ylabel="mean activation when active", title=label)
        fig.colorbar(points, ax=ax, label=label)
    fig.suptitle(f"layer {layer}, Decoder method, {live.sum()} live latents")
    return fig


def sorted_frequencies(stats: dict[int, LatentStats]) -> plt.Figure:
    """FS-9: each layer's latent frequencies over its counted tokens, sorted, on a log scale;
    never-active latents drawn at half a firing (``experiment.frequency_jump``'s floor)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    n_tokens = min(s.n_tokens for s in stats.values())
    for layer, s in stats.items():
        ax.plot(np.sort(np.log10(np.maximum(s.frequency, 0.5 / s.n_tokens))), label=f"layer {layer}")
    ax.axhline(np.log10(1 / n_tokens), color="gray", ls=":", label=f"one firing in {n_tokens:,} tokens")
    ax.axhline(np.log10(0.5 / n_tokens), color="gray", ls="--", lw=0.8, label="never active (drawn at half a firing)")
    ax.set(xlabel="latent (sorted by frequency)", ylabel="log10 firing frequency",
           title="Sorted latent frequencies over the training tokens")
    ax.legend(fontsize=8)
    return fig


def input_norm_vs_l2_ratio(by_layer: pd.DataFrame) -> plt.Figure:
    """The base SAE's L2 ratio against the mean input norm, one point per layer."""
    r = float(np.corrcoef(by_layer.input_norm, by_layer.l2_ratio)[0, 1]) if len(by_layer) > 2 else float("nan")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(by_layer.input_norm, by_layer.l2_ratio)
    for layer, row in by_layer.iterrows():
        ax.annotate(f"L{layer}", (row.input_norm, row.l2_ratio))
    ax.set(xlabel="mean ||x|| (held-out)", ylabel="L2 ratio of the base SAE",
           title=f"Pearson r = {r:.2f} over {len(by_layer)} layers")
    return fig


def single_feature_explorer(m: float, c: float, d: int) -> plt.Figure:
    """FS-1 as a picture: what a one-latent SAE learns for a feature of strength ``m`` under
    L1 coefficient ``c`` in ``d`` dimensions, a = max(m - c d / 2, 0) (``predicted_activation``)."""
    from sae_failures.studies.suppression.experiment import predicted_activation

    shrink = c * d / 2
    top = max(3.0, 1.2 * m, 1.5 * shrink)
    grid = np.linspace(0, top, 200)
    learned = predicted_activation(m, c, d)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    axes[0].plot(grid, [predicted_activation(g, c, d) for g in grid], lw=2, label="learned activation a")
    axes[0].plot(grid, grid, "k--", lw=1, label="a = m (no suppression)")
    axes[0].axvspan(0, min(shrink, top), color="tab:red", alpha=0.12, label=f"dies: m < c·d/2 = {shrink:.2f}")
    axes[0].plot([m], [learned], "o", color="tab:orange", ms=9, label=f"this feature: m = {m:.2f}")
    axes[0].set(xlim=(0, top), ylim=(0, top), xlabel="feature strength m", ylabel="activation the SAE learns",
                title=f"a = m − c·d/2  (c = {c:g}, d = {d})")
    axes[0].legend(loc="upper left", fontsize=9)
    axes[1].bar(["true m", "learned a"], [m, learned], color=["gray", "tab:blue"])
    axes[1].set(ylim=(0, top), title=f"suppressed by {m - learned:.2f} ({(m - learned) / m:.0%})" if m else "")
    return fig
