"""The broken-latents posts' figures: cosine heatmaps, feature chart, activation histograms."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sae_failures.engine.devices import to_numpy
from sae_failures.engine.latent_matching import PEAK_FLOOR, latent_cosines
from sae_failures.engine.toy_data import ToySetup
from sae_failures.studies.broken_latents import your_turn
from sae_failures.studies.broken_latents.experiment import Trained

ARCH_LABEL = {"untied": "untied", "tied": "tied", "tied_aux": "tied + aux loss"}


def heatmap(ax: Axes, matrix: np.ndarray, title: str, xlabel: str = "true feature",
            ylabel: str = "SAE latent") -> None:
    annotate = matrix.shape[1] <= 12
    sns.heatmap(matrix, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", center=0, cbar=False, square=True,
                annot=annotate, fmt=".2f", annot_kws={"fontsize": 7})
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)


def cosine_bar(fig: Figure, axes: np.ndarray, label: str) -> None:
    """One colour bar for every heatmap of ``axes`` (they share the -1 .. 1 scale)."""
    fig.colorbar(axes.flat[0].collections[0], ax=list(axes.flat), label=label, shrink=0.8)


def cosine_figure(runs: Sequence[Trained], title: str) -> Figure:
    """Encoder (untied only) and decoder cosine with the true features, one panel each."""
    panels = [(t, part) for t in runs for part in (("encoder", "decoder") if not t.run.tied else ("decoder",))]
    n_features = runs[0].matching.dec.shape[1]
    width = max(2.2, 0.42 * n_features + 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 0.45 * runs[0].run.d_sae + 2.2),
                             squeeze=False)
    for ax, (t, part) in zip(axes[0], panels, strict=True):
        matrix = t.matching.enc if part == "encoder" else t.matching.dec
        label = "encoder = decoder" if t.run.tied else part
        heatmap(ax, matrix, f"{ARCH_LABEL[t.run.architecture]}: {label}")
    cosine_bar(fig, axes, "cosine of the latent's row with the true feature")
    fig.suptitle(title)
    return fig


def feature_chart(setup: ToySetup) -> Figure:
    """Magnitude, firing probability and expected MSE p m^2 per feature (BL-5's chart)."""
    idx = np.arange(setup.n_features)
    values = {"magnitude": setup.magnitudes, "firing probability": setup.firing_probabilities,
              "expected MSE p m²": to_numpy(setup.expected_mse())}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    top = set(setup.expected_mse().topk(5).indices.tolist())
    for ax, (name, v) in zip(axes, values.items(), strict=True):
        ax.bar(idx, v, color=["C3" if i in top else "C0" for i in idx])
        ax.set(title=name, xlabel="feature", xticks=idx[::2])
    fig.suptitle(f"{setup.name}: the 5 largest expected-MSE features in red")
    return fig


def latent_cosine_figure(runs: Sequence[Trained], ncols: int = 4) -> Figure:
    """Decoder-decoder cosines of tied SAEs (BL-11), live latents only."""
    nrows = -(-len(runs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.3 * nrows), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.set_axis_off()
    for ax, t in zip(axes.flat, runs, strict=False):
        live = np.flatnonzero(t.matching.live)
        heatmap(ax, latent_cosines(t.sae)[np.ix_(live, live)], f"{t.run.setup.name}\n{ARCH_LABEL[t.run.architecture]}",
                xlabel="latent", ylabel="latent")
        ax.set_xticklabels(live)
        ax.set_yticklabels(live)
    cosine_bar(fig, axes[:, :len(runs)] if nrows == 1 else axes, "cosine between two latents' decoder rows")
    return fig


def activation_histograms(t: Trained, broken: Sequence[int]) -> Figure:
    """Non-zero activations of every live latent, with the number of peaks found."""
    live = list(np.flatnonzero(t.matching.live))
    peaks = t.peaks()
    fig, axes = plt.subplots(1, len(live), figsize=(2.6 * len(live), 2.6), squeeze=False)
    for ax, j in zip(axes[0], live, strict=True):
        values = to_numpy(t.acts[:, j])
        ax.hist(values[values > 0], bins=60, color="C3" if j in broken else "C0")
        ax.axvline(PEAK_FLOOR * values.max(), ls=":", color="gray")  # peaks are counted right of it
        best = int(np.abs(t.matching.dec[j]).argmax())
        ax.set(title=f"latent {j} (~f{best}): {peaks[j]} peak{'s' if peaks[j] != 1 else ''}",
               xlabel="activation", yscale="log")
    fig.suptitle(f"{t.run.setup.name} / {ARCH_LABEL[t.run.architecture]}, seed {t.run.seed}: broken latents in red")
    return fig


def aux_training_curves(histories: dict[tuple[str, int], list[dict[str, float]]], seeds: Sequence[int]) -> Figure:
    """BL-7: reconstruction error of the tied SAE with and without the activation-orthogonality
    loss, and that loss itself, over training, one line per seed."""
    import pandas as pd

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for seed in seeds:
        for name, color in (("cooc_a/tied", "C0"), ("cooc_a/tied_aux", "C1")):
            h = pd.DataFrame(histories[name, seed])
            label = ARCH_LABEL[name.split("/")[1]] if seed == seeds[0] else None
            axes[0].plot(h.samples / 1e6, h.mse, color=color, lw=0.8, alpha=0.7, label=label)
            if name.endswith("aux"):
                axes[1].plot(h.samples / 1e6, h.aux, color=color, lw=0.8, alpha=0.7, label=label)
    axes[0].set(xlabel="training samples (millions)", ylabel="reconstruction MSE (sum over dims)", yscale="log",
                title=f"Reconstruction, one line per seed ({len(seeds)})")
    axes[1].set(xlabel="training samples (millions)", ylabel="activation-orthogonality loss", yscale="symlog",
                title="The auxiliary loss, tied + aux loss SAE")
    axes[0].legend(fontsize=9)
    return fig


def feature_cosines(features: np.ndarray, title: str) -> Figure:
    """Cosines between the true features of a toy world (BL-9's superposition)."""
    fig, ax = plt.subplots(figsize=(5, 4.4))
    heatmap(ax, features @ features.T, title, "feature", "feature")
    cosine_bar(fig, np.array([ax]), "cosine between two true features")
    return fig


def single_latent_bars(rows_by_seed: dict[int, dict[str, np.ndarray]]) -> Figure:
    """BL-10: the single latent's cosine with each of the four features, per seed: untied
    encoder, untied decoder and tied rows side by side."""
    import pandas as pd

    seeds = list(rows_by_seed)
    ncols = min(5, len(seeds))
    nrows = -(-len(seeds) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3 * nrows), squeeze=False, sharey=True)
    for ax in axes.flat[len(seeds):]:
        ax.set_visible(False)
    for ax, seed in zip(axes.flat, seeds, strict=False):
        rows = rows_by_seed[seed]
        n = len(next(iter(rows.values())))
        pd.DataFrame(rows, index=[f"f{i}" for i in range(n)]).plot.bar(ax=ax, rot=0, legend=ax is axes.flat[0])
        ax.set(title=f"seed {seed}", ylabel="cosine with the feature", ylim=(-1.05, 1.05))
        ax.axhline(0, color="k", lw=0.6)
    fig.suptitle("The single latent against the parent f0 and its children f1-f3 (negative: the latent is negated)")
    return fig


def absorption_explorer(p_parent: float, p_child: float, samples_scale: float) -> Figure:
    """BL-1's world at the sliders' firing probabilities: the untied and the tied SAE's latents
    against the true features, trained on ``samples_scale`` of BL-1's samples."""
    world = your_turn.absorption_world(p_parent, p_child)
    trained = [your_turn.train_world(world, arch, samples_scale) for arch in ("untied", "tied")]
    said = {"absorbed": "the untied SAE absorbs f1 into f0's latents", "clean": "every untied latent is one feature"}
    found = your_turn.absorbed(trained[0])
    return cosine_figure(trained, f"P(f0) = {p_parent:g}, P(f1 | f0) = {p_child:g}: "
                                  f"{said.get(found, f'the untied SAE is {found}')}")
