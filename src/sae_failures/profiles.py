"""Run profiles: how big, on what model and corpus, on what hardware. Every size's value lives here.

Notebooks take ``profile`` as a papermill parameter and read everything that scales from
the profile, so a profile means the same thing in every notebook; no module or notebook
switches on a profile's name. Shared sizes are top-level fields; each study has its own
section, whose fields its folder defines (``studies/<study>/sizes.py``): ``suppression`` for
notebook 01, ``alignment`` for 03, ``gated`` for 04, ``scale`` for 05. This module only puts
them together, per profile.
Dictionary sizes are absolute (an int) or a multiple of the SAE's input width
(``TimesD``), resolved by the study against the model at hand.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from typing import Any

from sae_failures.engine.devices import AUTO, resolve_device
from sae_failures.engine.sizes import (  # noqa: F401  (CALIBRATION_*, Size: read through profiles too)
    CALIBRATION_REFERENCE,
    CALIBRATION_TARGET_L0,
    CalibrationSizes,
    Size,
    TimesD,
    resolve,
)
from sae_failures.engine.specs import Site
from sae_failures.studies.alignment.sizes import ALIGNMENT_SWEEP_L1, TOPK_KS, AlignmentSizes
from sae_failures.studies.gated.sizes import (
    BASELINE_WIDTH_FACTOR,
    GATED_BASELINE_L1,
    GATED_L1,
    GatedSizes,
)
from sae_failures.studies.scale_and_seeds.sizes import ScaleSizes
from sae_failures.studies.suppression.sizes import SuppressionSizes

LM_NOTEBOOKS = ("00_quickstart", "01_feature_suppression", "03_alignment_bimodality", "04_gated_sae_pareto")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: str  # key understood by sae_failures.engine.model.load_model
    corpus: str  # key understood by sae_failures.engine.corpus.iter_texts
    device: str  # "auto" here; ``get_profile`` resolves it (cuda, then mps, then cpu) or takes an override
    model_dtype: str  # dtype of the language model's forward passes (harvest, CE splicing)
    context_size: int  # tokens per packed context, position 0 included
    train_tokens: int  # activations harvested for SAE training (position 0 excluded)
    eval_tokens: int  # held-out tokens for reconstruction metrics
    ce_tokens: int  # held-out tokens scored when splicing SAEs into the model (3+ passes each)
    sae_batch_size: int
    default_layer: int  # the residual layer every notebook shares
    suppression: SuppressionSizes
    alignment: AlignmentSizes
    gated: GatedSizes
    scale: ScaleSizes
    sae_autocast: bool = False  # train LM SAEs with bf16 matmuls (2.5x faster on this CPU)
    toy_samples_scale: float = 1.0  # toy SAEs (notebook 02) train on this fraction of the posts' samples
    toy_seeds: int = 10  # notebook 02 trains every setup at seeds 0 .. toy_seeds - 1
    # sparsity grids moved per (model, hook, architecture) to CALIBRATION_TARGET_L0 (``calibration``);
    # None keeps SmolLM2's grids, which were set where they are used
    calibration: CalibrationSizes | None = None
    # train SAEs from a stream of model activations (``streaming``), nothing stored but the
    # held-out set in memory; False: harvest once to disk, as the CPU profiles do
    stream_training: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _smollm2_sites(model: str) -> tuple[Site, ...]:
    """SmolLM2's residual stream at layers 3 and 12 (both cached by notebook 01) and the MLP and
    attention outputs of layer 3 (a harvest through 4 of 30 blocks: the budget's choice)."""
    return (Site("resid 3", model, "blocks.3.hook_resid_post"),
            Site("resid 12", model, "blocks.12.hook_resid_post"),
            Site("mlp 3", model, "blocks.3.hook_mlp_out"),
            Site("attn 3", model, "blocks.3.hook_attn_out"))


OFFLINE_MODEL = "smollm2-135m-offline"
PAPER_MODEL = "EleutherAI/pythia-70m-deduped"
PAPER_LAYER = 3

DEVICE_ENV = "SAE_FAILURES_DEVICE"  # what ``make figures DEVICE=...`` sets
SCALE_ENV = "SAE_FAILURES_SCALE"  # what ``make figures SCALE=0.1`` sets: ``scaled``'s factor
OVERRIDES_ENV = "SAE_FAILURES_OVERRIDES"  # YAML {field: value}, e.g. {train_tokens: 24000, gated.sweep_tokens: 24000}
PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: tiny token counts, real offline model and corpus, CPU, minutes.",
        model=OFFLINE_MODEL,
        corpus="brown",
        device=AUTO,
        model_dtype="bfloat16",
        context_size=64,
        train_tokens=24_000,
        eval_tokens=2_048,
        ce_tokens=1_024,
        sae_batch_size=1024,
        default_layer=12,
        sae_autocast=True,
        toy_samples_scale=0.02,
        toy_seeds=3,
        # offline's code paths on the smallest grids
        suppression=SuppressionSizes(toy_p=(0.05, 0.5), toy_m=(0.2, 1.0), layers=(6, 12),
                                     finetune_tokens=4_096, finetune_batch=256,
                                     frequency_tokens=24_000, l1_from_post=False),
        alignment=AlignmentSizes(
            model=OFFLINE_MODEL, layer=12, width=TimesD(1), sweep_widths=(TimesD(1), TimesD(2)),
            sweep_l1={v: grid[::3] for v, grid in ALIGNMENT_SWEEP_L1.items()}, sweep_tokens=24_000,
            topk_ks=TOPK_KS[::3], checkpoints=3, toy_seeds=4),
        # two of offline's four sites, a residual stream and an attention output: every code path
        # of the sweep, and the hooks of the other two kinds are harvested and spliced in the tests
        # and rehearsed at the paper's sites
        gated=GatedSizes(sites=tuple(s for s in _smollm2_sites(OFFLINE_MODEL) if s.label in ("resid 12", "attn 3")),
                         gated_width=TimesD(1), sweep_tokens=24_000,
                         baseline_l1=GATED_BASELINE_L1[::2], gated_l1=GATED_L1[::2],
                         ablation_site="resid 12", rescale_shift_tokens=12_000, spread_seeds=1, ce_max_factor=2),
        scale=ScaleSizes(seeds=1, seed_notebooks=LM_NOTEBOOKS[:1], budgets=(8192, 16384),
                         sweep_budgets=(8192, 16384), alignment_sweep_l1={"standard": (2.0,), "aligned": (0.8,)},
                         topk_ks=(16, 128), gated_baseline_l1=(1.5, 4.0), gated_l1=(2.5, 6.5),
                         gated_sites=("resid 12",)),
    ),
    "offline": Profile(
        name="offline",
        description="Default of `make figures`: real model (SmolLM2-135M) and corpus (Brown), CPU, no network.",
        model=OFFLINE_MODEL,
        corpus="brown",
        device=AUTO,
        model_dtype="bfloat16",
        context_size=128,
        train_tokens=1_000_000,
        eval_tokens=32_768,
        ce_tokens=8_192,
        sae_batch_size=2048,
        default_layer=12,
        sae_autocast=True,
        suppression=SuppressionSizes(toy_p=(0.01, 0.05, 0.2, 0.5), toy_m=(0.2, 0.4, 0.6, 1.0, 2.0, 3.0),
                                     layers=(3, 9, 12, 18, 24, 29),
                                     # 8192 steps of 256 (two passes over the stored tokens)
                                     finetune_tokens=2_097_152, finetune_batch=256,
                                     frequency_tokens=1_000_000, l1_from_post=False),
        # 4 x and 8 x d_model dictionaries, the sweeps on half the training tokens (the
        # notebook's 30-minute budget)
        alignment=AlignmentSizes(
            model=OFFLINE_MODEL, layer=12, width=TimesD(4), sweep_widths=(TimesD(4), TimesD(8)),
            sweep_l1=ALIGNMENT_SWEEP_L1, sweep_tokens=500_000, topk_ks=TOPK_KS, checkpoints=8,
            toy_seeds=16),
        # Gated 1536 / baseline 2304 latents (4 x d_model) on 40% of the training tokens (the
        # notebook's 30-minute budget)
        gated=GatedSizes(sites=_smollm2_sites(OFFLINE_MODEL), gated_width=TimesD(4 / BASELINE_WIDTH_FACTOR),
                         sweep_tokens=400_000, baseline_l1=GATED_BASELINE_L1, gated_l1=GATED_L1,
                         ablation_site="resid 12", rescale_shift_tokens=200_000),
        # 16 x the notebooks' 1M tokens for the single-SAE claims, 8 x their 500k / 400k for
        # the sweeps, at two or three points per variant; GS-4 also at attn 3, where it fell short
        scale=ScaleSizes(seeds=3, seed_notebooks=LM_NOTEBOOKS, budgets=(1_000_000, 16_000_000),
                         sweep_budgets=(250_000, 4_000_000),
                         alignment_sweep_l1={"standard": (2.0, 5.0), "aligned": (0.8, 1.5)}, topk_ks=(16, 128),
                         gated_baseline_l1=(1.5, 2.5, 4.0), gated_l1=(2.5, 4.0, 6.5),
                         gated_sites=("resid 12", "attn 3")),
    ),
    "classroom": Profile(
        name="classroom",
        description="Teaching: each notebook 00-04 in at most 10 minutes from an empty cache on a 2-core laptop; "
                    "the offline model and corpus at a quarter of its tokens, no network.",
        model=OFFLINE_MODEL,
        corpus="brown",
        device=AUTO,
        model_dtype="bfloat16",
        context_size=128,
        # 00 harvests layer 12 once (about 2 minutes); 01, 03 and 04 reuse it. Batches of 1024
        # keep the offline profile's ~500 steps per SAE on half its tokens.
        train_tokens=524_288,
        eval_tokens=16_384,
        ce_tokens=4_096,
        sae_batch_size=1024,
        default_layer=12,
        sae_autocast=True,
        toy_samples_scale=0.25,
        toy_seeds=3,
        # two layers (3 is a harvest through 4 blocks); fine-tunes of 1024 steps
        suppression=SuppressionSizes(toy_p=(0.05, 0.5), toy_m=(0.2, 0.6, 1.0, 2.0), layers=(3, 12),
                                     finetune_tokens=262_144, finetune_batch=256,
                                     frequency_tokens=524_288, l1_from_post=False),
        # 2 x d_model dictionaries, one sweep width, the offline grids' ends and middle
        alignment=AlignmentSizes(
            model=OFFLINE_MODEL, layer=12, width=TimesD(2), sweep_widths=(TimesD(2),),
            sweep_l1={v: grid[::2] + grid[-1:] for v, grid in ALIGNMENT_SWEEP_L1.items()}, sweep_tokens=262_144,
            topk_ks=TOPK_KS[::3], checkpoints=4, toy_seeds=8),
        # the residual stream at layer 12 alone, three points per frontier
        gated=GatedSizes(sites=_smollm2_sites(OFFLINE_MODEL)[1:2], gated_width=TimesD(2 / BASELINE_WIDTH_FACTOR),
                         sweep_tokens=262_144, baseline_l1=GATED_BASELINE_L1[::2], gated_l1=GATED_L1[::2],
                         ablation_site="resid 12", rescale_shift_tokens=131_072, spread_seeds=1, ce_max_factor=2),
        # notebook 05 runs only when named (``runs.notebooks.ONLY_WHEN_NAMED``): one more seed of 00
        scale=ScaleSizes(seeds=2, seed_notebooks=LM_NOTEBOOKS[:1], budgets=(262_144, 1_048_576),
                         sweep_budgets=(131_072, 524_288),
                         alignment_sweep_l1={"standard": (2.0,), "aligned": (0.8,)}, topk_ks=(16, 128),
                         gated_baseline_l1=(1.5, 4.0), gated_l1=(2.5, 6.5), gated_sites=("resid 12",)),
    ),
    "paper": Profile(
        name="paper",
        description="The papers' models and data at scale: GPU and network (model and dataset hubs).",
        model=PAPER_MODEL,
        corpus="openwebtext",
        device=AUTO,
        model_dtype="float32",
        context_size=128,
        # Each paper's own tokens per SAE, streamed from the model (``stream_training``), so
        # nothing is stored: 50M for notebooks 00 and 03 (the alignment paper's SAEs), 600M
        # for 01's base SAEs (the suppression post: 6 epochs of 100M OpenWebText tokens), 1.2B
        # for 04 (Gated SAEs: 300k steps of 4096). ``SCALE`` (``scaled``) shrinks them all.
        train_tokens=50_000_000,
        eval_tokens=1_000_000,
        ce_tokens=131_072,
        sae_batch_size=4096,
        default_layer=PAPER_LAYER,
        # a fifth of the sweeps' tokens per probe, at most 5 probes (about 1 GPU-minute each)
        calibration=CalibrationSizes(tokens=2_000_000, probes=5, tolerance=0.15),
        stream_training=True,
        suppression=SuppressionSizes(toy_p=(0.01, 0.05, 0.2, 0.5), toy_m=(0.2, 0.4, 0.6, 1.0, 2.0, 3.0),
                                     layers=(0, 1, 2, 3, 4, 5),
                                     # the post: converged by 20-30M tokens; firings over its 100M
                                     finetune_tokens=32_000_000, finetune_batch=1024,
                                     frequency_tokens=100_000_000, l1_from_post=True,
                                     train_tokens=600_000_000),
        # the paper's model and layer (Pythia-160M layer 8), its 4096 and 16384 latents, and
        # the three sae-lens releases it histograms
        alignment=AlignmentSizes(
            model="EleutherAI/pythia-160m-deduped", layer=8, width=4096, sweep_widths=(4096, 16384),
            sweep_l1=ALIGNMENT_SWEEP_L1, sweep_tokens=50_000_000, topk_ks=TOPK_KS, checkpoints=8,
            toy_seeds=16,
            releases={"pythia-70m-deduped-res-sm": "blocks.3.hook_resid_post",
                      "llama-3-8b-it-res-jh": "blocks.25.hook_resid_post",
                      "sae_bench_gemma-2-2b_topk_width-2pow12_date-1109": "blocks.12.hook_resid_post__trainer_0"}),
        # GELU-1L's MLP neurons (the paper's first model) and Pythia's residual, MLP and
        # attention outputs at layer 3; 8 x d_in Gated latents, 1.2B tokens each
        gated=GatedSizes(
            sites=(Site("GELU-1L MLP neurons", "gelu-1l", "blocks.0.mlp.hook_post"),
                   *(Site(f"{kind} {PAPER_LAYER}", PAPER_MODEL, f"blocks.{PAPER_LAYER}.{hook}") for kind, hook in
                     (("resid", "hook_resid_post"), ("mlp", "hook_mlp_out"), ("attn", "hook_attn_out")))),
            gated_width=TimesD(8), sweep_tokens=1_200_000_000, baseline_l1=GATED_BASELINE_L1, gated_l1=GATED_L1,
            ablation_site=f"resid {PAPER_LAYER}", rescale_shift_tokens=2_000_000),
        # the papers' token counts: 10M-160M stored tokens repeated up to 16 times
        scale=ScaleSizes(seeds=3, seed_notebooks=LM_NOTEBOOKS, budgets=(10_000_000, 160_000_000),
                         sweep_budgets=(10_000_000, 160_000_000),
                         alignment_sweep_l1={"standard": (2.0, 5.0), "aligned": (0.8, 1.5)}, topk_ks=(16, 128),
                         gated_baseline_l1=(1.5, 2.5, 4.0), gated_l1=(2.5, 4.0, 6.5),
                         gated_sites=(f"resid {PAPER_LAYER}", f"attn {PAPER_LAYER}")),
    ),
}


def get_profile(name: str, device: str | None = None) -> Profile:
    """The profile called ``name`` on ``device`` (default: ``$SAE_FAILURES_DEVICE``, else the
    profile's own, ``auto``), resolved for this machine; a clear error naming the valid ones otherwise."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)}.") from None
    overrides = os.environ.get(OVERRIDES_ENV)
    if overrides:
        import yaml

        profile = with_overrides(profile, yaml.safe_load(overrides) or {})
    if os.environ.get(SCALE_ENV):
        profile = scaled(profile, os.environ[SCALE_ENV])
    wanted = device if device not in (None, "", AUTO) else os.environ.get(DEVICE_ENV) or profile.device
    return replace(profile, device=resolve_device(wanted))


def _field_names(obj: Any, prefix: str = "") -> list[str]:
    names = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        section = is_dataclass(value) and not prefix and not isinstance(value, TimesD)
        names += _field_names(value, f"{f.name}.") if section else [prefix + f.name]
    return names


def _coerce(name: str, current: Any, value: Any) -> Any:
    """``value`` in the type of the field it replaces (YAML lists become tuples), or one clear error."""
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(current, dict) and isinstance(value, dict):
        value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    numbers = (int, float)
    same = (isinstance(current, bool) == isinstance(value, bool)
            and (isinstance(value, type(current)) or (isinstance(current, numbers) and isinstance(value, numbers))))
    if not same and not isinstance(current, TimesD):
        kind = type(current).__name__
        raise ValueError(f"Profile override {name}={value!r}: expected {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                         f"like {current!r}.")
    return value


def with_overrides(profile: Profile, overrides: dict[str, Any]) -> Profile:
    """``profile`` with the named fields replaced (``section.field`` for a study's sizes), its
    description saying so: how ``$SAE_FAILURES_OVERRIDES`` resizes a profile (the rehearsal's
    smoke token counts) without a new profile or a branch on its name."""
    valid = _field_names(profile)
    for name, value in overrides.items():
        if name not in valid or name in ("name", "device"):
            raise ValueError(f"Unknown profile field {name!r} in ${OVERRIDES_ENV}. Valid: "
                             f"{', '.join(v for v in valid if v not in ('name', 'device'))}.")
        section, _, leaf = name.rpartition(".")
        if section:
            inner = getattr(profile, section)
            profile = replace(profile, **{section: replace(inner, **{leaf: _coerce(name, getattr(inner, leaf), value)})})
        else:
            profile = replace(profile, **{leaf: _coerce(name, getattr(profile, leaf), value)})
    if overrides:
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
        profile = replace(profile, description=f"{profile.description} Overridden: {shown}.")
    return profile


def scaled(profile: Profile, factor: float | str) -> Profile:
    """``profile`` with every SAE's training tokens times ``factor`` (whole batches, at least
    one): the base, sweep, fine-tune, rescale and calibration runs and notebook 05's budgets
    (their doubling kept). Evaluation and CE tokens stay: a scaled run is measured as the
    full one is. How ``make figures PROFILE=paper SCALE=0.1`` runs the papers at a tenth."""
    try:
        factor = float(factor)
    except ValueError:
        factor = float("nan")
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"SCALE must be a positive number (1: the profile's token counts, 0.1: a tenth), "
                         f"got {factor!r}.")
    if factor == 1:
        return profile
    batch = profile.sae_batch_size

    def times(tokens: int | None) -> int | None:
        return None if tokens is None else max(batch, round(tokens * factor / batch) * batch)

    def doubling(budgets: tuple[int, int]) -> tuple[int, int]:
        first = times(budgets[0])
        return first, first * (budgets[1] // budgets[0])

    suppression, gated, alignment = profile.suppression, profile.gated, profile.alignment
    calibration = profile.calibration
    return replace(
        profile, description=f"{profile.description} Scaled: {factor:g} x every SAE's training tokens.",
        train_tokens=times(profile.train_tokens),
        suppression=replace(suppression, finetune_tokens=times(suppression.finetune_tokens),
                            frequency_tokens=times(suppression.frequency_tokens),
                            train_tokens=times(suppression.train_tokens)),
        alignment=replace(alignment, sweep_tokens=times(alignment.sweep_tokens)),
        gated=replace(gated, sweep_tokens=times(gated.sweep_tokens),
                      rescale_shift_tokens=times(gated.rescale_shift_tokens)),
        calibration=None if calibration is None else replace(calibration, tokens=times(calibration.tokens)),
        scale=replace(profile.scale, budgets=doubling(profile.scale.budgets),
                      sweep_budgets=doubling(profile.scale.sweep_budgets)))
