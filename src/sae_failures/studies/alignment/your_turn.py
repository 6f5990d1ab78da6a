"""Notebook 03's "your turn" checks: the aligned SAE's initial decoder norm (AB-7's dead
latents) and TopK's k, each trained on the notebook's activations at its sizes."""

from __future__ import annotations

import dataclasses

from sae_failures.engine.metrics import reconstruction_metrics
from sae_failures.engine.saes import get_sae
from sae_failures.engine.sites import SiteData
from sae_failures.engine.specs import SAESpec
from sae_failures.engine.your_turn import DIRECTIONS, Outcome, compare, judge_choice
from sae_failures.profiles import Profile
from sae_failures.studies.alignment.experiment import (
    SAE_LENS_DECODER_INIT_NORM,
    AlignmentStudy,
    paired_sweep,
)

HOW_MANY = ("most", "some", "few")  # of the latents: more than half, in between, under 5%
SAME_WITHIN = 0.05


def how_many(fraction: float) -> str:
    return "most" if fraction > 0.5 else "few" if fraction < 0.05 else "some"


def init_spec(data: SiteData, study: AlignmentStudy, settings: Profile, norm: float, seed: int = 0) -> SAESpec:
    """The init check's aligned SAE (the notebook trains it at both norms) started from decoder rows of ``norm``."""
    spec = paired_sweep(data.train.spec, {"aligned": study.init_check_l1["aligned"]}, [study.width],
                        study.sweep_tokens, settings.sae_batch_size, seed, settings.sae_autocast, study.checkpoints)
    spec = next(iter(spec.values()))
    if norm == SAE_LENS_DECODER_INIT_NORM:
        return spec
    return dataclasses.replace(spec, options=(*spec.options, ("decoder_init_norm", norm)), checkpoints=0)


def topk_spec(data: SiteData, study: AlignmentStudy, settings: Profile, k: int, seed: int = 0) -> SAESpec:
    """AB-9's TopK SAE at ``k`` (the notebook's sweep trains the same one)."""
    return paired_sweep(data.train.spec, {"topk": (k,)}, [study.width], study.sweep_tokens, settings.sae_batch_size,
                        seed, settings.sae_autocast)["topk", study.width, k]


def decoder_init_norm(data: SiteData, study: AlignmentStudy, settings: Profile, norm: float,
                      my_prediction: str | None, seed: int = 0) -> Outcome:
    """Dead latents of the aligned SAE (the init check's coefficient) started from decoder rows of norm ``norm``."""
    def observe() -> tuple[str, str]:
        spec = init_spec(data, study, settings, norm, seed)
        dead = reconstruction_metrics(get_sae(spec, data.train, device=settings.device), data.x_eval())
        return how_many(dead["dead_fraction"]), (f"{dead['dead_fraction']:.0%} of {spec.width:,} latents never fire "
                                                 f"on {data.heldout.n_tokens:,} held-out tokens")
    why = ("Aligned training builds each encoder row from its decoder row, with a factor that grows as the "
           f"decoder norm shrinks: from sae-lens's norm {SAE_LENS_DECODER_INIT_NORM:g} it starts near 99, an encoder "
           "about 100x a standard SAE's, and most latents die within the first steps. From unit-norm rows it "
           "starts at the standard scale and almost none die. The dead latents come from the starting point, not "
           "from aligned training itself.")
    return judge_choice(my_prediction, observe, HOW_MANY, why)


def topk_k(data: SiteData, study: AlignmentStudy, settings: Profile, k: int, my_prediction: str | None,
           seed: int = 0) -> Outcome:
    """Dead fraction of TopK at ``k`` against TopK at the sweep's smallest k."""
    reference = study.topk_ks[0]

    def observe() -> tuple[str, str]:
        dead = {kk: reconstruction_metrics(get_sae(topk_spec(data, study, settings, kk, seed), data.train,
                                                   device=settings.device), data.x_eval())["dead_fraction"]
                for kk in (reference, k)}
        return compare(dead[k], dead[reference], SAME_WITHIN), (f"dead fraction {dead[reference]:.0%} at "
                                                                 f"k = {reference}, {dead[k]:.0%} at k = {k}")
    why = ("TopK keeps exactly k latents on per token, so only those k get a gradient. With few slots, a latent "
           "that loses the competition early never wins again and dies; with more slots, more latents keep "
           "learning and fewer die. (sae-lens's AuxK loss, which revives dead TopK latents, starts at step "
           "1,000; a shorter run keeps its dead latents.)")
    return judge_choice(my_prediction, observe, DIRECTIONS, why)
