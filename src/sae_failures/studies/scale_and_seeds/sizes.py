"""What notebook 05 trains and reads, per profile (``profiles`` holds the values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleSizes:
    """Notebook 05 (scale and seeds): how many seeds, which budgets, which sweep points.

    Budgets double from the first to the last (``training_length.doubling``). The long runs
    use fewer sweep points than notebooks 03 and 04 (the points named here); everything
    else is the notebooks' own setup.
    """

    seeds: int  # every language-model claim at the notebooks' sizes, and every long run
    seed_notebooks: tuple[str, ...]  # the language-model notebooks rerun at every seed
    budgets: tuple[int, int]  # first and last budget of the single-SAE claims
    sweep_budgets: tuple[int, int]  # first and last budget of the sweep claims
    alignment_sweep_l1: dict[str, tuple[float, ...]]  # AB-7, per variant, at notebook 03's width
    topk_ks: tuple[int, ...]  # AB-9
    gated_baseline_l1: tuple[float, ...]  # GS-3 / GS-4 / GS-7
    gated_l1: tuple[float, ...]  # GS-3 / GS-4, and every GS-6 ablation
    gated_sites: tuple[str, ...]  # labels of notebook 04's sites for GS-3 / GS-4 (GS-6 / GS-7: its ablation site)
