"""Tied SAE, optionally with the activation-orthogonality auxiliary loss (Chanin et al.).

Tied: W_enc = W_dec^T and b_enc = 0, so h = ReLU(W (x - b)) with W the decoder rows and
x_hat = W^T h + b. Rows are unit norm and the L1 is plain (as ``standard_unit_norm``, which
is also the untied SAE of the toys): with a decoder-norm-weighted L1 instead, two tied
latents splitting one feature cost exactly what one latent does, so nothing kills duplicates. An encoder that must equal the decoder cannot carve "f0 AND NOT f1"
detectors, which is why tied SAEs resist absorption; the only way it can reduce
interference between latents is to make them orthogonal (BL-11).

Auxiliary loss (BL-7). For each latent j keep tau_j = 0.7 * (its max activation over the
last 50 batches), and penalise every sample on which the latent fires at or below tau_j
for not being orthogonal to it:

    L_aux = lambda_aux / (B K) * sum_{i, j : h_ij <= tau_j} cos(x_i - b, W_j)^2

Both lambda_aux and the threshold are 0 for ``aux_delay_samples``, then ramp linearly to
their full values over ``aux_warmup_samples``. The loss pulls low-activation clusters
(the extra peaks of a broken latent) out of the latent's direction.

The loss pieces are plain functions of tensors with any leading dimensions, so the
ensemble trainer (``toy_training``) computes exactly the same formula for many SAEs at once.
A tied SAE saves as sae-lens's ``standard`` with W_enc = W_dec^T, b_enc = 0: the same
function, loadable by any sae-lens user.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sae_lens.saes.sae import TrainStepInput
from typing_extensions import override

from sae_failures.variants.base import DerivedEncoder, register
from sae_failures.variants.unit_norm import UnitNormTrainingSAE, UnitNormTrainingSAEConfig

ARCHITECTURE = "tied"
AUX_ARCHITECTURE = "tied_aux"


def aux_ramp(samples_seen: int, delay: int, warmup: int) -> float:
    """0 during the delay, then linear to 1 over the warm-up (samples, not steps)."""
    if samples_seen < delay:
        return 0.0
    if warmup <= 0:
        return 1.0
    return min(1.0, (samples_seen - delay) / warmup)


def activation_orthogonality_loss(dots: torch.Tensor, x_sq_norms: torch.Tensor,
                                  w_sq_norms: torch.Tensor, acts: torch.Tensor,
                                  thresholds: torch.Tensor, coefficient: float | torch.Tensor,
                                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """coefficient / (B K) * sum over (i, j) with acts_ij <= tau_j of cos(x_i - b, W_j)^2.

    dots [..., B, K] = (x_i - b) . W_j; x_sq_norms [..., B]; w_sq_norms [..., K];
    thresholds [..., K]. Leading dimensions (e.g. an ensemble of SAEs) are kept. Optional
    ``weights`` [..., B] (summing to 1) replace 1/B per sample.
    """
    cos_sq = dots.square() / (x_sq_norms.unsqueeze(-1) * w_sq_norms.unsqueeze(-2)).clamp(min=1e-12)
    per_sample = (cos_sq * (acts <= thresholds.unsqueeze(-2))).mean(dim=-1)
    per_sample_mean = per_sample.mean(-1) if weights is None else (per_sample * weights).sum(-1)
    return coefficient * per_sample_mean


class RunningMax:
    """Max activation per latent over the last ``window`` batches (a ring buffer)."""

    def __init__(self, window: int, shape: tuple[int, ...], device: torch.device | str = "cpu"):
        self.maxima = torch.zeros((window, *shape), device=device)
        self.filled = 0

    def update(self, batch_max: torch.Tensor) -> None:
        self.maxima[self.filled % len(self.maxima)] = batch_max.detach()
        self.filled += 1

    @property
    def value(self) -> torch.Tensor:
        return self.maxima[: min(self.filled, len(self.maxima))].amax(dim=0) if self.filled else self.maxima[0]


@dataclass
class TiedTrainingSAEConfig(UnitNormTrainingSAEConfig):
    aux_coefficient: float = 0.0
    aux_threshold_frac: float = 0.7
    aux_window: int = 50
    aux_delay_samples: int = 0
    aux_warmup_samples: int = 0

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE


@dataclass
class TiedAuxTrainingSAEConfig(TiedTrainingSAEConfig):
    """The post's settings: lambda_aux 10,000, 50M samples delay, 50M warm-up."""

    aux_coefficient: float = 10_000.0
    aux_delay_samples: int = 50_000_000
    aux_warmup_samples: int = 50_000_000

    @override
    @classmethod
    def architecture(cls) -> str:
        return AUX_ARCHITECTURE


class TiedTrainingSAE(DerivedEncoder, UnitNormTrainingSAE):
    """W_enc and b_enc are not parameters: W_enc is read off W_dec on every forward pass.
    Rows of W are held at unit norm with a plain L1, like the untied ``standard_unit_norm``."""

    def __init__(self, cfg: TiedTrainingSAEConfig, use_error_term: bool = False):
        if not cfg.apply_b_dec_to_input:
            raise ValueError("A tied SAE encodes x - b (apply_b_dec_to_input=True).")
        super().__init__(cfg, use_error_term)
        self.samples_seen = 0
        self.running_max = RunningMax(cfg.aux_window, (cfg.d_sae,), self.W_dec.device)

    DERIVED = ("W_enc", "b_enc")
    encoder_gain = 1.0  # W_enc = encoder_gain * W_dec^T; != 1 only once an activation scale is folded in

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        self.drop_derived_parameters()

    def derived(self, name: str) -> torch.Tensor:
        if name == "W_enc":
            return self.W_dec.T * self.encoder_gain if self.encoder_gain != 1.0 else self.W_dec.T
        return torch.zeros(self.cfg.d_sae, dtype=self.W_dec.dtype, device=self.W_dec.device)

    @override
    @torch.no_grad()
    def fold_activation_norm_scaling_factor(self, scaling_factor: float) -> None:
        """Trained on x' = a x, the SAE on raw x has W_dec / a, b_dec / a and W_enc = a W^T:
        the encoder is no longer the decoder's transpose, so ``encoder_gain`` (a^2 on the
        rescaled rows) carries the difference. Saved, it is a plain sae-lens standard SAE."""
        self.apply_constraints()
        self.W_dec.data /= scaling_factor
        self.b_dec.data /= scaling_factor
        self.encoder_gain = self.encoder_gain * scaling_factor ** 2
        self.cfg.normalize_activations = "none"

    @override
    def calculate_aux_loss(self, step_input: TrainStepInput, feature_acts: torch.Tensor,
                           hidden_pre: torch.Tensor, sae_out: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = super().calculate_aux_loss(step_input, feature_acts, hidden_pre, sae_out)
        cfg: TiedTrainingSAEConfig = self.cfg  # type: ignore[assignment]
        if cfg.aux_coefficient == 0:
            return losses
        ramp = aux_ramp(self.samples_seen, cfg.aux_delay_samples, cfg.aux_warmup_samples)
        self.samples_seen += feature_acts.shape[0]
        thresholds = ramp * cfg.aux_threshold_frac * self.running_max.value  # previous batches only
        self.running_max.update(feature_acts.amax(dim=0))
        centred = step_input.sae_in - self.b_dec
        loss = activation_orthogonality_loss(
            dots=hidden_pre, x_sq_norms=centred.square().sum(-1), w_sq_norms=self.W_dec.square().sum(-1),
            acts=feature_acts, thresholds=thresholds,
            coefficient=ramp * cfg.aux_coefficient)
        return {**losses, "orthogonality_loss": loss}


register(ARCHITECTURE, TiedTrainingSAE, TiedTrainingSAEConfig)
register(AUX_ARCHITECTURE, TiedTrainingSAE, TiedAuxTrainingSAEConfig)  # same class, the post's aux settings
