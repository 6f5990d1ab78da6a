"""What notebook 04 trains and reads, per profile (``profiles`` holds the values), and its grids."""

from __future__ import annotations

from dataclasses import dataclass

from sae_failures.engine.sizes import Size
from sae_failures.engine.specs import Site

# Sparsity grids, set on SmolLM2-135M layer 12 from L0s alone (notebook 04 says how).
# The paper profile reuses them on Pythia and GELU-1L uncalibrated.
GATED_BASELINE_L1 = (1.0, 1.5, 2.5, 4.0, 6.0)
GATED_L1 = (1.5, 2.5, 4.0, 6.5, 10.0)
BASELINE_WIDTH_FACTOR = 1.5  # notebook 04's equal compute: the baseline has 1.5 x the Gated latents


@dataclass(frozen=True)
class GatedSizes:
    """Notebook 04 (Gated SAEs)."""

    sites: tuple[Site, ...]
    gated_width: Size  # the baseline gets BASELINE_WIDTH_FACTOR x as many latents
    sweep_tokens: int
    baseline_l1: tuple[float, ...]
    gated_l1: tuple[float, ...]
    ablation_site: str  # label of the site the ablations (GS-6, GS-7) run at
    rescale_shift_tokens: int
    spread_seeds: int = 2  # more seeds of the middle Gated and baseline SAE per site: the seed spread
    ce_max_factor: int = 8  # at most this x the profile's CE tokens at a site whose ablation costs little
