"""Match SAE latents to known true features, so toy verdicts are computed, not typed.

A latent *is clean for* feature i when both its decoder row and its encoder row (for a
tied SAE they coincide) have cosine >= ``CLEAN_COS`` with feature i. It is *dead* when it
never fires on the evaluation sample. Every other live latent is *broken*: its
*components* are the features its decoder has |cos| >= ``COMPONENT_COS`` with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sae_lens import SAE

from sae_failures.engine.devices import to_numpy

CLEAN_COS = 0.99
COMPONENT_COS = 0.1
PEAK_BINS = 60
PEAK_MIN_MASS = 0.01
PEAK_FLOOR = 0.05


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=-1, keepdim=True).clamp(min=1e-12)


@torch.no_grad()
def cosines(sae: SAE, features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(encoder within the features' span, decoder) cosine of every latent with every feature, [K, F]."""
    f = _unit(features.float().to(sae.W_dec.device))
    in_span = sae.W_enc.T.float() @ torch.linalg.pinv(f) @ f  # encoder rows projected onto span(features)
    enc = _unit(in_span) @ f.T
    dec = _unit(sae.W_dec.float()) @ f.T
    return to_numpy(enc), to_numpy(dec)


@torch.no_grad()
def latent_cosines(sae: SAE) -> np.ndarray:
    """Decoder-decoder cosine matrix [K, K] (BL-11: tied latents are mutually orthogonal)."""
    w = _unit(sae.W_dec.float())
    return to_numpy(w @ w.T)


@dataclass(frozen=True)
class Matching:
    """How each latent relates to the true features."""

    enc: np.ndarray  # [K, F]
    dec: np.ndarray  # [K, F]
    live: np.ndarray  # [K] bool
    clean_for: tuple[int | None, ...]  # feature each latent is clean for, else None

    @property
    def n_live(self) -> int:
        return int(self.live.sum())

    def latents_for(self, feature: int) -> list[int]:
        return [j for j, f in enumerate(self.clean_for) if f == feature]

    @property
    def clean_features(self) -> set[int]:
        return {f for f in self.clean_for if f is not None}

    @property
    def broken(self) -> list[int]:
        return [j for j in range(len(self.live)) if self.live[j] and self.clean_for[j] is None]

    @property
    def duplicates(self) -> list[int]:
        """Features with more than one clean latent."""
        return sorted(f for f in self.clean_features if len(self.latents_for(f)) > 1)

    def components(self, latent: int) -> list[int]:
        return [int(i) for i in np.flatnonzero(np.abs(self.dec[latent]) >= COMPONENT_COS)]

    @property
    def combos(self) -> list[int]:
        """Broken latents whose decoder mixes two or more features."""
        return [j for j in self.broken if len(self.components(j)) >= 2]

    def all_live_clean(self) -> bool:
        return self.n_live > 0 and not self.broken and not self.duplicates

    def best_latent(self, feature: int) -> int:
        """The live latent whose decoder is closest to ``feature``."""
        scores = np.where(self.live, self.dec[:, feature], -np.inf)
        return int(scores.argmax())


def match(sae: SAE, features: torch.Tensor, acts: torch.Tensor, clean_cos: float = CLEAN_COS) -> Matching:
    """Classify every latent; ``acts`` [N, K] are its activations on an evaluation sample."""
    enc, dec = cosines(sae, features)
    live = to_numpy((acts > 0).any(dim=0))
    both = np.minimum(enc, dec)
    clean_for = tuple(int(both[j].argmax()) if live[j] and both[j].max() >= clean_cos else None
                      for j in range(len(live)))
    return Matching(enc=enc, dec=dec, live=live, clean_for=clean_for)


def count_peaks(values: np.ndarray, bins: int = PEAK_BINS, min_mass: float = PEAK_MIN_MASS,
                floor: float = PEAK_FLOOR) -> int:
    """Number of separated modes of a latent's activations above ``floor`` x its maximum.

    Histogram over (floor * max, max] in ``bins`` bins; a peak is a maximal run of bins each
    holding at least ``min_mass`` of those activations. Toy activations are sums of a few
    fixed magnitudes, so each firing pattern is a narrow spike and runs separate cleanly.
    The floor drops the faint leak (h of a few hundredths) that a ReLU latent with a small
    bias offset shows on inputs without its feature; counted, it is a "peak" of every latent.
    """
    values = values[values > floor * values.max()] if len(values) else values
    if len(values) == 0:
        return 0
    top = float(values.max())
    counts, _ = np.histogram(values, bins=bins, range=(floor * top, top * (1 + 1e-6)))
    heavy = counts >= min_mass * len(values)
    return int(np.sum(heavy[1:] & ~heavy[:-1]) + heavy[0])
