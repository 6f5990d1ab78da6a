"""Notebook 00's figure: how one SAE trained, how often its latents fire, how much it shrinks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from sae_failures.engine.devices import to_numpy

NEVER = 1e-7  # where a latent that never fired is drawn on the log-frequency axis
SHOWN_QUANTILE = 0.999  # the norm scatter's axes end here; the few inputs beyond are counted, not drawn


def quickstart_figure(history: pd.DataFrame, frequency: np.ndarray, x: torch.Tensor, x_hat: torch.Tensor,
                      n_dead: int, n_eval_tokens: int, l2_ratio: float, title: str) -> plt.Figure:
    """Training curve, latent firing frequencies, and ||x_hat|| against ||x||.

    The scatter's axes stop at the 99.9th percentile of ||x||: a handful of inputs with norms
    several times the rest would otherwise squeeze every other point into a corner.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(history.tokens, history.mse_loss, label="reconstruction (MSE)")
    axes[0].plot(history.tokens, history.l1_loss, label="sparsity penalty (L1 term)")
    axes[0].set(xlabel="training tokens", ylabel="loss on scaled activations", yscale="log",
                title="Training: both terms of the loss")
    axes[0].legend()
    axes[1].hist(np.log10(np.asarray(frequency, dtype=float) + NEVER), bins=60)
    axes[1].set(xlabel=f"log10 firing frequency ({np.log10(NEVER):.0f} = never fired)", ylabel="latents",
                title=f"How often latents fire ({n_dead} dead on {n_eval_tokens:,} tokens)")
    norm, norm_hat = (to_numpy(v.norm(dim=-1).float()) for v in (x, x_hat))
    top = float(np.quantile(norm, SHOWN_QUANTILE)) * 1.05
    shown = norm <= top
    axes[2].scatter(norm[shown], norm_hat[shown], s=2, alpha=0.3, label="held-out tokens")
    axes[2].plot([0, top], [0, top], "k--", lw=1, label="||x_hat|| = ||x|| (no shrinkage)")
    axes[2].set(xlim=(0, top), ylim=(0, top), xlabel="input norm ||x||", ylabel="reconstruction norm ||x_hat||",
                title=f"Shrinkage: L2 ratio {l2_ratio:.3f}")
    hidden = int((~shown).sum())
    if hidden:
        axes[2].annotate(f"{hidden} token(s) with ||x|| up to {norm.max():.0f} not drawn", (0.02, 0.95),
                         xycoords="axes fraction", va="top", fontsize=9)
    axes[2].legend(loc="lower right")
    fig.suptitle(title)
    return fig
