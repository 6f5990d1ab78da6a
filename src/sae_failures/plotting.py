"""Figure saving shared by every notebook: PNG for reading, PDF for papers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import seaborn as sns

from sae_failures.paths import figures_dir


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
