"""Alignment-score bimodality (notebook 03): the one-point toy, the SAEs it compares, and
per-latent analysis.

The alignment score a_i = W_enc[i, :] . W_dec[:, i] (``metrics.alignment_scores``) is 1 for
a latent that reconstructs its inputs perfectly (AB-1); trained SAEs split into a mode near
1 and a mode near 0. Aligned training (``variants/aligned.py``) pins every a_i to 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sae_lens import SAE
from sae_lens.saes.sae import TrainStepInput
from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig

from sae_failures.activations import ActivationSpec, ActivationStore
from sae_failures.metrics import alignment_scores, bimodality, encode_decode, reconstruction_metrics
from sae_failures.profiles import Profile
from sae_failures.zoo import SAESpec, get_sae

# Sparsity knobs of the architecture comparison (AB-2), set at layer 12 of SmolLM2 in short
# calibration runs (300k tokens; JumpReLU 1M) to land at comparable L0s (standard L1 3 ->
# L0 63, Gated L1 10 -> 46). JumpReLU's threshold moves at most lr per Adam step whatever its
# L0 coefficient (0.3-30 gave the same L0), so in 1M tokens its initial threshold sets its
# sparsity: 0.01 -> L0 ~1500, 0.3 -> 214 with 7% dead, 0.4 -> 128 with 57% dead, 1.0 -> 99% dead.
ARCHITECTURE_SPARSITY = {"standard": 3.0, "topk": 32, "gated": 10.0, "jumprelu": 3.0}
JUMPRELU_OPTIONS = (("jumprelu_init_threshold", 0.3), ("jumprelu_bandwidth", 0.2))
# AB-7 / AB-8: four L1 coefficients per variant (the paper's count). At the same coefficient
# aligned SAEs are much sparser (first offline run: 1.5 gave L0 34 against the standard's 95),
# so the aligned ones are shifted down to cover the standard's L0 range (~25-130 at SmolLM2
# layer 12); a frontier comparison needs overlapping L0s. Chosen from L0s only.
SWEEP_L1 = {"standard": (1.5, 2.0, 3.0, 5.0), "aligned": (0.6, 0.8, 1.1, 1.5)}
# AB-9: TopK's k, from high sparsity (small k) to low sparsity (large k).
TOPK_KS = (16, 32, 64, 128)
# AB-7 diagnostic: sae-lens starts decoder rows at norm 0.1 with W_enc = W_dec^T (Anthropic's
# April 2024 recipe; dictionary_learning, the paper's code base, does the same in its
# AutoEncoderNew; the paper does not say how A starts). Aligned training then starts at
# alpha_i = (1 - 0.01) / 0.01 ~ 99: an encoder ~100x the standard one's. These sweep points
# (mid-sweep, L0 ~50-65 offline) are retrained at decoder norm 1.
INIT_CHECK_L1 = {"standard": (2.0,), "aligned": (1.1,)}
SAE_LENS_DECODER_INIT_NORM = StandardTrainingSAEConfig.__dataclass_fields__["decoder_init_norm"].default
UNIT_DECODER_INIT = ("decoder_init_norm", 1.0)
# A latent firing on fewer than this fraction of evaluation tokens is "rarely active".
RARE_FREQUENCY = 1e-4
# Paper profile: the model and layer the paper trains on (Pythia-160M layer 8).
PAPER_TRAINING_MODEL, PAPER_TRAINING_LAYER = "EleutherAI/pythia-160m-deduped", 8
# The sae-lens releases the paper histograms (AB-2, paper profile): release -> SAE id.
PAPER_RELEASES = {
    "pythia-70m-deduped-res-sm": "blocks.3.hook_resid_post",
    "llama-3-8b-it-res-jh": "blocks.25.hook_resid_post",
    "sae_bench_gemma-2-2b_topk_width-2pow12_date-1109": "blocks.12.hook_resid_post__trainer_0",
}


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of notebook 03's experiments for one profile."""

    width: int  # AB-2 / AB-3 / AB-10 SAEs; AB-4's reference is ``wide_factor`` x wider
    sweep_widths: tuple[int, ...]  # AB-7 / AB-8 dictionaries
    sweep_l1: dict[str, tuple[float, ...]]  # AB-7 / AB-8 L1 coefficients per variant
    sweep_tokens: int  # training tokens of every sweep SAE (AB-7, AB-8, AB-9)
    topk_ks: tuple[int, ...]  # AB-9
    checkpoints: int  # snapshots of the AB-10 SAE and of every aligned SAE (AB-6)
    toy_seeds: int  # AB-1
    wide_factor: int = 4


def training_profile(profile: Profile) -> Profile:
    """The profile notebook 03 trains under: the paper profile trains on Pythia-160M layer 8,
    as the paper does; the others at their shared default layer."""
    if profile.name != "paper":
        return profile
    return dataclasses.replace(profile, model=PAPER_TRAINING_MODEL, default_layer=PAPER_TRAINING_LAYER)


def study_config(profile: Profile, d_model: int) -> StudyConfig:
    """offline: 4 x and 8 x d_model dictionaries, the sweep on half the training tokens (the
    30-minute budget); paper: the paper's 4096 and 16384 on all of them; smoke: offline's
    code paths on the smallest grid."""
    if profile.name == "paper":
        return StudyConfig(width=4096, sweep_widths=(4096, 16384), sweep_l1=SWEEP_L1,
                           sweep_tokens=profile.train_tokens, topk_ks=TOPK_KS, checkpoints=8, toy_seeds=16)
    if profile.name == "smoke":
        return StudyConfig(width=d_model, sweep_widths=(d_model, 2 * d_model),
                           sweep_l1={v: coefficients[::3] for v, coefficients in SWEEP_L1.items()},
                           sweep_tokens=profile.train_tokens, topk_ks=TOPK_KS[::3], checkpoints=3, toy_seeds=4)
    return StudyConfig(width=4 * d_model, sweep_widths=(4 * d_model, 8 * d_model), sweep_l1=SWEEP_L1,
                       sweep_tokens=profile.train_tokens // 2, topk_ks=TOPK_KS, checkpoints=8, toy_seeds=16)


@dataclass(frozen=True)
class OnePointToy:
    """A 2-d, 1-latent ReLU autoencoder without biases or penalty, trained on one point x."""

    seed: int
    x: tuple[float, float]
    dead: bool  # w_enc . x <= 0 after training: the ReLU is closed on x and gets no gradient
    relative_error: float  # ||x - x_hat|| / ||x|| after training
    alignment: float  # w_enc . w_dec after training

    @property
    def perfect(self) -> bool:
        return self.relative_error < 1e-3


def train_one_point_toy(seed: int, steps: int = 3000, lr: float = 1e-2) -> OnePointToy:
    """AB-1 with sae-lens's standard SAE: biases frozen at 0, L1 coefficient 0, random
    independent encoder and decoder, Adam on the reconstruction of a single random point.

    If it reconstructs x perfectly, W_dec (W_enc . x) = x with W_enc . x > 0, so W_dec is
    parallel to x and (W_enc . W_dec) (W_enc . x) = W_enc . x: the score is exactly 1.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, generator=gen)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=2, d_sae=1, l1_coefficient=0.0,
                                                        apply_b_dec_to_input=False))
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(2, 1, generator=gen))
        sae.W_dec.copy_(torch.randn(1, 2, generator=gen))
    sae.b_enc.requires_grad_(False)
    sae.b_dec.requires_grad_(False)
    opt = torch.optim.Adam([sae.W_enc, sae.W_dec], lr=lr)
    for step in range(steps):
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=x, coefficients={"l1": 0.0}, dead_neuron_mask=None, n_training_steps=step,
            is_logging_step=False))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    with torch.no_grad():
        error = float((sae(x) - x).norm() / x.norm())
        dead = bool((x @ sae.W_enc).item() <= 0)
    return OnePointToy(seed, tuple(x[0].tolist()), dead, error, float(alignment_scores(sae)[0]))


def one_point_toys(n_seeds: int) -> pd.DataFrame:
    """AB-1 for ``n_seeds`` random points and initialisations, one row each."""
    rows = [train_one_point_toy(seed) for seed in range(n_seeds)]
    return pd.DataFrame([{**dataclasses.asdict(t), "perfect": t.perfect} for t in rows]).set_index("seed")


def paper_sae_spec(variant: str, activations: ActivationSpec, width: int, sparsity: float,
                   n_tokens: int, batch_size: int, seed: int = 0, autocast: bool = False,
                   checkpoints: int = 0) -> SAESpec:
    """The paper's SAE: f = ReLU(W_enc x + b_enc), decoder not normalised, L1 weighted by
    decoder norms (sae-lens ``standard``); ``aligned`` / ``aligned_topk`` / ``topk`` the same
    with the paper's reparametrisation or TopK. Nothing subtracts b_dec from the input."""
    return SAESpec(variant, activations, width, sparsity, n_tokens=n_tokens, batch_size=batch_size,
                   lr=1e-3, seed=seed, options=(("apply_b_dec_to_input", False),), autocast=autocast,
                   checkpoints=checkpoints)


def architecture_specs(activations: ActivationSpec, profile: Profile, width: int, seed: int = 0,
                       checkpoints: int = 0) -> dict[str, SAESpec]:
    """AB-2's four architectures at one width on the profile's training tokens.

    standard (with ``checkpoints`` snapshots, AB-10) and TopK are the paper's; Gated and
    JumpReLU are sae-lens's own training setups (JumpReLU with ``JUMPRELU_OPTIONS``).
    """
    common = dict(n_tokens=profile.train_tokens, batch_size=profile.sae_batch_size, seed=seed,
                  autocast=profile.sae_autocast)
    return {
        "standard": paper_sae_spec("standard", activations, width, ARCHITECTURE_SPARSITY["standard"],
                                   checkpoints=checkpoints, **common),
        "topk": paper_sae_spec("topk", activations, width, ARCHITECTURE_SPARSITY["topk"], **common),
        "gated": SAESpec("gated", activations, width, ARCHITECTURE_SPARSITY["gated"], lr=1e-3, **common),
        "jumprelu": SAESpec("jumprelu", activations, width, ARCHITECTURE_SPARSITY["jumprelu"], lr=1e-3,
                            options=JUMPRELU_OPTIONS, **common),
    }


def paired_sweep(activations: ActivationSpec, sparsities: dict[str, tuple[float, ...]], widths: list[int],
                 n_tokens: int, batch_size: int, seed: int = 0, autocast: bool = False, checkpoints: int = 0
                 ) -> dict[tuple[str, int, float], SAESpec]:
    """One spec per (variant, width, sparsity): the same data, seed and schedule for every
    variant, so a pair differs only in the encoder's parametrisation (aligned variants also
    save ``checkpoints`` snapshots)."""
    return {(v, w, s): paper_sae_spec(v, activations, w, s, n_tokens, batch_size, seed, autocast,
                                      checkpoints if v.startswith("aligned") else 0)
            for v, values in sparsities.items() for w in widths for s in values}


def wide_reference(spec: SAESpec, factor: int) -> SAESpec:
    """AB-4's larger SAE: ``spec`` with a ``factor`` x wider dictionary, same data and schedule."""
    return dataclasses.replace(spec, width=factor * spec.width, checkpoints=0)


def unit_decoder_init(spec: SAESpec) -> SAESpec:
    """``spec`` with decoder rows initialised at norm 1 instead of sae-lens's default (no snapshots)."""
    return dataclasses.replace(spec, options=(*spec.options, UNIT_DECODER_INIT), checkpoints=0)


def init_norm_check(specs: dict[tuple[str, int, float], SAESpec], store: ActivationStore,
                    x_eval: torch.Tensor, device: str = "cpu") -> pd.DataFrame:
    """AB-7 diagnostic: each sweep spec trained from sae-lens's initial decoder norm and from
    ``unit_decoder_init``; one row of reconstruction metrics (dead latents included) per SAE."""
    rows = []
    for (variant, width, l1), spec in specs.items():
        for init_norm, trained in ((SAE_LENS_DECODER_INIT_NORM, spec), (UNIT_DECODER_INIT[1], unit_decoder_init(spec))):
            sae = get_sae(trained, store, device=device)
            rows.append({"variant": variant, "width": width, "l1": l1, "decoder_init_norm": init_norm,
                         **reconstruction_metrics(sae, x_eval)})
    return pd.DataFrame(rows)


def load_release(release: str, sae_id: str, device: str = "cpu") -> SAE:
    """A sae-lens pretrained SAE, for the paper's own histograms (needs the model hub)."""
    from sae_failures.model import require_network

    require_network(f"The sae-lens release {release!r}")
    return SAE.from_pretrained(release, sae_id, device=device)


def max_cosine_similarity(W_dec: torch.Tensor, reference_W_dec: torch.Tensor) -> np.ndarray:
    """For each decoder row, its largest cosine with any row of ``reference_W_dec`` (AB-4's MCS)."""
    a = torch.nn.functional.normalize(W_dec.detach().float(), dim=-1)
    b = torch.nn.functional.normalize(reference_W_dec.detach().float(), dim=-1)
    return torch.cat([(chunk @ b.T).max(-1).values for chunk in a.split(1024)]).numpy()


def latent_table(sae: SAE, x_eval: torch.Tensor) -> pd.DataFrame:
    """Per latent: alignment score, firing frequency on ``x_eval``, and dead / rare flags."""
    feature_acts, _ = encode_decode(sae, x_eval)
    frequency = (feature_acts > 0).float().mean(0).numpy()
    return pd.DataFrame({"alignment": alignment_scores(sae).numpy(), "frequency": frequency,
                         "dead": frequency == 0, "rare": (frequency > 0) & (frequency < RARE_FREQUENCY)})


def status(table: pd.DataFrame) -> pd.Series:
    """dead / rare / live for each latent of a ``latent_table``."""
    return pd.Series(np.where(table.dead, "dead", np.where(table.rare, "rare", "live")), index=table.index)


def mode_membership(table: pd.DataFrame) -> dict[str, float]:
    """AB-3: how the mixture's low mode and the dead / rare latents overlap."""
    high = assign_modes(table.alignment.to_numpy())
    inactive = (table.dead | table.rare).to_numpy()
    n_low = int((~high).sum())
    return {
        "n_latents": len(table), "n_low_mode": n_low, "n_dead": int(table.dead.sum()),
        "n_rare": int(table.rare.sum()),
        "inactive_in_low_mode": float((~high)[inactive].mean()) if inactive.any() else float("nan"),
        "low_mode_inactive": float(inactive[~high].mean()) if n_low else float("nan"),
        "median_frequency_low": float(np.median(table.frequency[~high])) if n_low else float("nan"),
        "median_frequency_high": float(np.median(table.frequency[high])),
    }


def assign_modes(alignment: np.ndarray) -> np.ndarray:
    """True for latents the 2-component mixture puts in its high-mean component."""
    from sklearn.mixture import GaussianMixture

    x = np.asarray(alignment, dtype=np.float64)[:, None]
    gmm = GaussianMixture(n_components=2, random_state=0).fit(x)
    return gmm.predict(x) == int(np.argmax(gmm.means_.ravel()))


def bimodality_row(alignment: np.ndarray) -> dict[str, float]:
    """The mixture's modes and weights, Sarle's b and Ashman's D, as one table row."""
    b = bimodality(alignment)
    return {"low_mean": b.means[0], "high_mean": b.means[1], "low_weight": b.weights[0],
            "high_weight": b.weights[1], "sarle": b.sarle, "ashman_d": b.ashman_d, "bimodal": b.bimodal}


def parameter_count(spec: SAESpec, d_in: int) -> int:
    """Trainable parameters of ``spec``'s training SAE."""
    from sae_failures.zoo import build_training_sae

    return sum(p.numel() for p in build_training_sae(dataclasses.replace(spec, seed=0), d_in).parameters()
               if p.requires_grad)


def aligned_deviation(snapshots: dict[int, SAE]) -> float:
    """AB-6: the largest |a_i - 1| over every latent of every snapshot."""
    return max(float((alignment_scores(sae) - 1).abs().max()) for sae in snapshots.values())
