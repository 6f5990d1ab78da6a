"""Figures of notebook 05: verdicts per seed, and each length claim's quantity against tokens."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from sae_failures.engine.claims import VERDICTS
from sae_failures.engine.seeds import tokens_label
from sae_failures.studies.scale_and_seeds.experiment import LENGTH_CLAIMS

VERDICT_COLORS = {"reproduced": "tab:green", "partial": "gold", "not_reproduced": "tab:red",
                  "unmeasurable": "lightsteelblue", "not_attempted": "lightgray"}


def verdict_grid(outcomes: pd.DataFrame) -> plt.Figure:
    """Claims (rows) x seeds (columns), coloured by each seed run's verdict."""
    grid = outcomes.verdict.unstack("seed")
    grid = grid.loc[list(dict.fromkeys(outcomes.index.get_level_values("claim")))]
    codes = grid.map(VERDICTS.index).to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * grid.shape[1], 0.8 + 0.28 * len(grid)))
    ax.imshow(codes, cmap=ListedColormap([VERDICT_COLORS[v] for v in VERDICTS]), vmin=-0.5,
              vmax=len(VERDICTS) - 0.5, aspect="auto")
    ax.set(xticks=range(grid.shape[1]), xticklabels=[f"seed {s}" for s in grid.columns],
           yticks=range(len(grid)), yticklabels=grid.index, title="verdict per seed")
    ax.grid(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=VERDICT_COLORS[v]) for v in VERDICTS]
    ax.legend(handles, VERDICTS, bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    return fig


def length_curves(rows: pd.DataFrame) -> plt.Figure:
    """One panel per length claim: its quantity per seed (thin) and their mean (thick) against
    training tokens, with the rule's threshold (dashed) and the paper's value (dotted)."""
    claims = [c for c in LENGTH_CLAIMS if c in set(rows.claim)]
    ncols = min(4, len(claims))
    nrows = -(-len(claims) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(claims):]:
        ax.set_visible(False)
    for ax, claim in zip(axes.flat, claims, strict=False):
        spec, mine = LENGTH_CLAIMS[claim], rows[rows.claim == claim]
        for _, one in mine.groupby("seed"):
            ax.plot(one.tokens, one.quantity, color="tab:blue", lw=0.7, alpha=0.5)
        mean = mine.groupby("tokens").quantity.mean()
        ax.plot(mean.index, mean.to_numpy(), "o-", color="tab:blue", lw=2)
        ax.axhline(spec.threshold, color="k", ls="--", lw=1, label="rule's threshold")
        if spec.paper is not None and not np.isclose(spec.paper, spec.threshold):
            ax.axhline(spec.paper, color="tab:red", ls=":", lw=1.5, label="paper")
        ax.set(xscale="log", xlabel="training tokens (per SAE)")
        ax.set_title(f"{claim}: " + "\n".join(textwrap.wrap(spec.quantity, 42)), fontsize=10)
        _budget_ticks(ax, mean.index)
    fig.legend(handles=[Line2D([], [], color="tab:blue", lw=0.7, alpha=0.5, label="one seed"),
                        Line2D([], [], color="tab:blue", lw=2, marker="o", label="mean over seeds"),
                        Line2D([], [], color="k", ls="--", lw=1, label="where the claim's rule draws its line"),
                        Line2D([], [], color="tab:red", ls=":", lw=1.5, label="the paper's value")],
               loc="outside upper center", ncols=4, fontsize=10)
    return fig


def _budget_ticks(ax: plt.Axes, budgets: pd.Index) -> None:
    """Tick the log axis at the budgets read, not at matplotlib's minor decades (which overlap)."""
    ax.xaxis.set_major_locator(FixedLocator(list(budgets)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: tokens_label(x)))
    ax.xaxis.set_minor_locator(NullLocator())


def heldout_curves(rows: pd.DataFrame) -> plt.Figure:
    """Held-out explained variance of each family's SAEs against training tokens (mean over
    seeds): a fall past one pass over the stored activations would be overfitting."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    first = rows.drop_duplicates(["claim", "seed", "tokens"])
    for claim, group in first.groupby("claim", sort=False):
        family = LENGTH_CLAIMS[claim].family
        if claim != next(c for c in LENGTH_CLAIMS if LENGTH_CLAIMS[c].family == family):
            continue  # one curve per family: its claims share the SAEs
        mean = group.groupby("tokens").heldout_ev.mean()
        ax.plot(mean.index, mean.to_numpy(), "o-", label=family)
    ax.set(xscale="log", xlabel="training tokens", ylabel="held-out explained variance",
           title="held-out reconstruction against training length")
    _budget_ticks(ax, pd.Index(sorted(first.tokens.unique())))
    ax.legend(fontsize=8)
    return fig
