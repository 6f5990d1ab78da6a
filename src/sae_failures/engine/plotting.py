"""Figure saving shared by every notebook: PNG for reading, PDF for papers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from sae_failures.engine.paths import figures_dir


def setup_style() -> None:
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams["figure.constrained_layout.use"] = True  # suptitles never hide panel titles


def save_figure(fig: plt.Figure, profile: str, notebook: str, name: str) -> list[Path]:
    """Save ``fig`` as ``figures/<profile>/<notebook>/<name>.{png,pdf}``."""
    out = figures_dir(profile, notebook)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    return paths


CLEAN_MODEL = "the clean model (CE loss recovered = 1)"


def sweep_panels(results: pd.DataFrame, metrics: dict[str, str], by: str = "width") -> plt.Figure:
    """``metric`` against L0 (log) for each variant, one column per value of ``by``, one row
    per metric; points labelled with their sparsity knob."""
    groups = sorted(results[by].unique())
    fig, axes = plt.subplots(len(metrics), len(groups), figsize=(4.5 * len(groups), 3.4 * len(metrics)),
                             squeeze=False)
    for col, group in enumerate(groups):
        part = results[results[by] == group]
        for row, (metric, label) in enumerate(metrics.items()):
            ax = axes[row][col]
            for variant, points in part.groupby("variant"):
                points = points.sort_values("l0")
                ax.plot(points.l0, points[metric], "o-", label=variant)
                for _, p in points.iterrows():
                    ax.annotate(f"{p.sparsity:g}", (p.l0, p[metric]), fontsize=7, alpha=0.7)
            if metric == "ce_loss_recovered" and part[metric].max() > 0.9:
                ax.axhline(1, color="gray", ls="--", lw=1, label=CLEAN_MODEL)
                if part[metric].max() > 1:
                    ax.annotate("above 1: a lower loss than the clean model's,\nwithin noise where zero-ablation costs little",
                                (0.02, 0.03), xycoords="axes fraction", fontsize=8)
            ax.set(xscale="log", xlabel="L0 (active latents per token)", ylabel=label, title=f"{by} {group}")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # log-axis minor labels overlap
    axes[0][0].legend(title="points: sparsity coefficient", fontsize=9, title_fontsize=9)
    return fig
