"""Toy feature worlds built on ``sae_lens.synthetic``: what a toy SAE (``toy_training``) trains on.

The worlds themselves (the broken-latents posts' setups) are the study's
(``studies.broken_latents.toy_worlds``); this module is the machinery.

sae-lens supplies the feature dictionary (``FeatureDictionary``, including its
near-orthogonal initializer for superposition), the firing generator
(``ActivationGenerator``) and the gating hierarchy (``HierarchyNode``: a child fires only
when its parent fires). The posts need three things it lacks, and only those live here:

- ``forced_parents_modifier``: "whenever f5 or f7 fires, f12 fires too" -- the child
  forces its parent on, the reverse of sae-lens's gating rule.
- ``orthonormal_initializer``: exactly orthogonal features (QR), so "no superposition"
  means cos = 0, not sae-lens's approximately orthogonal optimisation.
- ``BernoulliActivationGenerator``: the same distribution as ``ActivationGenerator`` for
  constant magnitudes, sampled densely (mask * magnitude) -- three times faster than the
  sparse index path, which matters at 100M+ samples per SAE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from sae_lens.synthetic import (
    ActivationGenerator,
    FeatureDictionary,
    HierarchyNode,
    hierarchy_modifier,
    orthogonal_initializer,
)

Rule = tuple[int, tuple[int, ...]]  # (parent, children)


@dataclass(frozen=True)
class ToySetup:
    """One toy world: features, their firing rules, and how they are embedded.

    ``firing_probabilities`` are the probabilities each feature is *sampled* with, before
    the rules apply. ``gated`` rules zero a child whenever its parent is off (sae-lens
    hierarchy); ``forced`` rules switch a parent on whenever any of its children fires.
    """

    name: str
    d_in: int
    firing_probabilities: tuple[float, ...]
    magnitudes: tuple[float, ...]
    gated: tuple[Rule, ...] = ()
    forced: tuple[Rule, ...] = ()
    description: str = ""
    n_features: int = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.firing_probabilities)
        object.__setattr__(self, "n_features", n)
        if len(self.magnitudes) != n:
            raise ValueError(f"{self.name}: {n} firing probabilities but {len(self.magnitudes)} magnitudes.")
        for parent, children in (*self.gated, *self.forced):
            bad = [i for i in (parent, *children) if not 0 <= i < n]
            if bad:
                raise ValueError(f"{self.name}: rule {parent} -> {children} names features {bad}; valid: 0..{n - 1}.")

    @property
    def superposition(self) -> bool:
        return self.n_features > self.d_in

    def expected_mse(self) -> torch.Tensor:
        """p * m^2 per feature: what a latent saves in MSE by representing it (BL-5)."""
        p = torch.tensor(self.firing_probabilities)
        return p * torch.tensor(self.magnitudes) ** 2


def linear(start: float, stop: float, n: int) -> tuple[float, ...]:
    return tuple(torch.linspace(start, stop, n).tolist())


def forced_parents_modifier(rules: Sequence[Rule]):
    """An sae-lens ``ActivationsModifier``: each parent fires (at its magnitude) whenever
    any of its children is active."""
    parents = [p for p, _ in rules]
    children = [list(c) for _, c in rules]

    def modifier(activations: torch.Tensor, generator: ActivationGenerator) -> torch.Tensor:
        magnitudes = generator.mean_firing_magnitudes
        for parent, kids in zip(parents, children, strict=True):
            child_active = (activations[:, kids] > 0).any(dim=1)
            activations[:, parent] = torch.where(child_active, magnitudes[parent], activations[:, parent])
        return activations

    return modifier


class BernoulliActivationGenerator(ActivationGenerator):
    """``ActivationGenerator`` for constant magnitudes (std 0, no correlation matrix),
    sampled as one dense Bernoulli mask; the configured modifiers apply as in sae-lens.
    ``rng`` (a ``torch.Generator``) makes each data stream reproducible on its own."""

    rng: torch.Generator | None = None

    @torch.no_grad()
    def sample(self, batch_size: int) -> torch.Tensor:
        if self.correlation_matrix is not None or self.low_rank_correlation is not None \
                or bool((self.std_firing_magnitudes != 0).any()):
            return super().sample(batch_size)
        fires = torch.rand(batch_size, self.num_features, device=self.firing_probabilities.device,
                           generator=self.rng)
        activations = (fires < self.firing_probabilities) * self.mean_firing_magnitudes
        if self.modify_activations is not None:
            activations = self.modify_activations(activations, self).relu()
        return activations


def build_generator(setup: ToySetup, seed: int | None = None, fast: bool = True) -> ActivationGenerator:
    """The setup's firing process as an sae-lens generator (gating first, then forcing);
    with ``seed`` (fast generator only) the stream has its own random generator."""
    modifiers = []
    if setup.gated:
        roots = [HierarchyNode(parent, [HierarchyNode(c) for c in children]) for parent, children in setup.gated]
        modifiers.append(hierarchy_modifier(roots))
    if setup.forced:
        modifiers.append(forced_parents_modifier(setup.forced))
    cls = BernoulliActivationGenerator if fast else ActivationGenerator
    generator = cls(
        num_features=setup.n_features,
        firing_probabilities=torch.tensor(setup.firing_probabilities),
        mean_firing_magnitudes=torch.tensor(setup.magnitudes),
        modify_activations=modifiers or None,
    )
    if seed is not None and isinstance(generator, BernoulliActivationGenerator):
        generator.rng = torch.Generator().manual_seed(seed)
    return generator


def orthonormal_initializer(feature_dict: FeatureDictionary) -> None:
    """Exactly orthonormal feature vectors (requires n_features <= hidden_dim)."""
    q, _ = torch.linalg.qr(feature_dict.feature_vectors.data.T)  # [d, n], orthonormal columns
    feature_dict.feature_vectors.data = q.T.contiguous()


@lru_cache(maxsize=128)
def build_dictionary(setup: ToySetup, seed: int) -> FeatureDictionary:
    """Unit feature vectors: exactly orthogonal when they fit, else sae-lens's
    near-orthogonal optimisation (20 features in 19 dims: |cos| ~ 1/19; 2000 Adam steps,
    hence cached). Treat the result as read-only."""
    initializer = orthogonal_initializer(num_steps=2000, lr=0.01) if setup.superposition else orthonormal_initializer
    torch.manual_seed(seed)
    with torch.enable_grad():  # sae-lens's orthogonaliser runs Adam, also when called under no_grad
        return FeatureDictionary(setup.n_features, setup.d_in, initializer=initializer, seed=seed)
