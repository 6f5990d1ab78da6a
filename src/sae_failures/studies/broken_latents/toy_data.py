"""Toy feature data for the broken-latents notebook, built on ``sae_lens.synthetic``.

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


BL_SETUPS: dict[str, ToySetup] = {s.name: s for s in [
    ToySetup("absorption", 50, (0.25, 0.2, 0.05, 0.05), (1.0,) * 4, gated=((0, (1,)),),
             description="BL-1: 4 orthogonal features in 50 dims; f1 fires only with f0 "
                         "(P(f1 | f0) = 0.2, so P(f1) = 0.05)"),
    ToySetup("too_wide", 20, (0.2,) * 4, (1.0,) * 4,
             description="BL-2/3: 4 independent orthogonal features in 20 dims, p = 0.2"),
    ToySetup("too_wide_cooc", 20, (0.2,) * 4, (1.0,) * 4, forced=((0, (1, 2)),),
             description="BL-4: as too_wide, but f1 or f2 firing forces their parent f0"),
    ToySetup("too_narrow", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20),
             description="BL-5: 20 independent orthogonal features in 50 dims, p rising "
                         "linearly to 0.3, magnitude falling linearly from 20 to 1"),
    ToySetup("cooc_a", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((12, (5, 7)),),
             description="BL-6/7: too_narrow, with f5 or f7 forcing f12"),
    ToySetup("cooc_b", 50, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((6, (5, 7)),),
             description="BL-8: too_narrow, with f5 or f7 forcing f6 (the top expected-MSE feature)"),
    ToySetup("superposition", 19, linear(0.3 / 20, 0.3, 20), linear(20.0, 1.0, 20), forced=((6, (5, 7)),),
             description="BL-9: cooc_b with the 20 features squeezed into 19 dims"),
    ToySetup("single_latent", 20, (0.3, 0.4, 0.4, 0.2), (1.0,) * 4, gated=((0, (1, 2)),),
             description="BL-10: f0 p = 0.3; f1, f2 p = 0.4 given f0; f3 p = 0.2"),
]}


def get_setup(name: str) -> ToySetup:
    if name not in BL_SETUPS:
        raise ValueError(f"Unknown toy setup {name!r}. Valid setups: {', '.join(BL_SETUPS)}.")
    return BL_SETUPS[name]
