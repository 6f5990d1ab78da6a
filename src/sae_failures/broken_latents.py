"""Notebook 02's experiments (Chanin et al., broken latents and absorption) and their checks.

Each experiment is a toy setup x an SAE architecture, trained at every seed. Every claim
BL-1 .. BL-11 is a predicate over the trained SAEs of one seed, computed from the latent
matching (``latent_matching``); a claim's verdict counts the seeds it held in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sae_lens import SAE

from sae_failures.latent_matching import (
    Matching,
    count_peaks,
    latent_cosines,
    match,
)
from sae_failures.toy_data import ToySetup, build_dictionary, build_generator, get_setup
from sae_failures.toy_training import ToyRun, aux_options

# Chosen here (the posts publish only BL-1's L1 3e-5 / lr 3e-4 and BL-9's L1 1e-2): see the
# notebook for why the L1 is 1e-3 and the lr is the post's 3e-4 scaled linearly to batch 8192.
L1 = 1e-3
L1_SUPERPOSITION = 1e-2
LR = 2.4e-3
BATCH_SIZE = 8192
SEEDS = (0, 1, 2)
BASE_SAMPLES = 100_000_000
AUX_SAMPLES = 150_000_000
EVAL_SAMPLES = 100_000
SUPERPOSITION_COS = 0.95  # "tracks a feature" when features themselves overlap (|cos| ~ 0.05)
ORTHOGONAL_COS = 0.05  # BL-11: live tied latents count as mutually orthogonal below this
MIX_COS = 0.1  # a latent "picks up" / "merges" a feature at |cos| >= this


@dataclass(frozen=True)
class Experiment:
    setup: str
    architecture: str
    d_sae: int
    samples: int = BASE_SAMPLES
    l1: float = L1

    @property
    def name(self) -> str:
        return f"{self.setup}/{self.architecture}"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("absorption", "standard", 4),
    Experiment("absorption", "tied", 4),
    Experiment("too_wide", "standard", 8),
    Experiment("too_wide", "tied", 8),
    Experiment("too_wide_cooc", "tied", 8),
    Experiment("too_narrow", "standard", 5),
    Experiment("too_narrow", "tied", 5),
    Experiment("cooc_a", "tied", 5),
    Experiment("cooc_a", "tied_aux", 5, AUX_SAMPLES),
    Experiment("cooc_b", "tied", 5),
    Experiment("cooc_b", "tied_aux", 5, AUX_SAMPLES),
    Experiment("superposition", "tied", 5, AUX_SAMPLES, L1_SUPERPOSITION),
    Experiment("superposition", "tied_aux", 5, AUX_SAMPLES, L1_SUPERPOSITION),
    Experiment("single_latent", "standard", 1),
    Experiment("single_latent", "tied", 1),
)


def experiment(name: str) -> Experiment:
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    raise ValueError(f"Unknown experiment {name!r}. Valid: {', '.join(e.name for e in EXPERIMENTS)}.")


def run_for(exp: Experiment, seed: int, samples_scale: float) -> ToyRun:
    n = int(exp.samples * samples_scale) // BATCH_SIZE * BATCH_SIZE
    return ToyRun(exp.setup, exp.architecture, exp.d_sae, seed, exp.l1, n, LR, BATCH_SIZE,
                  options=aux_options(n) if exp.architecture == "tied_aux" else ())


@dataclass
class Trained:
    """One trained toy SAE with what the checks need."""

    run: ToyRun
    sae: SAE
    features: torch.Tensor  # [F, D] unit feature vectors
    acts: torch.Tensor  # [N, K] latent activations on fresh samples
    matching: Matching

    @property
    def setup(self) -> ToySetup:
        return get_setup(self.run.setup)

    @torch.no_grad()
    def encode_pattern(self, features: dict[int, float] | list[int]) -> torch.Tensor:
        """Latent activations for one input made of the given features (at their magnitudes)."""
        mags = features if isinstance(features, dict) else {i: self.setup.magnitudes[i] for i in features}
        x = sum(m * self.features[i] for i, m in mags.items())
        return self.sae.encode(torch.as_tensor(x)[None])[0]

    def peaks(self) -> list[int]:
        return [count_peaks(self.acts[:, j].numpy()) for j in range(self.acts.shape[1])]

    def max_latent_overlap(self) -> float:
        live = np.flatnonzero(self.matching.live)
        cos = np.abs(latent_cosines(self.sae)[np.ix_(live, live)])
        np.fill_diagonal(cos, 0.0)
        return float(cos.max()) if len(live) > 1 else 0.0

    def tracked(self, threshold: float) -> set[int]:
        """Features some live latent matches at decoder (and encoder) cos >= threshold."""
        m = self.matching
        both = np.minimum(m.enc, m.dec)[m.live]
        return {int(i) for i in np.flatnonzero((both >= threshold).any(axis=0))}


@torch.no_grad()
def analyse(run: ToyRun, sae: SAE, n_samples: int = EVAL_SAMPLES) -> Trained:
    setup = get_setup(run.setup)
    features = build_dictionary(setup, run.seed).feature_vectors.detach()
    f = build_generator(setup, seed=10_000 + run.seed).sample(n_samples)  # a stream not trained on
    acts = sae.encode(f @ features)
    return Trained(run, sae, features, acts, match(sae, features, acts))


# ---- the claims, one predicate per seed: (held, what was seen) ----------------------------

def bl1(untied: Trained, tied: Trained) -> tuple[bool, str]:
    parent = int(untied.encode_pattern([0]).argmax())
    both = untied.encode_pattern([0, 1])
    child = int(both.argmax())
    parent_alone = float(untied.encode_pattern([0])[parent])
    parent_suppressed = child != parent and float(both[parent]) <= 0.1 * parent_alone
    f01 = (untied.features[0] + untied.features[1]) / 2 ** 0.5
    child_dec = float(torch.nn.functional.cosine_similarity(untied.sae.W_dec[child].detach(), f01, dim=0))
    tied_clean = tied.matching.clean_features == {0, 1, 2, 3} and tied.matching.all_live_clean()
    held = parent_suppressed and child_dec >= 0.95 and tied_clean
    return held, (f"untied: parent on f0+f1 {float(both[parent]):.2f} vs {parent_alone:.2f} alone, "
                  f"child decoder cos(f0+f1) {child_dec:.3f}; tied clean {tied_clean}")


def bl2(untied: Trained) -> tuple[bool, str]:
    m = untied.matching
    held = m.n_live > 4 and bool(m.duplicates or m.combos)
    return held, f"live {m.n_live}/8, duplicated features {m.duplicates}, combo latents {len(m.combos)}"


def clean_one_per_feature(t: Trained, features: set[int]) -> tuple[bool, str]:
    m = t.matching
    held = m.clean_features == features and m.all_live_clean() and m.n_live == len(features)
    return held, f"live {m.n_live}, clean for {sorted(m.clean_features)}, broken {len(m.broken)}"


def bl6(tied: Trained) -> tuple[bool, str]:
    m = tied.matching
    l5, l7 = m.best_latent(5), m.best_latent(7)
    picks_12 = m.dec[l5, 12] >= MIX_COS and m.dec[l7, 12] >= MIX_COS
    negative = m.dec[l5, 7] <= -0.01 and m.dec[l7, 5] <= -0.01
    overlap = tied.max_latent_overlap()
    peaks = tied.peaks()
    others = [j for j in np.flatnonzero(m.live) if j not in (l5, l7)]
    multi_peaked = peaks[l5] >= 2 and peaks[l7] >= 2 and all(peaks[j] == 1 for j in others)
    held = bool(picks_12 and negative and overlap < ORTHOGONAL_COS and multi_peaked and l5 != l7)
    return held, (f"f5/f7 latents: f12 cos {m.dec[l5, 12]:.2f}/{m.dec[l7, 12]:.2f}, cross cos "
                  f"{m.dec[l5, 7]:.2f}/{m.dec[l7, 5]:.2f}; max latent overlap {overlap:.3f}; "
                  f"peaks broken {peaks[l5]},{peaks[l7]} / others {[peaks[j] for j in others]}")


def bl7(aux: Trained) -> tuple[bool, str]:
    m = aux.matching
    held = m.all_live_clean() and {5, 7} <= m.clean_features
    return held, f"clean for {sorted(m.clean_features)}, broken {len(m.broken)}"


def merged_567(t: Trained, threshold: float) -> tuple[int, bool]:
    """Latents mixing two or more of f5, f6, f7 (|cos| >= MIX_COS), and whether f3 is tracked."""
    m = t.matching
    mixing = [j for j in np.flatnonzero(m.live)
              if sum(abs(m.dec[j, i]) >= MIX_COS for i in (5, 6, 7)) >= 2]
    return len(mixing), 3 in t.tracked(threshold)


def bl8(tied: Trained, aux: Trained) -> tuple[bool, str]:
    n_mix, has_3 = merged_567(tied, 0.99)
    on_567 = sum(int(np.abs(tied.matching.dec[j, [5, 6, 7]]).max() >= 0.5) for j in np.flatnonzero(tied.matching.live))
    plain = n_mix >= 1 and on_567 == 2 and has_3
    a = aux.matching
    aux_ok = a.all_live_clean() and 6 not in a.clean_features
    return plain and aux_ok, (f"tied: {on_567} latents on f5-f7 ({n_mix} mixing), f3 clean {has_3}; "
                              f"aux: clean for {sorted(a.clean_features)}, broken {len(a.broken)}")


def bl9(tied: Trained, aux: Trained) -> tuple[bool, str]:
    n_mix, _ = merged_567(tied, SUPERPOSITION_COS)
    plain_tracked = tied.tracked(SUPERPOSITION_COS)
    aux_tracked = aux.tracked(SUPERPOSITION_COS)
    plain = {3, 4, 8} <= plain_tracked and n_mix >= 1
    aux_ok = aux_tracked == {3, 4, 5, 7, 8}
    return plain and aux_ok, (f"tied tracks {sorted(plain_tracked)}, {n_mix} latents mix f5-f7; "
                              f"aux tracks {sorted(aux_tracked)} (cos >= {SUPERPOSITION_COS})")


def bl10(untied: Trained, tied: Trained) -> tuple[bool, str]:
    def merged(t: Trained) -> bool:
        d = t.matching.dec[0]
        return bool(d[0] == d.max() and d[1] >= MIX_COS and d[2] >= MIX_COS and abs(d[3]) < MIX_COS)
    enc_dec = float(torch.nn.functional.cosine_similarity(untied.sae.W_enc[:, 0].detach(), untied.sae.W_dec[0].detach(), dim=0))
    held = merged(untied) and merged(tied) and enc_dec >= 0.95
    d_u, d_t = untied.matching.dec[0], tied.matching.dec[0]
    return held, (f"untied dec cos f0..f3 {np.round(d_u, 2).tolist()}, tied {np.round(d_t, 2).tolist()}, "
                  f"untied cos(enc, dec) {enc_dec:.3f}")


def bl11(tied_runs: list[Trained]) -> tuple[bool, str]:
    overlaps = {t.run.setup: t.max_latent_overlap() for t in tied_runs}
    held = all(v < ORTHOGONAL_COS for v in overlaps.values())
    return held, "max |cos| between live latents: " + ", ".join(f"{k} {v:.3f}" for k, v in overlaps.items())


def seed_verdict(held: list[bool]) -> str:
    """All seeds: reproduced; some: partial; none: not_reproduced."""
    n = sum(held)
    return "reproduced" if n == len(held) else "partial" if n else "not_reproduced"
