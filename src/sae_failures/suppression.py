"""Feature suppression (notebook 01): the toy model, fine-tuning specs and per-latent analysis.

The fine-tuning methods themselves (which parameters train) live in ``variants/scaled.py``.

FS-1: with loss ||y - x||^2 / d + c |f|_1 and a single binary feature of strength m
firing with probability p, the optimum learned activation is a = m - c d / 2, whatever p
(the loss when the feature is off is zero, so p only scales the objective). sae-lens sums
the squared error over d, so the same SAE is trained with L1 coefficient c * d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sae_lens import SAE
from sae_lens.config import SAETrainerConfig
from sae_lens.training.sae_trainer import SAETrainer

from sae_failures.activations import ActivationStore
from sae_failures.metrics import encode_decode
from sae_failures.profiles import Profile
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig
from sae_failures.zoo import SAESpec, activation_scale, cache_relpath, release_spec, standard_spec


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


def latent_stats(feature_acts: torch.Tensor) -> LatentStats:
    active = feature_acts > 0
    count = active.sum(0)
    total = (feature_acts * active).sum(0)
    strength = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return LatentStats(frequency=(count / feature_acts.shape[0]).numpy(), strength=strength.numpy())


def decoder_scale(finetuned_w_dec: torch.Tensor, base_w_dec: torch.Tensor) -> np.ndarray:
    """Per-latent scale a fine-tune applied: ratio of decoder row norms (s is folded into W_dec on save)."""
    return (finetuned_w_dec.norm(dim=1) / base_w_dec.norm(dim=1)).detach().numpy()


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


def frequency_jump(frequency: np.ndarray) -> tuple[float, float]:
    """Largest gap in the sorted log10 frequencies of latents that fired at least once.

    Returns (the frequency just above the gap, the gap in decades). The post's Figure 6: a
    near-discontinuous jump separates rarely-active latents from live ones. Never-active
    latents are left out: against any floor they would always make a gap, jump or not.
    """
    logs = np.sort(np.log10(frequency[frequency > 0]))
    if len(logs) < 2:
        return float("nan"), 0.0
    gaps = np.diff(logs)
    i = int(np.argmax(gaps))
    return float(10 ** logs[i + 1]), float(gaps[i])


def l1_from_post(c: float, activation_scale: float, d: int) -> float:
    """The zoo's L1 coefficient equivalent to the post's c in ||y - x||^2 / d + c |f|_1.

    The zoo trains on x' = a x with the squared error summed over d; for a unit-norm SAE,
    ||y' - x'||^2 + lambda |f'|_1 = a^2 d (||y - x||^2 / d + lambda / (a d) |f|_1), so
    lambda = c a d.
    """
    return c * activation_scale * d


# Dictionary sizes of sae-lens releases the paper profile can start from (the release's
# config is only readable over the network; 32,768 = 64 x 512 is the size reported for
# pythia-70m-deduped-res-sm by its users). A wrong value fails at import, naming the right one.
RELEASE_WIDTHS = {"pythia-70m-deduped-res-sm": 32_768}


def base_spec(profile: Profile, store: ActivationStore, d_model: int, seed: int,
              post_l1: float, release: str = "", release_width: int = 0) -> SAESpec:
    """The SAE a layer's fine-tunes start from.

    smoke / offline: the repository's standard SAE (``zoo.standard_spec``). paper: the same
    architecture with the post's coefficient ``post_l1`` (c = 2e-3) mapped into the zoo's
    convention, or, when ``release`` names a sae-lens release (e.g. pythia-70m-deduped-res-sm),
    that release's SAE for the layer instead of pretraining one (``release_width``: its
    dictionary size; by default ``RELEASE_WIDTHS`` or else 4 x d_model).
    """
    if profile.name != "paper":
        return standard_spec(store.spec, profile.train_tokens, profile.sae_batch_size, d_model, seed=seed,
                             autocast=profile.sae_autocast)
    scale = activation_scale(store.d, store.batches(profile.sae_batch_size, seed=seed))
    l1 = l1_from_post(post_l1, scale, store.d)
    if release:
        width = release_width or RELEASE_WIDTHS.get(release, 4 * d_model)
        return release_spec(release, store.spec.hook, store.spec, width, l1,
                            profile.sae_batch_size, seed=seed)
    return standard_spec(store.spec, profile.train_tokens, profile.sae_batch_size, d_model,
                         l1=l1, seed=seed, autocast=profile.sae_autocast)


def finetune_spec(base: SAESpec, method: str, n_tokens: int, lr: float = 1e-3) -> SAESpec:
    """Fine-tune ``base`` with ``method`` on its own activations (cached like any SAE).

    The sparsity term is dropped (coefficient 0) except for Baseline, which keeps the
    base's coefficient: it is the base's training, continued.
    """
    return SAESpec(
        "scaled_finetune", base.activations, base.width,
        sparsity=base.sparsity if method == "Baseline" else 0.0,
        n_tokens=n_tokens, lr=lr, seed=base.seed, batch_size=base.batch_size,
        sparsity_warm_up_frac=0.0, init_from=cache_relpath(base),
        options=(("finetune_method", method), *base.options), autocast=base.autocast,
    )


@dataclass(frozen=True)
class ScaleAnalysis:
    """Per-latent scale a decoder-side fine-tune learned, against the base's statistics (FS-7, FS-8)."""

    stats: LatentStats
    live: np.ndarray  # latents at or above the frequency jump (the post drops the near-dead side)
    scale: np.ndarray  # s_i
    additive: np.ndarray  # (s_i - 1) * strength_i: change in mean activation when active
    scale_correlations: dict[str, float]
    additive_correlations: dict[str, float]


def analyse_scales(base: SAE, tuned: SAE, x_eval: torch.Tensor) -> ScaleAnalysis:
    feature_acts, _ = encode_decode(base, x_eval)
    stats = latent_stats(feature_acts)
    threshold, _ = frequency_jump(stats.frequency)
    live = stats.frequency >= threshold
    scale = decoder_scale(tuned.W_dec, base.W_dec)
    additive = (scale - 1.0) * stats.strength
    log_f, log_s = np.log10(stats.frequency[live]), np.log10(stats.strength[live])
    return ScaleAnalysis(stats, live, scale, additive,
                         correlations(scale[live], log_f, log_s),
                         correlations(additive[live], log_f, log_s))
