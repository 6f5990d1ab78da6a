"""Notebook 02's "your turn" checks and its explorer: the posts' toy worlds with one firing
rule changed, trained as the notebook trains them (cached like every toy SAE).

A changed world gets a name that spells out the change, since a toy SAE's cache key names
its world by name.
"""

from __future__ import annotations

import dataclasses

from sae_failures.engine.latent_matching import CLEAN_COS
from sae_failures.engine.saes import get_saes
from sae_failures.engine.toy_data import ToySetup
from sae_failures.engine.toy_training import ToyRun
from sae_failures.engine.your_turn import Outcome, judge_choice
from sae_failures.profiles import Profile
from sae_failures.studies.broken_latents.experiment import (
    Trained,
    analyse,
    bl1,
    experiment,
    run_for,
)
from sae_failures.studies.broken_latents.toy_worlds import get_setup

ABSORPTION = ("absorbed", "clean")
EXPLORER_SAMPLES_SCALE = 0.25  # of BL-1's 100M samples: enough for its solutions, seconds per slider move


def explorer_samples_scale(settings: Profile) -> float:
    """The explorer's share of BL-1's samples: ``EXPLORER_SAMPLES_SCALE``, or the profile's own
    toy share where that is smaller (the smoke profile)."""
    return min(settings.toy_samples_scale, EXPLORER_SAMPLES_SCALE)
MERGE = ("merged", "clean")


def absorption_world(p_parent: float, p_child: float, child_needs_parent: bool = True) -> ToySetup:
    """BL-1's world with f0 firing at ``p_parent`` and f1 at ``p_child`` given f0 (or, when
    ``child_needs_parent`` is False, at the same overall rate on its own)."""
    for name, p in (("p_parent", p_parent), ("p_child", p_child)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} is a probability between 0 and 1, got {p!r}.")
    p_parent, p_child = round(p_parent, 4), round(p_child, 4)  # a slider's 0.30000000000000004 is 0.3
    base = get_setup("absorption")
    if child_needs_parent:
        return dataclasses.replace(base, name=f"absorption-p0{p_parent:g}-p1given0{p_child:g}",
                                   firing_probabilities=(p_parent, p_child, *base.firing_probabilities[2:]),
                                   description=f"BL-1's world, P(f0) = {p_parent:g}, P(f1 | f0) = {p_child:g}")
    return dataclasses.replace(base, name=f"absorption-p0{p_parent:g}-p1independent{p_parent * p_child:g}", gated=(),
                               firing_probabilities=(p_parent, p_parent * p_child, *base.firing_probabilities[2:]),
                               description=f"BL-1's world, f1 independent of f0 at P(f1) = {p_parent * p_child:g}")


def train_world(setup: ToySetup, architecture: str, samples_scale: float, seed: int = 0) -> Trained:
    """One toy SAE with as many latents as ``setup`` has features, at BL-1's training settings."""
    template = run_for(experiment(f"absorption/{architecture}"), seed, samples_scale)
    run = dataclasses.replace(template, setup=setup, d_sae=setup.n_features)
    return analyse(run, get_saes({"run": run})["run"])


def absorbed(untied: Trained) -> str:
    """"absorbed" where BL-1's untied parts hold, "clean" where every latent is one feature."""
    parts, _ = bl1(untied, untied)
    if parts["parent silent on f0+f1"] and parts["child decoder = f0+f1"]:
        return "absorbed"
    m = untied.matching
    clean = m.clean_features == set(range(untied.setup.n_features)) and m.all_live_clean()
    return "clean" if clean else "neither absorbed nor clean"


def co_occurrence(child_needs_parent: bool, my_prediction: str | None, samples_scale: float,
                  seed: int = 0) -> Outcome:
    """The untied SAE of BL-1's world, with f1 firing only with f0 or on its own at the same rate."""
    base = get_setup("absorption")
    p_parent, p_child = base.firing_probabilities[:2]

    def observe() -> tuple[str, str]:
        world = absorption_world(p_parent, p_child, child_needs_parent)
        trained = train_world(world, "untied", samples_scale, seed)
        return absorbed(trained), f"{world.description}; untied SAE, seed {seed}: {bl1(trained, trained)[1].split(';')[0]}"
    why = ("Absorption is bought by co-occurrence. When f1 fires only with f0, one latent for f0+f1 and a parent "
           "latent that stays silent on it cost one active latent where two would; the L1 penalty pays for that "
           "saving. When f1 fires on its own, there is no f0+f1 input to save on, and each latent learns one "
           "feature.")
    return judge_choice(my_prediction, observe, ABSORPTION, why)


def single_latent_world(p_children: float) -> ToySetup:
    """BL-10's world with f1 and f2 firing at ``p_children`` given f0."""
    if not 0 <= p_children <= 1:
        raise ValueError(f"p_children is a probability between 0 and 1, got {p_children!r}.")
    p_children = round(p_children, 4)
    base = get_setup("single_latent")
    p = base.firing_probabilities
    return dataclasses.replace(base, name=f"single_latent-children{p_children:g}",
                               firing_probabilities=(p[0], p_children, p_children, p[3]),
                               description=f"BL-10's world, P(f1 | f0) = P(f2 | f0) = {p_children:g}")


def merged(trained: Trained) -> tuple[str, float]:
    """"clean" when the one latent's decoder is f0 (|cosine| >= the clean rule's 0.99; a latent may
    learn the feature negated, as BL-10 reports), else "merged"."""
    cos = abs(float(trained.matching.dec[0, 0]))
    return ("clean" if cos >= CLEAN_COS else "merged"), cos


def single_latent(p_children: float, my_prediction: str | None, samples_scale: float, seed: int = 0) -> Outcome:
    """BL-10's one-latent untied SAE, its children firing with f0 at ``p_children``."""
    def observe() -> tuple[str, str]:
        world = single_latent_world(p_children)
        template = run_for(experiment("single_latent/untied"), seed, samples_scale)
        run: ToyRun = dataclasses.replace(template, setup=world)
        trained = analyse(run, get_saes({"run": run})["run"])
        found, cos = merged(trained)
        parts = trained.matching.dec[0]
        return found, (f"{world.description}: the latent's decoder cosines with f0..f3 "
                       f"{', '.join(f'{c:.2f}' for c in parts)}; f0 at {cos:.3f}")
    why = ("One latent is paid to reconstruct as much as it can of what fires. When f1 and f2 often come with f0, "
           "the best single direction is f0 tilted toward them, and the latent merges parent and children; only "
           "when they rarely fire does f0 alone win. Matryoshka SAEs assume their first latents learn parents "
           "cleanly: that holds only as far as the children stay rare.")
    return judge_choice(my_prediction, observe, MERGE, why)

