"""Everything a site's SAEs train and are measured on, prepared in one call.

A ``Site`` (``specs``) names a model and hook point. ``prepare_sites`` loads each model
once, harvests all of its sites in one forward pass per split, and bundles per site the
model, the training and held-out stores, the CE contexts and the separator token: what
every language-model notebook needs before its first SAE. With ``Profile.stream_training``
(the paper profile) nothing is harvested: training reads a stream from the model and the
held-out set is held in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformer_lens import HookedTransformer

from sae_failures.engine.activations import (
    ActivationStore,
    ce_contexts,
    harvest,
    hook_widths,
    spec_for,
)
from sae_failures.engine.model import document_separator_id, load_model
from sae_failures.engine.specs import Site
from sae_failures.engine.streaming import ActivationStream, HeldoutActivations
from sae_failures.profiles import Profile


@dataclass(frozen=True)
class SiteData:
    """A site with its model, stores and evaluation tokens."""

    site: Site
    model: HookedTransformer
    train: ActivationStore | ActivationStream  # stored, or streamed (``Profile.stream_training``)
    heldout: ActivationStore | HeldoutActivations
    contexts: np.ndarray  # held-out token contexts for CE splicing
    separator: int

    @property
    def hook(self) -> str:
        return self.site.hook

    def x_eval(self) -> torch.Tensor:
        """Every held-out activation, float32."""
        return self.heldout.tensor()


def resid_site(profile: Profile, layer: int | None = None) -> Site:
    """The residual stream after block ``layer`` (default: the profile's shared layer)."""
    layer = profile.default_layer if layer is None else layer
    return Site(f"resid {layer}", profile.model, f"blocks.{layer}.hook_resid_post")


def prepare_sites(profile: Profile, chosen: Sequence[Site]) -> dict[str, SiteData]:
    """Each site's data by label: every model loaded once, its sites harvested together."""
    prepared = {}
    for name in dict.fromkeys(s.model for s in chosen):
        mine = [s for s in chosen if s.model == name]
        prof = dataclasses.replace(profile, model=name)
        model = load_model(name, device=profile.device, dtype=profile.model_dtype)
        if profile.stream_training:  # nothing on disk: the model runs while the SAEs train
            widths = hook_widths(model, [s.hook for s in mine], profile.context_size)
            train = [ActivationStream(model, spec_for(prof, s.hook, "train"), widths[s.hook]) for s in mine]
            heldout = [HeldoutActivations(model, spec_for(prof, s.hook, "heldout"), widths[s.hook]) for s in mine]
        else:
            train = harvest(model, [spec_for(prof, s.hook, "train") for s in mine])
            heldout = harvest(model, [spec_for(prof, s.hook, "heldout") for s in mine])
        separator = document_separator_id(model)
        for site, tr, ho in zip(mine, train, heldout, strict=True):
            prepared[site.label] = SiteData(site, model, tr, ho, ce_contexts(model, prof, site.hook), separator)
    return prepared


def site_setup(profile: Profile, data: SiteData, ce_tokens: int) -> dict[str, Any]:
    """What a claims table records of a one-site study: where and on how many tokens."""
    return {"hook": data.hook, "layer": profile.default_layer, "train_tokens": data.train.n_tokens,
            "eval_tokens": data.heldout.n_tokens, "ce_tokens": int(ce_tokens), "context_size": profile.context_size,
            "model_dtype": profile.model_dtype}


def prepare_site(profile: Profile, site: Site) -> SiteData:
    """``prepare_sites`` for one site."""
    return prepare_sites(profile, [site])[site.label]
