"""Sparsity coefficients found for the model at hand, not carried over from SmolLM2.

The coefficient grids in ``profiles`` were set on SmolLM2-135M layer 12, where each grid's
reference point (``profiles.CALIBRATION_REFERENCE``) lands near L0 64
(``profiles.CALIBRATION_TARGET_L0``: the committed offline run measured 62-78). The same
coefficient lands at another L0 on another model or hook: the activations' geometry, not
only their scale (which training divides out), sets it. A calibration trains short probe
SAEs of one architecture at one site and searches the coefficient until the held-out L0 is
within tolerance of the target: secant steps in log-log space (L0 ~ c^-s), then
interpolation between the probes that bracket the target (``next_coefficient``). The grid is then the SmolLM2 grid times c* / c_ref: the same
spacing, centred where it was on SmolLM2. Probes are cached SAEs; the result is a cache
entry of its own, keyed by everything that determines it.

Probes train on fewer tokens than the sweep (``CalibrationSizes.tokens``), and L0 drifts
with training length, so a calibrated grid centres the sweep near the target, not on it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from tqdm import tqdm

from sae_failures.engine.cache import (
    CacheCorruptedError,
    config_key,
    ensure_entry,
    open_entry,
    quarantine,
)
from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.paths import atomic_write_text, data_dir
from sae_failures.engine.saes import get_saes
from sae_failures.engine.sizes import CalibrationSizes
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.training import BatchSource

K = TypeVar("K")

RESULT_FILE = "calibration.json"
SLOPE_RANGE = (0.5, 4.0)  # -d log L0 / d log c that a secant step may assume
FIRST_SLOPE = 1.0  # before two probes exist
MAX_STEP = 4.0  # the most a secant step may multiply or divide the coefficient by


@dataclass(frozen=True)
class Calibration:
    """Where one architecture's reference coefficient moved to at one site."""

    variant: str
    reference: float  # the SmolLM2 grid's reference coefficient
    target_l0: float
    tolerance: float  # accepted |L0 / target - 1|
    probes: tuple[tuple[float, float], ...]  # (coefficient, held-out L0), in search order

    @property
    def best(self) -> tuple[float, float]:
        return min(self.probes, key=lambda p: abs(math.log(max(p[1], 0.5) / self.target_l0)))

    @property
    def converged(self) -> bool:
        return abs(self.best[1] / self.target_l0 - 1) <= self.tolerance

    @property
    def factor(self) -> float:
        return self.best[0] / self.reference

    def scale(self, grid: tuple[float, ...]) -> tuple[float, ...]:
        """``grid`` moved by ``factor`` (4 significant digits, so cache keys stay readable)."""
        return tuple(float(f"{c * self.factor:.4g}") for c in grid)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "coefficient": self.best[0], "l0": self.best[1],
                "factor": self.factor, "converged": self.converged}


def next_coefficient(probes: list[tuple[float, float]], target: float) -> float:
    """The next probe's coefficient: log-log interpolation between the closest probes on either
    side of ``target`` once there are such, else a secant step from the last two probes
    (slope clamped to ``SLOPE_RANGE``, the step to ``MAX_STEP``): L0 is flat where every
    latent fires or none does, and an unclamped secant overshoots from there."""
    def log_l0(p: tuple[float, float]) -> float:
        return math.log(max(p[1], 0.5))

    dense = [p for p in probes if p[1] > target]
    sparse = [p for p in probes if p[1] < target]
    if dense and sparse:
        lo, hi = max(dense), min(sparse)  # the largest too-dense and the smallest too-sparse coefficient
        if lo[0] < hi[0]:
            t = (log_l0(lo) - math.log(target)) / (log_l0(lo) - log_l0(hi))
            return float(f"{math.exp(math.log(lo[0]) + t * (math.log(hi[0]) - math.log(lo[0]))):.4g}")
    (c1, l1), slope = probes[-1], FIRST_SLOPE
    if len(probes) >= 2 and probes[-2][0] != c1:
        c0, _ = probes[-2]
        slope = -(log_l0(probes[-1]) - log_l0(probes[-2])) / (math.log(c1) - math.log(c0))
    slope = min(max(slope, SLOPE_RANGE[0]), SLOPE_RANGE[1])
    step = min(max((max(l1, 0.5) / target) ** (1 / slope), 1 / MAX_STEP), MAX_STEP)
    return float(f"{c1 * step:.4g}")


def probe_spec(spec: SAESpec, coefficient: float, sizes: CalibrationSizes) -> SAESpec:
    """``spec``'s architecture, width and schedule at ``coefficient``, on the calibration's tokens."""
    return dataclasses.replace(spec, sparsity=coefficient, n_tokens=sizes.tokens, checkpoints=0,
                               checkpoint_tokens=())


def _path(spec: SAESpec, sizes: CalibrationSizes, target: float, n_eval: int) -> Path:
    key = config_key({"spec": probe_spec(spec, 0.0, sizes).to_dict(), "reference": spec.sparsity,
                      "sizes": dataclasses.asdict(sizes), "target": target, "n_eval": n_eval})
    model_hook = spec.path().parent.relative_to(data_dir() / "saes")
    return data_dir() / "calibrations" / model_hook / f"{spec.variant}-w{spec.width}-{key}"


def _load(path: Path) -> Calibration:
    raw = json.loads((path / RESULT_FILE).read_text())
    return Calibration(raw["variant"], raw["reference"], raw["target_l0"], raw["tolerance"],
                       tuple(tuple(p) for p in raw["probes"]))


def calibrate(spec: SAESpec, store: BatchSource, x_eval: torch.Tensor, sizes: CalibrationSizes,
              target_l0: float, device: str = "cpu") -> Calibration:
    """The coefficient at which ``spec``'s architecture reaches ``target_l0`` on ``x_eval``,
    searched from ``spec.sparsity`` (the reference) with at most ``sizes.probes`` probe SAEs."""
    return calibrate_all({spec.variant: spec}, store, x_eval, sizes, target_l0, device)[spec.variant]


def calibrate_all(specs: Mapping[K, SAESpec], store: BatchSource, x_eval: torch.Tensor, sizes: CalibrationSizes,
                  target_l0: float, device: str = "cpu") -> dict[K, Calibration]:
    """``calibrate`` for every spec, their searches in lockstep: each round's probe SAEs train
    together (``saes.get_saes``, one pass over the data for all), and each search is the one
    ``calibrate`` alone makes."""
    paths = {name: _path(spec, sizes, target_l0, len(x_eval)) for name, spec in specs.items()}
    found: dict[K, Calibration] = {}
    for name, path in paths.items():
        if path.exists():
            try:
                found[name] = open_entry(path, _load)
            except CacheCorruptedError as err:
                quarantine(path, str(err))
    probes: dict[K, list[tuple[float, float]]] = {name: [] for name in specs if name not in found}
    coefficient = {name: specs[name].sparsity for name in probes}
    searching = list(probes)
    for _ in tqdm(range(sizes.probes), desc=f"calibrating {len(searching)} architecture(s)", leave=False,
                  disable=not searching):
        if not searching:
            break
        trained = get_saes({name: probe_spec(specs[name], coefficient[name], sizes) for name in searching},
                           store, device=device)
        for name in list(searching):
            probes[name].append((coefficient[name], reconstruction_metrics(trained[name], x_eval)["l0"]))
            if abs(probes[name][-1][1] / target_l0 - 1) <= sizes.tolerance:
                searching.remove(name)
            else:
                coefficient[name] = next_coefficient(probes[name], target_l0)
    for name, made in probes.items():
        spec = specs[name]
        result = Calibration(spec.variant, spec.sparsity, target_l0, sizes.tolerance, tuple(made))

        def build(staged: Path, result: Calibration = result) -> None:
            atomic_write_text(staged / RESULT_FILE, json.dumps(result.to_dict(), indent=1) + "\n")

        found[name] = ensure_entry(paths[name], build, _load)
    for name, spec in specs.items():
        result = found[name]
        if not result.converged:
            print(f"calibration: {spec.variant} at {spec.activations.hook} reached L0 {result.best[1]:.1f} "
                  f"(target {target_l0:g}) in {len(result.probes)} probes; using its closest coefficient "
                  f"{result.best[0]:g}", flush=True)
    return {name: found[name] for name in specs}


def describe(calibrations: dict[str, dict]) -> str:
    """One line on where a study's coefficients came from (``Calibration.to_dict`` by variant)."""
    if not calibrations:
        return "SmolLM2's grid (this profile does not calibrate)"
    return "; ".join(f"{name} x{c['factor']:.3g} (L0 {c['l0']:.0f} at {c['coefficient']:g}, target "
                     f"{c['target_l0']:g}, {len(c['probes'])} probes{'' if c['converged'] else ', not converged'})"
                     for name, c in calibrations.items())
