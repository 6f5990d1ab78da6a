"""What notebook 03 trains and reads, per profile (``profiles`` holds the values), and its grids."""

from __future__ import annotations

from dataclasses import dataclass, field

from sae_failures.engine.sizes import Size

# Sparsity grids, set on SmolLM2-135M layer 12 from L0s alone (notebooks 03 and 04 say how).
# The paper profile reuses them on Pythia and GELU-1L uncalibrated.
ALIGNMENT_SWEEP_L1 = {"standard": (1.5, 2.0, 3.0, 5.0), "aligned": (0.6, 0.8, 1.1, 1.5)}
TOPK_KS = (16, 32, 64, 128)  # AB-9, from high sparsity (small k) to low sparsity (large k)


@dataclass(frozen=True)
class AlignmentSizes:
    """Notebook 03 (alignment-score bimodality)."""

    model: str  # the model its SAEs train on
    layer: int  # its residual layer
    width: Size  # AB-2 / AB-3 / AB-10 SAEs; AB-4's reference is ``wide_factor`` x wider
    sweep_widths: tuple[Size, ...]  # AB-7 / AB-8
    sweep_l1: dict[str, tuple[float, ...]]  # AB-7 / AB-8, per variant
    sweep_tokens: int  # every sweep SAE (AB-7, AB-8, AB-9)
    topk_ks: tuple[int, ...]  # AB-9
    checkpoints: int  # snapshots of the AB-10 SAE and of every aligned SAE (AB-6)
    toy_seeds: int  # AB-1
    wide_factor: int = 4
    releases: dict[str, str] = field(default_factory=dict)  # sae-lens release -> SAE id, histogrammed
