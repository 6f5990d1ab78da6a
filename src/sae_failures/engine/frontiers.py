"""Sparsity-fidelity frontiers: which SAEs are on them, and comparisons read off them.

A sweep gives points (L0, metric) with higher metric better and lower L0 better.
Comparisons interpolate a frontier linearly in log L0, the axis the papers plot, and only
inside the L0 range the frontier covers: nothing is extrapolated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def frontier(l0: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto-optimal points (no other point has lower-or-equal L0 and a higher metric),
    sorted by L0."""
    l0, metric = np.asarray(l0, float), np.asarray(metric, float)
    order = np.lexsort((-metric, l0))
    keep, best = [], -np.inf
    for i in order:
        if metric[i] > best:
            keep.append(i)
            best = metric[i]
    return l0[keep], metric[keep]


def metric_at(front: tuple[np.ndarray, np.ndarray], l0: float) -> float:
    """The frontier's metric at ``l0`` (log-linear interpolation); NaN outside its L0 range."""
    x, y = front
    if not x[0] <= l0 <= x[-1]:
        return float("nan")
    return float(np.interp(np.log(l0), np.log(x), y))


def l0_at(front: tuple[np.ndarray, np.ndarray], metric: float) -> float:
    """The L0 at which the frontier reaches ``metric`` (it rises with L0); NaN outside its range."""
    x, y = front
    if not y[0] <= metric <= y[-1]:
        return float("nan")
    return float(np.exp(np.interp(metric, y, np.log(x))))


@dataclass(frozen=True)
class FrontierComparison:
    """How a candidate frontier's points sit against a reference frontier."""

    n_compared: int  # candidate points inside the reference's L0 range
    n_better: int  # of those, points above the reference (by more than ``tolerance``)
    n_worse: int  # ... and below it by more than ``tolerance``
    mean_gain: float  # mean (candidate - reference) over compared points

    @property
    def dominates(self) -> bool:
        return self.n_compared > 0 and self.n_worse == 0 and self.n_better > 0


def compare(candidate: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray],
            tolerance: float = 0.0) -> FrontierComparison:
    """Compare every candidate frontier point with the reference frontier at the same L0."""
    gains = [y - metric_at(reference, x) for x, y in zip(*candidate, strict=True)]
    gains = np.array([g for g in gains if not np.isnan(g)])
    return FrontierComparison(len(gains), int((gains > tolerance).sum()), int((gains < -tolerance).sum()),
                              float(gains.mean()) if len(gains) else float("nan"))


def variant_fronts(results: pd.DataFrame, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each variant's frontier of (L0, ``metric``); ``results`` has columns variant, l0, ``metric``."""
    return {v: frontier(p.l0.to_numpy(), p[metric].to_numpy()) for v, p in results.groupby("variant")}


def compare_variants(results: pd.DataFrame, candidate: str, reference: str, metrics: list[str],
                     by: str = "width", tolerance: Mapping[Any, float] | None = None) -> pd.DataFrame:
    """``compare`` of the candidate variant's frontier with the reference's, for every value
    of ``by`` and every metric; ``results`` has columns variant, ``by``, l0 and the metrics.
    ``tolerance``: per value of ``by``, the margin a point must pass to count as better or worse."""
    rows = {}
    for group, part in results.groupby(by):
        for metric in metrics:
            fronts = variant_fronts(part, metric)
            result = compare(fronts[candidate], fronts[reference], (tolerance or {}).get(group, 0.0))
            rows[group, metric] = {**dataclasses.asdict(result), "dominates": result.dominates}
    return pd.DataFrame(rows).T


def l0_ratios(results: pd.DataFrame, candidate: str, reference: str, metric: str = "ce_loss_recovered"
              ) -> pd.Series:
    """For each candidate frontier point, its L0 over the reference frontier's L0 at the
    same ``metric`` (interpolated; only where the reference reaches that value)."""
    fronts = variant_fronts(results, metric)
    ratios = {y: x / l0_at(fronts[reference], y) for x, y in zip(*fronts[candidate], strict=True)}
    return pd.Series(ratios, name="l0_ratio").dropna()


def gain_at_matched_l0(results: pd.DataFrame, candidate: str, reference: str,
                       metric: str = "ce_loss_recovered") -> float:
    """Mean of candidate - reference frontier ``metric`` over the candidate's frontier points
    inside the reference's L0 range."""
    fronts = variant_fronts(results, metric)
    gains = [y - metric_at(fronts[reference], x) for x, y in zip(*fronts[candidate], strict=True)]
    return float(np.nanmean(gains)) if not np.all(np.isnan(gains)) else float("nan")
