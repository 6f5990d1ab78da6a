"""Feature suppression (notebook 01): the toy model, fine-tuning specs and per-latent analysis.

The fine-tuning methods themselves (which parameters train) live in ``variants/scaled.py``.

FS-1: with loss ||y - x||^2 / d + c |f|_1 and a single binary feature of strength m
firing with probability p, the optimum learned activation is a = m - c d / 2, whatever p
(the loss when the feature is off is zero, so p only scales the objective). sae-lens sums
the squared error over d, so the same SAE is trained with L1 coefficient c * d.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.training.sae_trainer import SAETrainer

from sae_failures.engine import saes
from sae_failures.engine.activations import ActivationStore
from sae_failures.engine.claims import Claim, rule, verdict
from sae_failures.engine.devices import to_numpy
from sae_failures.engine.headline import DIRECTION, MATCHED, magnitude
from sae_failures.engine.metrics import EVAL_BATCH, latent_firing, reconstruction_metrics
from sae_failures.engine.saes import load_checkpoints
from sae_failures.engine.sites import SiteData
from sae_failures.engine.specs import SAESpec, cache_relpath, release_spec, standard_spec
from sae_failures.engine.training import BatchSource, activation_scale
from sae_failures.profiles import Profile
from sae_failures.variants.scaled import ENCODER_METHODS, METHODS
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig


def predicted_activation(m: float, c: float, d: int) -> float:
    """Learned activation of the single-feature example: max(m - c d / 2, 0)."""
    return max(m - c * d / 2, 0.0)


def train_single_feature(p: float, m: float, c: float, d: int, steps: int = 400,
                         batch: int = 4096, lr: float = 1e-2, seed: int = 0) -> float:
    """Train a 1-latent unit-norm SAE on x = m * u with probability p; return its activation on x = m * u."""
    gen = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(d, generator=gen), dim=0)

    def batches():
        while True:
            fires = (torch.rand(batch, 1, generator=gen) < p).float()
            yield fires * m * direction

    torch.manual_seed(seed)
    cfg = UnitNormTrainingSAEConfig(d_in=d, d_sae=1, l1_coefficient=c * d,
                                    apply_b_dec_to_input=False)
    sae = UnitNormTrainingSAE(cfg)
    with torch.no_grad():  # start aligned with the feature: the question is its size, not its direction
        sae.W_dec.copy_(direction[None])
        sae.W_enc.copy_(direction[:, None])
    for bias in (sae.b_enc, sae.b_dec):  # the example has no biases (a bias would absorb p m u)
        bias.requires_grad_(False)
    provider = batches()
    trainer = SAETrainer(SAETrainerConfig(total_training_samples=steps * batch,
                                          train_batch_size_samples=batch, lr=lr, lr_end=lr),
                         sae, provider)
    for _ in range(steps):
        trainer.step(next(provider))
    sae.apply_constraints()
    with torch.no_grad():
        return float(sae.encode((m * direction)[None])[0, 0])


@dataclass(frozen=True)
class LatentStats:
    """Per-latent statistics on evaluation tokens."""

    frequency: np.ndarray  # fraction of tokens on which the latent fires
    strength: np.ndarray  # mean activation when it fires (0 if it never does)
    n_tokens: int  # tokens counted over: one firing is a frequency of 1 / n_tokens


def latent_stats(sae: SAE, x: torch.Tensor) -> LatentStats:
    """Per-latent firing frequency and mean firing activation on ``x`` (streamed: ``metrics.latent_firing``)."""
    count, total = latent_firing(sae, x)
    return _stats(count, total, x.shape[0])


def dataset_stats(sae: SAE, source: BatchSource, n_tokens: int) -> LatentStats:
    """``latent_stats`` over ``n_tokens`` rows of ``source`` (at most one pass): its training data,
    as the post counted firings over its whole dataset."""
    n_tokens = min(n_tokens, source.n_tokens)
    count = total = 0
    for batch in source.batches(min(EVAL_BATCH, n_tokens), seed=0, n_samples=n_tokens):
        c, t = latent_firing(sae, batch)
        count, total = count + c, total + t
    return _stats(count, total, n_tokens)


def _stats(count: np.ndarray, total: np.ndarray, n: int) -> LatentStats:
    strength = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return LatentStats(frequency=count / n, strength=strength, n_tokens=n)


def decoder_scale(finetuned_w_dec: torch.Tensor, base_w_dec: torch.Tensor) -> np.ndarray:
    """Per-latent scale a fine-tune applied: ratio of decoder row norms (s is folded into W_dec on save)."""
    return to_numpy(finetuned_w_dec.norm(dim=1) / base_w_dec.norm(dim=1))


def partial_correlation(y: np.ndarray, x: np.ndarray, control: np.ndarray) -> float:
    """Pearson correlation of y and x after regressing both on ``control`` (with intercept)."""
    design = np.column_stack([np.ones_like(control), control])

    def residual(v: np.ndarray) -> np.ndarray:
        coef, *_ = np.linalg.lstsq(design, v, rcond=None)
        return v - design @ coef

    return float(np.corrcoef(residual(y), residual(x))[0, 1])


def correlations(target: np.ndarray, log_frequency: np.ndarray, log_strength: np.ndarray
                 ) -> dict[str, float]:
    """Pearson and partial correlations of ``target`` with log frequency and log strength."""
    return {
        "pearson_frequency": float(np.corrcoef(target, log_frequency)[0, 1]),
        "pearson_strength": float(np.corrcoef(target, log_strength)[0, 1]),
        "partial_frequency": partial_correlation(target, log_frequency, log_strength),
        "partial_strength": partial_correlation(target, log_strength, log_frequency),
    }


def fractional_reduction(original: float, finetuned: float, perfect: float = 0.0) -> float:
    """(original - finetuned) / (original - perfect): 0 = the original SAE, 1 = perfect."""
    return (original - finetuned) / (original - perfect)


def frequency_jump(frequency: np.ndarray, n_tokens: int) -> tuple[float, float]:
    """Largest gap in the sorted log10 frequencies, counted over ``n_tokens`` tokens.

    Returns (the frequency just above the gap, the gap in decades). The post's Figure 6: a
    near-discontinuous jump separates near-dead latents from live ones. Never-active latents
    are the dead side's floor, drawn at half a firing (0.5 / ``n_tokens``): the step from there to a
    single firing is log10(2), so a jump needs live latents far above the near-dead ones.
    """
    logs = np.sort(np.log10(np.maximum(frequency, 0.5 / n_tokens)))
    if len(logs) < 2:
        return float("nan"), 0.0
    gaps = np.diff(logs)
    i = int(np.argmax(gaps))
    return float(10 ** logs[i + 1]), float(gaps[i])


def layer_jumps(stats: dict[int, LatentStats]) -> dict[int, tuple[float, float, int]]:
    """Per layer: ``frequency_jump``'s (frequency above the jump, jump in decades) and the never-active count."""
    return {layer: (*frequency_jump(s.frequency, s.n_tokens), int((s.frequency == 0).sum()))
            for layer, s in stats.items()}


def l1_from_post(c: float, activation_scale: float, d: int) -> float:
    """Our L1 coefficient equivalent to the post's c in ||y - x||^2 / d + c |f|_1.

    ``training.train_sae`` trains on x' = a x with the squared error summed over d; for a unit-norm SAE,
    ||y' - x'||^2 + lambda |f'|_1 = a^2 d (||y - x||^2 / d + lambda / (a d) |f|_1), so
    lambda = c a d.
    """
    return c * activation_scale * d


POST_L1 = 2e-3  # the post's c (notebook 01's parameter ``post_l1``; used where ``l1_from_post``)


def base_spec(profile: Profile, store: ActivationStore, d_model: int, seed: int,
              post_l1: float, release: str = "", release_width: int = 0) -> SAESpec:
    """The SAE a layer's fine-tunes start from.

    By default the repository's standard SAE (``specs.standard_spec``). With the profile's
    ``suppression.l1_from_post`` (the paper profile): the same architecture with the post's
    coefficient ``post_l1`` (c = 2e-3) mapped into this repository's convention, or, when ``release`` names a sae-lens release (e.g. pythia-70m-deduped-res-sm),
    that release's SAE for the layer instead of pretraining one (``release_width``: its
    dictionary size; 0 reads it from the release's config).
    """
    tokens = profile.suppression.train_tokens or profile.train_tokens
    if not profile.suppression.l1_from_post:
        return standard_spec(store.spec, tokens, profile.sae_batch_size, d_model, seed=seed,
                             autocast=profile.sae_autocast)
    scale = activation_scale(store.d, store.batches(profile.sae_batch_size, seed=seed))
    l1 = l1_from_post(post_l1, scale, store.d)
    if release:
        width = release_width or saes.release_width(release, store.spec.hook)
        return release_spec(release, store.spec.hook, store.spec, width, l1,
                            profile.sae_batch_size, seed=seed)
    return standard_spec(store.spec, tokens, profile.sae_batch_size, d_model,
                         l1=l1, seed=seed, autocast=profile.sae_autocast)


# A fine-tune has converged when its held-out MSE moved by less than this fraction over the
# last doubling of its steps (the post: "converged by 20-30 million tokens"). Fixed before the runs.
FINETUNE_CONVERGED = 0.01


def finetune_spec(base: SAESpec, method: str, n_tokens: int, batch_size: int, stored_tokens: int,
                  lr: float = 1e-3) -> SAESpec:
    """Fine-tune ``base`` with ``method`` on its own activations (cached like any SAE).

    The sparsity term is dropped (coefficient 0) except for Baseline, which keeps the
    base's coefficient: it is the base's training, continued. The learning rate is constant
    and a snapshot is kept halfway, so the first half is itself the run of half the length
    and ``heldout_change`` reads convergence over the last doubling of steps. Small batches
    (the post used 64) buy the steps; past one pass the stored activations repeat.
    """
    half = n_tokens // 2 // batch_size * batch_size
    return SAESpec(
        "scaled_finetune", base.activations, base.width,
        sparsity=base.sparsity if method == "Baseline" else 0.0,
        n_tokens=n_tokens, lr=lr, seed=base.seed, batch_size=batch_size,
        sparsity_warm_up_frac=0.0, lr_decay_frac=0.0, init_from=cache_relpath(base),
        options=(("finetune_method", method), *base.options), autocast=base.autocast,
        epochs=max(1, -(-n_tokens // stored_tokens)), checkpoint_tokens=(half,),
    )


def heldout_change(spec: SAESpec, x_eval: torch.Tensor, device: str = "cpu") -> float:
    """Relative change of a fine-tune's held-out MSE from its halfway snapshot to its end
    (``finetune_spec``): below ``FINETUNE_CONVERGED`` in size, it has converged."""
    snapshots = load_checkpoints(spec, device)
    half, full = (reconstruction_metrics(snapshots[t], x_eval)["mse"] for t in sorted(snapshots))
    return full / half - 1


def convergence_note(convergence: pd.DataFrame, methods: Sequence[str]) -> str:
    """Whether the fine-tunes ``methods`` (columns of ``convergence``: ``heldout_change`` per layer) converged."""
    worst = convergence[list(methods)].abs()
    layer, method = worst.stack().idxmax()
    state = "converged" if worst.max().max() < FINETUNE_CONVERGED else "NOT converged"
    return (f"{', '.join(methods)} fine-tunes {state}: held-out MSE moved at most {worst.max().max():.2%} over "
            f"the last doubling of steps ({method}, layer {layer}; converged below {FINETUNE_CONVERGED:.0%})")


@dataclass(frozen=True)
class ScaleAnalysis:
    """Per-latent scale a decoder-side fine-tune learned, against the base's statistics (FS-7, FS-8)."""

    stats: LatentStats
    live: np.ndarray  # latents at or above the frequency jump (the post drops the near-dead side)
    scale: np.ndarray  # s_i
    additive: np.ndarray  # (s_i - 1) * strength_i: change in mean activation when active
    scale_correlations: dict[str, float]
    additive_correlations: dict[str, float]


def analyse_scales(base: SAE, tuned: SAE, stats: LatentStats) -> ScaleAnalysis:
    """``stats``: the base's ``dataset_stats``; latents below the frequency jump are left out."""
    threshold, _ = frequency_jump(stats.frequency, stats.n_tokens)
    live = stats.frequency >= threshold
    scale = decoder_scale(tuned.W_dec, base.W_dec)
    additive = (scale - 1.0) * stats.strength
    log_f, log_s = np.log10(stats.frequency[live]), np.log10(stats.strength[live])
    return ScaleAnalysis(stats, live, scale, additive,
                         correlations(scale[live], log_f, log_s),
                         correlations(additive[live], log_f, log_s))


# ---- notebook 01's read-outs and its claims FS-1 .. FS-9 -------------------------------------

DECODER_SIDE = ("Scale", "Unrotated Decoder", "Decoder")
# FS-1's toy: c d / 2 = 0.4.
TOY_C, TOY_D = 0.05, 16
# Verdict rules, fixed before the runs.
FS1_MAX_ERROR, FS1_MAX_SPREAD = 0.02, 0.01
FS3_GAP = 0.99  # a ratio below this still leaves a gap to 1
FS4_BLOWUP, FS4_UNCHANGED = 2.0, 1e-6  # "drastic" L0 increase; "unchanged" L0
FS6_COSINE = 0.95
FS7_FREQUENCY = 0.1  # |Pearson(s, frequency)| above this is "not zero"
FS9_JUMP_DECADES = 1.0


def single_feature_grid(toy_p: tuple[float, ...], toy_m: tuple[float, ...], seed: int = 0,
                        c: float = TOY_C, d: int = TOY_D) -> pd.DataFrame:
    """FS-1: the learned activation of the single-feature toy against m - c d / 2, per (p, m)."""
    toy = pd.DataFrame([{"p": p, "m": m, "learned": train_single_feature(p, m, c, d, seed=seed),
                         "predicted": predicted_activation(m, c, d)} for p in toy_p for m in toy_m])
    toy["error"] = toy.learned - toy.predicted
    return toy


def single_feature_errors(toy: pd.DataFrame) -> tuple[float, float]:
    """FS-1: the largest |learned - predicted|, and the largest spread of learned over p at one m."""
    return float(toy.error.abs().max()), float(toy.groupby("m").learned.agg(np.ptp).max())


def moves_towards_one(ratio: pd.DataFrame) -> pd.DataFrame:
    """FS-3: per layer, whether each decoder-side method's L2 ratio is closer to 1 than the base's."""
    base = ratio["Original"]
    return pd.DataFrame({m: ((ratio[m] - 1).abs() < (base - 1).abs()) for m in DECODER_SIDE})


def l0_changes(l0: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """FS-4: encoder methods' L0 over the base's, and the decoder-side methods' largest |L0 change|."""
    blowup = l0[list(ENCODER_METHODS)].div(l0["Original"], axis=0)
    decoder_change = float(l0[list(DECODER_SIDE)].sub(l0["Original"], axis=0).abs().max().max())
    return blowup, decoder_change


def fractional_reductions(results: pd.DataFrame) -> pd.DataFrame:
    """FS-5: fractional MSE and perplexity-gap reduction of every fine-tune against its base."""
    orig = results.xs("Original", level="name")
    return pd.DataFrame({
        "mse_reduction": [fractional_reduction(orig.mse[lay], results.mse[lay, m]) for lay, m in results.index],
        "ppl_gap_reduction": [fractional_reduction(orig.perplexity_sae[lay], results.perplexity_sae[lay, m],
                                                   orig.perplexity_clean[lay]) for lay, m in results.index],
    }, index=results.index).drop(index="Original", level="name")


def row_cosines(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``."""
    a, b = a.detach().float(), b.detach().float().to(a.device)
    return to_numpy((a / a.norm(dim=1, keepdim=True) * b / b.norm(dim=1, keepdim=True)).sum(1))


@rule
def fs1(toy: pd.DataFrame) -> Claim:
    error, spread = single_feature_errors(toy)
    return Claim("FS-1", "Single binary feature: learned activation = m - c d / 2, independent of p; m < c d / 2 dies",
                 "m - c d / 2 (analytic)", f"max |error| {error:.4f}, spread over p {spread:.4f} ({len(toy)} SAEs)",
                 verdict(error < FS1_MAX_ERROR and spread < FS1_MAX_SPREAD), evidence="fs1_single_feature.png")


@rule
def fs2(ratio: pd.DataFrame) -> Claim:
    base = ratio["Original"]
    return Claim("FS-2", "Base SAEs' L2 ratio is below 1 at every layer", "< 1 at all but the last layer (Pythia-70m)",
                 ", ".join(f"L{lay}: {r:.3f}" for lay, r in base.items()),
                 verdict((base < 1).all(), partially=(base < 1).sum() >= len(base) - 1),
                 evidence="fs2_fs3_l2_ratio.png")


@rule
def fs3(ratio: pd.DataFrame, convergence: pd.DataFrame) -> Claim:
    closer, side = moves_towards_one(ratio), list(DECODER_SIDE)
    return Claim("FS-3", "Scale, Decoder and Unrotated Decoder move the L2 ratio towards 1 at every layer; a gap remains",
                 "towards 1, gap in layers 1-5",
                 "; ".join(f"{m}: " + ", ".join(f"{ratio[m][lay]:.3f}" for lay in ratio.index) for m in side),
                 verdict(closer.all().all() and (ratio[side] < FS3_GAP).any().any(), partially=closer.mean().mean() > 0.5),
                 evidence="fs2_fs3_l2_ratio.png", notes=convergence_note(convergence, side))


@rule
def fs4(l0: pd.DataFrame, convergence: pd.DataFrame) -> Claim:
    blowup, decoder_change = l0_changes(l0)
    drastic = bool((blowup >= FS4_BLOWUP).all().all())
    return Claim("FS-4", "Fine-tuning encoder parameters drastically increases L0; decoder-side methods leave L0 unchanged",
                 "drastic increase (figure)", f"encoder methods x{blowup.min().min():.1f}-x{blowup.max().max():.1f}; "
                 f"decoder-side max |dL0| {decoder_change:.1e}",
                 verdict(drastic and decoder_change < FS4_UNCHANGED, partially=drastic or decoder_change < FS4_UNCHANGED),
                 evidence="fs4_l0.png",
                 notes="; ".join([*(f"{m}: x{blowup[m].min():.1f}-x{blowup[m].max():.1f}" for m in ENCODER_METHODS),
                                  convergence_note(convergence, [*ENCODER_METHODS, *DECODER_SIDE])]))


FS5_POST_DECODER = {"mse_reduction": 0.09, "ppl_gap_reduction": 0.24}  # the post's Decoder averages over layers
FS6_POST_COSINE = 0.983


@rule
def fs5(frac_mean: pd.DataFrame, finetune_tokens: int, convergence: pd.DataFrame) -> Claim:
    """The magnitude matches when both of Decoder's reductions are within a factor of 2 of the post's."""
    sizes = {magnitude(float(frac_mean.loc["Decoder", k]), post) for k, post in FS5_POST_DECODER.items()}
    return Claim("FS-5", "Fractional MSE / perplexity-gap reduction (mean over layers); Decoder helps, Baseline ~ 0, Scale helps",
                 "Decoder: 9% MSE, 24% perplexity gap",
                 "; ".join(f"{m}: MSE {frac_mean.mse_reduction[m]:.1%}, ppl gap {frac_mean.ppl_gap_reduction[m]:.1%}"
                           for m in ["Baseline", *DECODER_SIDE]),
                 verdict(frac_mean.loc["Decoder"].gt(0).all() and frac_mean.loc["Scale"].gt(0).all()
                         and (frac_mean.loc["Baseline"] < frac_mean.loc["Decoder"]).all(),
                         partially=frac_mean.loc["Decoder"].gt(0).all()), evidence="fs5_fractional_reduction.png",
                 notes=f"{finetune_tokens:,} fine-tuning tokens; {convergence_note(convergence, ['Baseline', *DECODER_SIDE])}; "
                       f"Decoder against the post's 9% and 24%: {' and '.join(sorted(sizes))}",
                 magnitude=DIRECTION if DIRECTION in sizes else MATCHED)


@rule
def fs6(mean_cosines: dict[int, float]) -> Claim:
    """``mean_cosines``: per layer, the mean cosine of each decoder row before and after (``row_cosines``)."""
    mean_cos = float(np.mean(list(mean_cosines.values())))
    return Claim("FS-6", "Decoder fine-tuning barely rotates latents (mean cosine before/after)", f"{FS6_POST_COSINE}",
                 f"{mean_cos:.3f} (mean over layers)", verdict(mean_cos > FS6_COSINE), evidence="fs6_decoder_cosine.png",
                 notes="magnitude: the rotation 1 - cosine against the post's 0.017",
                 magnitude=magnitude(1 - mean_cos, 1 - FS6_POST_COSINE))


@rule
def fs7(scale_correlations: dict[str, float], layer: int, converged: str) -> Claim:
    """``scale_correlations``: ``ScaleAnalysis.scale_correlations`` at ``layer``; ``converged``: its
    Decoder fine-tune's ``convergence_note``."""
    sc = scale_correlations
    return Claim("FS-7", "Learned scale anti-correlates with activation strength; its correlation with frequency is not zero",
                 "direction only (values lost)",
                 f"layer {layer}: Pearson s~strength {sc['pearson_strength']:.2f}, s~freq {sc['pearson_frequency']:.2f}; "
                 f"partial {sc['partial_strength']:.2f}, {sc['partial_frequency']:.2f}",
                 verdict(sc["pearson_strength"] < 0 and abs(sc["pearson_frequency"]) > FS7_FREQUENCY,
                         partially=sc["pearson_strength"] < 0),
                 evidence="fs7_fs8_scale_vs_frequency_strength.png", notes=converged)


@rule
def fs8(scale_correlations: dict[str, float], additive_correlations: dict[str, float], converged: str) -> Claim:
    """The two correlation sets of a ``ScaleAnalysis``; ``converged`` as for ``fs7``."""
    sc, ac = scale_correlations, additive_correlations
    return Claim("FS-8", "The additive change in mean activation depends much less on strength than the scale does",
                 "direction only (values lost; the first additive correlation was negative)",
                 f"Pearson additive~strength {ac['pearson_strength']:.2f} vs s~strength {sc['pearson_strength']:.2f}; "
                 f"additive~freq {ac['pearson_frequency']:.2f}; partial {ac['partial_strength']:.2f}, {ac['partial_frequency']:.2f}",
                 verdict(abs(ac["pearson_strength"]) < abs(sc["pearson_strength"])),
                 evidence="fs7_fs8_scale_vs_frequency_strength.png",
                 notes="the post's numbers are lost, but a minus sign survives on its first additive correlation "
                       "(\"became -…\"): it was negative; here additive~freq is "
                       f"{ac['pearson_frequency']:+.2f} and additive~strength {ac['pearson_strength']:+.2f}; {converged}")


@rule
def fs9(jumps: dict[int, tuple[float, float, int]], n_tokens: int) -> Claim:
    """``jumps``: per layer, (frequency above the jump, jump in decades, never-active latents), counted
    over ``n_tokens`` of the base SAE's training data (``dataset_stats``, ``frequency_jump``)."""
    big = sum(size > FS9_JUMP_DECADES for _, size, _ in jumps.values())
    return Claim("FS-9", "Sorted log-frequency shows a sharp jump separating (near-)dead latents from live ones",
                 "sharp jump, all but the last layer",
                 ", ".join(f"L{lay}: {gap:.1f} decades below {f:.1e} ({dead} never active)" for lay, (f, gap, dead) in jumps.items()),
                 verdict(big == len(jumps), partially=big > len(jumps) / 2), evidence="fs9_sorted_log_frequency.png",
                 notes=f"firings counted over {n_tokens:,} training tokens (one firing: {1 / n_tokens:.0e}); "
                       "never-active latents sit at half a firing; a jump counts when the largest gap in the "
                       "sorted log frequencies exceeds one decade")


def setup(settings: Profile, sites: dict[int, SiteData], ce_tokens: int, focus: int, base: SAESpec,
          finetune_lr: float) -> dict[str, Any]:
    """What notebook 01's claims were measured under (``base``: the first layer's base SAE)."""
    sizes = settings.suppression
    return {"layers": list(sites), "hooks": [site.hook for site in sites.values()], "train_tokens": settings.train_tokens,
            "finetune_tokens": sizes.finetune_tokens, "finetune_batch": sizes.finetune_batch,
            "finetune_converged_below": FINETUNE_CONVERGED, "frequency_tokens": sizes.frequency_tokens, "eval_tokens": settings.eval_tokens, "ce_tokens": int(ce_tokens),
            "context_size": settings.context_size, "model_dtype": settings.model_dtype, "focus_layer": focus,
            "base_sae": base.to_dict(), "finetune_lr": finetune_lr, "methods": {m: list(p) for m, p in METHODS.items()},
            "toy": {"c": TOY_C, "d": TOY_D, "p": list(sizes.toy_p), "m": list(sizes.toy_m)}}
